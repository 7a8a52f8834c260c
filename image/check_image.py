#!/usr/bin/env python3
"""Check a built Raspberry Pi image without a Pi: `python3 image/check_image.py [IMAGE]`.

- the partition table: MBR, FAT boot (bootable), root and data (ext4, labels as fstab says)
- the boot partition: kernel, initrd, config.txt/cmdline.txt, the Pi firmware, device trees
  for every supported board, and ahoy.txt with every setting commented out
- the update image: the same boot and root partitions, no ahoy.txt, nothing of /data
- the arm64 root runs `python -m appliance --help` and `python -m provisioning --help`
  under qemu-user (chroot into the read-only root, mounted from the image), and its venv
  imports every runtime dependency

Needs root (the loop mount), mtools and, off an arm64 machine, qemu-user with binfmt_misc.
Exit status 0 when every check passes; each result is printed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent / "provisioning" / "ahoy.txt.example"
# Device trees the Pi firmware looks for, per supported board.
BOARDS = {
    "Pi 3 B": "bcm2837-rpi-3-b.dtb",
    "Pi 3 B+": "bcm2837-rpi-3-b-plus.dtb",
    "Pi 3 A+": "bcm2837-rpi-3-a-plus.dtb",
    "Pi 4 B": "bcm2711-rpi-4-b.dtb",
    "Pi 400": "bcm2711-rpi-400.dtb",
    "Zero 2 W": "bcm2837-rpi-zero-2-w.dtb",
}
FIRMWARE = ["bootcode.bin", "start.elf", "fixup.dat", "start4.elf", "fixup4.dat"]

failures: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {name}{f': {detail}' if detail and not ok else ''}")
    if not ok:
        failures.append(name)


def partitions(image: Path) -> list[dict[str, Any]]:
    table = json.loads(subprocess.check_output(["sfdisk", "--json", str(image)]))["partitiontable"]
    check("MBR partition table (the Pi 3 and Zero 2 W boot ROMs need it)", table["label"] == "dos")
    parts: list[dict[str, Any]] = table["partitions"]
    return parts


def probe(image: Path, start: int, size: int) -> dict[str, str]:
    out = subprocess.run(
        ["blkid", "-p", "-o", "export", "-O", str(start * 512), "-S", str(size * 512), str(image)],
        capture_output=True, text=True, check=False).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def boot_files(image: Path, offset: int) -> dict[str, str]:
    """Names on the FAT partition (top level), and the text of the small text files."""
    target = f"{image}@@{offset}"
    listing = subprocess.check_output(["mdir", "-b", "-i", target, "::/"], text=True)
    names = {line.strip().removeprefix("::/") for line in listing.splitlines() if line.strip()}
    texts: dict[str, str] = {}
    for name in ("config.txt", "cmdline.txt", "ahoy.txt"):
        if name in names:
            texts[name] = subprocess.check_output(["mtype", "-i", target, f"::{name}"], text=True)
    return {name: texts.get(name, "") for name in names}


def run_in_root(image: Path, start: int, size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ahoy-check-") as mnt:
        mounted = subprocess.run(
            ["mount", "-o", f"ro,loop,offset={start * 512},sizelimit={size * 512}",
             str(image), mnt], capture_output=True, text=True, check=False)
        if mounted.returncode != 0:
            check("mount the root partition read-only", False, mounted.stderr.strip())
            return
        try:
            fstab = Path(mnt, "etc/fstab").read_text()
            check("fstab mounts AHOYBOOT and AHOYDATA, not the root",
                  "LABEL=AHOYBOOT" in fstab and "LABEL=AHOYDATA" in fstab
                  and not re.search(r"^\S+\s+/\s", fstab, re.M))
            for module in ("appliance", "provisioning"):
                done = subprocess.run(
                    ["chroot", mnt, "/usr/bin/env", "-i", "PATH=/usr/bin:/bin",
                     "PYTHONDONTWRITEBYTECODE=1", "/bin/sh", "-c",
                     f"cd /opt/ahoy/app && /opt/ahoy/venv/bin/python -m {module} --help"],
                    capture_output=True, text=True, timeout=300, check=False)
                check(f"arm64 root runs `python -m {module} --help` under qemu-user",
                      done.returncode == 0 and "usage" in done.stdout,
                      (done.stdout + done.stderr).strip()[-300:])
            # The service's imports, with /tmp as on the box (lgpio puts its pipes in LG_WD).
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", f"{mnt}/tmp"], check=True)
            try:
                done = subprocess.run(
                    ["chroot", mnt, "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "LG_WD=/tmp",
                     "PYTHONDONTWRITEBYTECODE=1", "/opt/ahoy/venv/bin/python", "-c",
                     "import aiortc, av, cryptography, flask, flask_sock, gevent, gpiozero, "
                     "lgpio, pyroute2, segno, zeroconf"],
                    capture_output=True, text=True, timeout=300, check=False)
            finally:
                subprocess.run(["umount", f"{mnt}/tmp"], check=False)
            check("arm64 venv imports every runtime dependency (lgpio included)",
                  done.returncode == 0, done.stderr.strip()[-300:])
            for unit in ("ahoy.service", "ahoy-provision.service", "ahoy-requests.path",
                         "ahoy-data-partition.service"):
                # The links point into the image's own /etc, so look at the links themselves.
                wants = [d / unit for d in Path(mnt, "etc/systemd/system").iterdir()
                         if d.name.endswith(".wants") and (d / unit).is_symlink()]
                check(f"{unit} enabled", bool(wants))
            check("no SSH host keys baked into the image",
                  not list(Path(mnt, "etc/ssh").glob("ssh_host_*")))
        finally:
            subprocess.run(["umount", mnt], check=False)


def check_update_image(image: Path, parts: list[dict[str, Any]]) -> None:
    """The update image next to the image: the same boot and root partitions at the same
    places, no ahoy.txt, and it ends where the data partition starts (so flashing it over a
    card keeps /data); its table lets the data partition run as far as an MBR can say."""
    update = image.with_name(image.name.replace(".img", "-update.img"))
    check("update image next to the image", update.exists(), str(update))
    if not update.exists():
        return
    table = json.loads(subprocess.check_output(["sfdisk", "--json", str(update)]))
    up = table["partitiontable"]["partitions"]
    boot, root, data = parts
    check("update image: the same boot and root partitions",
          [(p["start"], p["size"], p["type"]) for p in up[:2]]
          == [(p["start"], p["size"], p["type"]) for p in (boot, root)], str(up))
    check("update image ends where the data partition starts",
          update.stat().st_size == int(data["start"]) * 512,
          f"{update.stat().st_size} != {int(data['start']) * 512}")
    check("update image: data partition from the same start to the largest MBR size",
          len(up) == 3 and up[2]["start"] == data["start"]
          and int(up[2]["start"]) + int(up[2]["size"]) == 0xFFFFFFFF, str(up[2:]))
    with open(image, "rb") as full, open(update, "rb") as new:
        full.seek(int(root["start"]) * 512)
        new.seek(int(root["start"]) * 512)
        same = True
        for _ in range(int(root["size"]) * 512 // 2**20):
            if full.read(2**20) != new.read(2**20):
                same = False
                break
    check("update image: the same root file system", same)
    files = boot_files(update, int(boot["start"]) * 512)
    check("update image: no ahoy.txt (the box keeps the owner's)", "ahoy.txt" not in files)
    check("update image: kernel and initrd on its boot partition",
          any(n.startswith("vmlinuz-") for n in files)
          and any(n.startswith("initrd.img-") for n in files))


def main() -> int:
    if len(sys.argv) > 1:
        image = Path(sys.argv[1])
    else:
        found = sorted((HERE / "out").glob("ahoy-*[0-9]-arm64.img"))
        if not found:
            print("no image: run `make image` first (out/ahoy-<version>-arm64.img)")
            return 2
        image = found[-1]
    print(f"checking {image}")
    parts = partitions(image)
    check("three partitions: boot, root, data", len(parts) == 3, str(parts))
    if len(parts) != 3:
        return 1
    boot, root, data = parts
    check("boot partition is FAT32 and bootable",
          boot["type"] == "c" and bool(boot.get("bootable")))
    for part, label, kind in ((boot, "AHOYBOOT", "vfat"), (root, "AHOYROOT", "ext4"),
                              (data, "AHOYDATA", "ext4")):
        seen = probe(image, part["start"], part["size"])
        check(f"{label} is {kind}", seen.get("LABEL") == label and seen.get("TYPE") == kind,
              str(seen))
    files = boot_files(image, int(boot["start"]) * 512)
    check("kernel on the boot partition", any(n.startswith("vmlinuz-") for n in files))
    check("initrd on the boot partition", any(n.startswith("initrd.img-") for n in files))
    check("Pi firmware (bootcode.bin, start*.elf, fixup*.dat)", all(f in files for f in FIRMWARE),
          str(sorted(set(FIRMWARE) - set(files))))
    for board, dtb in BOARDS.items():
        check(f"device tree for the {board}", dtb in files)
    config = files.get("config.txt", "")
    check("config.txt boots the arm64 kernel with the initrd",
          "arm_64bit=1" in config and "kernel=vmlinuz-" in config
          and "initramfs initrd.img-" in config)
    cmdline = files.get("cmdline.txt", "").split()
    check("cmdline.txt: root by label, read-only (ro after rw), predictable wlan0",
          "root=LABEL=AHOYROOT" in cmdline and "ro" in cmdline and "net.ifnames=0" in cmdline
          and (cmdline.index("ro") > cmdline.index("rw") if "rw" in cmdline else True),
          " ".join(cmdline))
    ahoy = files.get("ahoy.txt", "")
    settings = [line for line in ahoy.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    check("ahoy.txt is the commented template (every setting off)",
          ahoy.replace("\r\n", "\n") == TEMPLATE.read_text() and not settings,
          str(settings[:3]))
    check_update_image(image, parts)
    run_in_root(image, int(root["start"]), int(root["size"]))
    print("image checks passed" if not failures else f"{len(failures)} image check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
