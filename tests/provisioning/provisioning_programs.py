"""Run the real hotspot programs against rendered files (shared by the tests)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import pytest


def need(program: str) -> str:
    """The program's path, or skip the test saying which Debian package provides it."""
    packages = {
        "dnsmasq": "dnsmasq",
        "nft": "nftables",
        "hostapd": "hostapd",
        "turnserver": "coturn",
        "ip": "iproute2",
        "wpa_supplicant": "wpasupplicant",
    }
    for folder in ("", "/usr/sbin/", "/sbin/", "/usr/bin/"):
        found = shutil.which(folder + program) if folder else shutil.which(program)
        if found:
            return found
    pytest.skip(f"{program} is not installed (apt-get install {packages.get(program, program)})")


def run(argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def sh(*argv: str) -> None:
    """Run a setup step (`ip`, `nft`, ...); a failure raises with the program's own words."""
    result = run(list(argv))
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")


class Logged(Protocol):
    """A test's rig of namespaces and programs, whose logs explain a timeout."""

    def logs(self) -> str: ...


T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], rig: Logged, timeout: float = 60) -> T:
    """`check()`'s first true value, polled; after `timeout` s, fail with the rig's logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{rig.logs()}")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def stop_all(processes: list[subprocess.Popen[bytes]], namespaces: list[str]) -> None:
    """Stop the test's programs (kill what does not stop in 5 s), then its namespaces."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for namespace in reversed(namespaces):
        run(["ip", "netns", "del", namespace])
