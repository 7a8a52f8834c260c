#!/usr/bin/env python3
"""Prove README.md's build-tools line in a clean root: `make -C image apt-line-check`.

Takes the `apt-get install` line from the "Build it" section of image/README.md (so the
two cannot drift apart), makes a minimal Debian root of this machine's release with
mmdebstrap, and inside it runs build.sh's tool check (AHOY_CHECK_TOOLS_ONLY=1) twice:
before the line, where it must fail and name every missing package in one message, and
after installing exactly the README's packages, where it must pass. They are installed
without their recommended packages, as CI installs them, so a tool that works only with a
recommended package (the cross compiler without arm64's C headers) fails here too.

Needs root and mmdebstrap. Downloaded packages are kept in $AHOY_IMAGE_CACHE/apt-line-debs
(default image/cache). Exit status 0 when the line is complete.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = Path(os.environ.get("AHOY_IMAGE_CACHE", HERE / "cache"))
MIRROR = os.environ.get("AHOY_MIRROR", "http://deb.debian.org/debian")


def readme_apt_line(readme: Path = HERE / "README.md") -> list[str]:
    """The packages of the first `apt-get install` command in README.md's "Build it"."""
    text = readme.read_text()
    section = re.search(r"^## Build it\n(.*?)(?=^## )", text, re.M | re.S)
    if not section:
        raise ValueError(f"{readme} has no '## Build it' section")
    block = re.search(r"```sh\n(.*?)```", section.group(1), re.S)
    if not block:
        raise ValueError(f"{readme}: no ```sh block in 'Build it'")
    joined = block.group(1).replace("\\\n", " ")
    for line in joined.splitlines():
        words = shlex.split(line)
        if words[:2] == ["apt-get", "install"]:
            packages = [w for w in words[2:] if not w.startswith("-")]
            if packages:
                return packages
    raise ValueError(f"{readme}: no `apt-get install` line in 'Build it'")


def host_release() -> str:
    fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines()
                  if "=" in line)
    return fields.get("VERSION_CODENAME", "bookworm").strip('"')


def main() -> int:
    packages = readme_apt_line()
    release = os.environ.get("AHOY_APT_LINE_RELEASE", host_release())
    print(f"README's line: apt-get install {' '.join(packages)}")
    print(f"clean root: Debian {release} (minbase), then exactly that line")
    if os.geteuid() != 0 or shutil.which("mmdebstrap") is None:
        print("needs root and mmdebstrap (apt-get install mmdebstrap)", file=sys.stderr)
        return 2
    debs = CACHE / "apt-line-debs"
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="apt-line-", dir=CACHE) as scratch:
        root = Path(scratch) / "root"
        check = ('chroot "$1" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin AHOY_CHECK_TOOLS_ONLY=1 '
                 '/ahoy/image/build.sh arm64 release')
        install = ("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
                   + " ".join(shlex.quote(p) for p in packages))
        argv = [
            "mmdebstrap", "--mode=root", "--variant=minbase", "--aptopt=Acquire::Retries \"3\"",
            "--skip=download/empty", "--skip=essential/unlink",
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives',
            f"--setup-hook=sync-in '{debs}' /var/cache/apt/archives",
            '--customize-hook=mkdir -p "$1/ahoy/image"',
            f"--customize-hook=copy-in '{HERE / 'build.sh'}' /ahoy/image",
            f"--customize-hook=copy-in '{REPO / 'pyproject.toml'}' /ahoy",
            f'--customize-hook={check} > "$1/ahoy/before.log" 2>&1; echo $? > "$1/ahoy/before.rc"',
            f"--customize-hook=chroot \"$1\" sh -c '{install}'",
            f'--customize-hook={check} > "$1/ahoy/after.log" 2>&1; echo $? > "$1/ahoy/after.rc"',
            f"--customize-hook=sync-out /var/cache/apt/archives '{debs}'",
            release, str(root), f"deb {MIRROR} {release} main",
        ]
        built = subprocess.run(argv, capture_output=True, text=True, check=False)
        if built.returncode != 0:
            print((built.stdout + built.stderr)[-3000:])
            print("apt-line check FAILED: mmdebstrap or the README's apt-get line failed")
            return 1
        results = {name: ((root / f"ahoy/{name}.rc").read_text().strip(),
                          (root / f"ahoy/{name}.log").read_text())
                   for name in ("before", "after")}
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)
    failures: list[str] = []
    rc, log = results["before"]
    print(f"before the line: exit {rc}\n{log.rstrip()}")
    named = re.search(r"apt-get install (.*)", log)
    if rc == "0" or not named:
        failures.append("without the packages the tool check did not fail with an install line")
    elif set(named.group(1).split()) - set(packages):
        failures.append(f"the tool check asks for packages the README does not list: "
                        f"{sorted(set(named.group(1).split()) - set(packages))}")
    rc, log = results["after"]
    print(f"after the line: exit {rc}\n{log.rstrip()}")
    if rc != "0":
        failures.append("after installing the README's line the build's tool check fails")
    for failure in failures:
        print(f"FAIL {failure}")
    print("apt-line check passed" if not failures else "apt-line check FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
