"""The image recipe, checked without building it; and the built image, when there is one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from provisioning.config import parse_config

IMAGE = Path(__file__).resolve().parents[2] / "image"
UNITS = IMAGE / "files" / "root" / "etc" / "systemd" / "system"
SCRIPTS = [
    IMAGE / "build.sh",
    IMAGE / "files" / "root" / "usr" / "local" / "sbin" / "ahoy-data-partition",
    IMAGE / "files" / "root" / "usr" / "local" / "sbin" / "ahoy-provision",
    IMAGE / "files" / "base" / "etc" / "initramfs-tools" / "scripts" / "init-bottom" / "ahoy-overlay",
    IMAGE / "files" / "base" / "etc" / "initramfs-tools" / "hooks" / "ahoy-modules",
    IMAGE / "vmtest" / "files" / "opt" / "ahoy" / "vmtest" / "udhcpc.sh",
]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_parse_and_are_executable(script: Path) -> None:
    shell = "bash" if script.name == "build.sh" else "sh"
    subprocess.run([shell, "-n", str(script)], check=True)
    assert os.access(script, os.X_OK)


def test_every_unit_the_build_enables_is_in_the_recipe() -> None:
    build = (IMAGE / "build.sh").read_text()
    enabled = re.search(r"systemctl enable --quiet (.*?)\n(?!\s)", build, re.S)
    assert enabled
    names = enabled.group(1).replace("\\", " ").split()
    ours = [n for n in names if n.startswith("ahoy")]
    assert ours and all((UNITS / n).exists() for n in ours), ours


def test_units_run_programs_that_the_recipe_installs() -> None:
    for unit in UNITS.glob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart=/usr/local/sbin/"):
                script = IMAGE / "files" / "root" / line.removeprefix("ExecStart=/")
                assert script.exists(), f"{unit.name}: {script}"


def test_service_is_unprivileged_and_may_bind_web_ports() -> None:
    unit = (UNITS / "ahoy.service").read_text()
    assert "User=ahoy" in unit
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in unit


def test_vm_test_box_config_is_valid_and_uses_the_first_simulated_radio() -> None:
    config = parse_config((IMAGE / "vmtest" / "ahoy.txt").read_text())
    assert config.interface == "wlan0" and config.is_open_network


def _apt_packages(text: str) -> set[str]:
    """Package names of the `apt-get install` command(s) in a shell text."""
    joined = text.replace("\\\n", " ")
    found: set[str] = set()
    for line in joined.splitlines():
        words = line.split()
        if words[:1] == ["apt-get"] and "install" in words:
            found |= {w for w in words[words.index("install") + 1:]
                      if not w.startswith("-") and not w.startswith(">")}
    return found


def test_readme_apt_line_has_every_package_the_tool_check_names() -> None:
    """The fast half of `make -C image apt-line-check` (which proves it in a clean root)."""
    sys.path.insert(0, str(IMAGE))
    try:
        from check_apt_line import readme_apt_line
    finally:
        sys.path.remove(str(IMAGE))
    readme = set(readme_apt_line())
    build = (IMAGE / "build.sh").read_text()
    named = set(re.findall(r"^\s*(?:if .*then )?need \S+ (\S+?);?(?: fi)?$", build, re.M))
    named |= set(re.findall(r"MISSING\+=\(([a-z0-9][^)\s]*)\)", build))
    assert {"arch-test", "mmdebstrap", "qemu-user-static", "python3-pip",
            "libc6-dev-arm64-cross"} <= named
    assert named <= readme, sorted(named - readme)
    ci = _apt_packages((IMAGE.parent / ".ci" / "run").read_text())
    assert readme <= ci, f"CI does not install: {sorted(readme - ci)}"


def test_logs_stay_in_ram() -> None:
    journald = (IMAGE / "files" / "root" / "etc" / "systemd" / "journald.conf.d" / "ahoy.conf")
    assert "Storage=volatile" in journald.read_text()


@pytest.mark.slow
@pytest.mark.skipif(not list((IMAGE / "out").glob("ahoy-*-arm64.img")),
                    reason="no image built (make image)")
@pytest.mark.skipif(os.geteuid() != 0, reason="the image check mounts the root partition")
def test_built_image_passes_its_checks() -> None:
    done = subprocess.run([sys.executable, str(IMAGE / "check_image.py")],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
