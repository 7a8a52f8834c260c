#!/usr/bin/env python3
"""`make arm64-boot-test`: boot the real arm64 image under qemu-system-aarch64 and judge it.

The machine is QEMU's `raspi3b` (TCG, no KVM) with the image's own kernel, initrd and
`bcm2837-rpi-3-b.dtb` from its boot partition and a copy of the image, padded to 2 GiB (an
SD card's size must be a power of two), as the SD card: the same boot path as a Pi 3, so
nothing in the image is changed for the test. (`-M virt` would need virtio drivers the
initramfs does not carry.) The kernel command line is the image's cmdline.txt plus two
things for the test only: `modprobe.blacklist=bcm2835_wdt` (QEMU's raspi3b resets the
machine as soon as systemd arms the BCM2835 watchdog) and `systemd.debug_shell=ttyS1`,
a root shell on the serial console that this script types its checks into.

Checked: first boot grows the data partition and makes the secrets, the root is read-only
with a RAM overlay, ahoy-provision applied ahoy.txt (and said the radio is missing: the
raspi3b machine has none), ahoy.service answers /healthz, and hostapd, dnsmasq and coturn
are not restarted in a loop without the radio.

Then the radio part (radiophone.py, copied to the card's boot partition and run by the
image's own Python): `mac80211_hwsim` from the image's arm64 kernel gives the machine two
radios; the box's hotspot comes up on wlan0 (its udev rule has provisioning apply again),
and a phone on wlan1, in a network namespace, joins it with wpa_supplicant, gets a DHCP
lease from the box's dnsmasq, meets the captive portal (its probe redirected, then answered
after Continue) and chats (a message acked and read back by a second phone).
`--radio-timeout 0` leaves the radio part out.

Prints a timeline (seconds since the kernel started, and since qemu started). The console
is kept in out/arm64boot/console.log.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "out"
CARD_BYTES = 2 * 1024**3
MARK = "AHOY" + "-S "  # split so the shell's echo of the script never matches
RADIO_MARK = "AHOY-R "  # radiophone.py's lines (the command typed does not contain it)
PHONE_PYTHON = "/opt/ahoy/venv/bin/python"  # the image's own, with simple-websocket

# Typed into the VM's shell once (a heredoc), then run again and again. One JSON line.
PROBE = r'''
import json, os, subprocess, urllib.request
def sh(*a):
    return subprocess.run(a, capture_output=True, text=True).stdout.strip()
def unit(name):
    # key=value lines: systemctl prints the properties in its own order, not the asked one
    out = sh("systemctl", "show", name, "-p", "ActiveState,SubState,NRestarts,"
             "ActiveEnterTimestampMonotonic,ExecMainStatus")
    p = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {"state": p.get("ActiveState", ""), "sub": p.get("SubState", ""),
            "at": int(p.get("ActiveEnterTimestampMonotonic") or 0) / 1e6,
            "restarts": int(p.get("NRestarts") or 0), "status": p.get("ExecMainStatus", "")}
s = {"uptime": float(open("/proc/uptime").read().split()[0])}
units = ["ahoy-data-partition.service", "ahoy-provision.service", "ahoy.service",
         "multi-user.target", "hostapd@wlan0.service", "dnsmasq.service", "coturn.service"]
s["units"] = {u: unit(u) for u in units}
st = os.statvfs("/data") if os.path.ismount("/data") else None
s["data_mb"] = st.f_blocks * st.f_frsize // 2**20 if st else 0
d = "/data/ahoy/secrets/"
s["secrets"] = sorted(os.listdir(d)) if os.path.isdir(d) else []
s["tls"] = sorted(os.listdir("/data/ahoy/tls")) if os.path.isdir("/data/ahoy/tls") else []
s["root"] = sh("findmnt", "-n", "-o", "FSTYPE", "/")
s["lower"] = sh("findmnt", "-n", "-o", "OPTIONS", "/media/root-ro")
s["note"] = os.path.exists("/boot/firmware/ahoy-admin-password.txt")
s["last_good"] = os.path.exists("/data/ahoy/config/ahoy.last-good.txt")
try:
    with urllib.request.urlopen("http://127.0.0.1/healthz", timeout=10) as r:
        h = json.load(r)
    s["healthz"] = {k: h.get(k) for k in ("status", "version", "hotspot_up", "state",
                                            "config_ok", "problems") if k in h}
except Exception as e:
    s["healthz"] = {"error": str(e)[:100]}
s["provision"] = sh("journalctl", "-b", "-o", "cat", "-u", "ahoy-provision.service")[-1500:]
print("AHOY" + "-S " + json.dumps(s), flush=True)
'''


class Console:
    """The VM's serial console (ttyS1, the Pi's mini UART) over a unix socket."""

    def __init__(self, path: Path, log: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        end = time.monotonic() + 30
        while True:
            try:
                self.sock.connect(str(path))
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)
        self.log = log.open("wb")
        self.lines: list[str] = []
        self._partial = b""
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            self.log.write(chunk)
            self.log.flush()
            data = self._partial + chunk
            *complete, self._partial = data.split(b"\n")
            with self._lock:
                self.lines += [c.decode(errors="replace").strip("\r") for c in complete]

    def take(self) -> list[str]:
        with self._lock:
            lines, self.lines = self.lines, []
        return lines

    def type(self, text: str) -> None:
        for line in text.splitlines(keepends=True):
            self.sock.sendall(line.encode())
            time.sleep(0.05)  # the mini UART's small receive buffer


def boot_offset(image: Path) -> int:
    table = json.loads(subprocess.check_output(["sfdisk", "--json", str(image)]))
    return int(table["partitiontable"]["partitions"][0]["start"]) * 512


def card_files(image: Path, workdir: Path) -> tuple[Path, Path, Path, str]:
    offset = boot_offset(image)
    target = f"{image}@@{offset}"
    names = subprocess.check_output(["mdir", "-b", "-i", target, "::/"], text=True).split()
    names = [n.removeprefix("::/") for n in names]
    kernel = next(n for n in names if n.startswith("vmlinuz-"))
    initrd = next(n for n in names if n.startswith("initrd.img-"))
    for name in (kernel, initrd, "bcm2837-rpi-3-b.dtb", "cmdline.txt"):
        subprocess.run(["mcopy", "-o", "-n", "-i", target, f"::{name}", str(workdir / name)],
                       check=True)
    cmdline = (workdir / "cmdline.txt").read_text().strip()
    return workdir / kernel, workdir / initrd, workdir / "bcm2837-rpi-3-b.dtb", cmdline


def judge(s: dict[str, Any]) -> list[tuple[str, bool, str]]:
    units = s["units"]
    provision = s.get("provision", "")
    return [
        ("first boot grew the data partition", s["data_mb"] > 128, f"{s['data_mb']} MiB"),
        ("first boot made the secrets (admin password, TURN secret) and certificates",
         "admin-password.json" in s["secrets"] and "turn-secret" in s["secrets"]
         and bool(s["tls"]), f"{s['secrets']} {s['tls']}"),
        ("admin password note on AHOYBOOT", s["note"], ""),
        ("root is a RAM overlay on a read-only root file system",
         s["root"] == "overlay" and "ro" in s["lower"].split(","), f"{s['root']} {s['lower']}"),
        ("ahoy-provision applied ahoy.txt (last good config kept)",
         units["ahoy-provision.service"]["state"] == "active" and s["last_good"],
         str(units["ahoy-provision.service"])),
        ("ahoy-provision says the radio is missing",
         "wlan0" in provision and "not started" in provision, provision[-300:]),
        ("ahoy.service answers /healthz", s["healthz"].get("status") == "ok", str(s["healthz"])),
        ("hostapd, dnsmasq and coturn not restarted in a loop without the radio",
         all(units[u]["restarts"] == 0 and units[u]["state"] != "activating"
             for u in ("hostapd@wlan0.service", "dnsmasq.service", "coturn.service")),
         str({u: units[u] for u in ("hostapd@wlan0.service", "coturn.service")})),
    ]


def radio_part(console: Console, qemu: subprocess.Popen[bytes], timeout: float,
               started: float, timeline: list[tuple[str, float]]) -> dict[str, Any]:
    """mac80211_hwsim's two radios: the box's hotspot on one, a phone on the other
    (radiophone.py, run by the image's own Python). The steps as the VM reported them."""
    console.take()
    console.type(f"{PHONE_PYTHON} /boot/firmware/radiophone.py\n")
    steps: dict[str, Any] = {}
    end = time.monotonic() + timeout
    while time.monotonic() < end and qemu.poll() is None:
        for line in console.take():
            if RADIO_MARK not in line:
                continue
            try:
                step = json.loads(line.split(RADIO_MARK, 1)[1])
            except json.JSONDecodeError:
                continue
            name = step.get("step") or "result"
            steps[name] = step
            timeline.append((f"radio: {name}", time.monotonic() - started))
            print(f"  [{time.monotonic() - started:6.1f}s host] radio {name} "
                  f"{json.dumps(step)[:300]}", flush=True)
            if "result" in step:
                return steps
        time.sleep(0.5)
    steps["result"] = {"result": "failed", "error": f"no result within {timeout:.0f} s"}
    return steps


def judge_radio(radio: dict[str, Any] | None) -> list[tuple[str, bool, str]]:
    """The radio part's checks; all fail, each saying why, when it did not run."""
    radio = radio or {"result": {"result": "failed", "error": "not run (no /healthz)"}}
    result = radio.get("result", {})
    why = str(result.get("error", ""))
    portal = radio.get("portal", {})
    chat = radio.get("chat", {})
    return [
        ("with mac80211_hwsim's radios, the hotspot comes up", "hotspot_up" in radio, why),
        ("a phone joins it and gets a DHCP lease from the box", "lease" in radio, why),
        ("the phone's probe is sent to the portal, then answered after Continue",
         portal.get("probe_before") in (301, 302, 303, 307) and portal.get("probe_after") == 204,
         str(portal) or why),
        ("the phone chats: its message is acked and read back by another phone",
         bool(chat.get("read_back")), str(chat) or why),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path)
    parser.add_argument("--timeout", type=float, default=1200,
                        help="seconds allowed from qemu's start to /healthz")
    parser.add_argument("--radio-timeout", type=float, default=1500,
                        help="seconds allowed for the radio part (0: leave it out)")
    args = parser.parse_args()
    image = args.image or next(iter(sorted(OUT.glob("ahoy-*[0-9]-arm64.img"))), None)
    if image is None or not image.exists():
        print("no arm64 image: run `make image` first", file=sys.stderr)
        return 2
    workdir = OUT / "arm64boot"
    workdir.mkdir(parents=True, exist_ok=True)
    disk = workdir / "card.img"
    subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)
    if disk.stat().st_size > CARD_BYTES:
        print(f"{image} is bigger than the 2 GiB test card", file=sys.stderr)
        return 2
    os.truncate(disk, CARD_BYTES)
    kernel, initrd, dtb, cmdline = card_files(image, workdir)
    # The radio part's script, beside ahoy.txt on the copy's boot partition (the image
    # itself is not changed).
    subprocess.run(["mcopy", "-o", "-i", f"{disk}@@{boot_offset(image)}",
                    str(HERE / "radiophone.py"), "::radiophone.py"], check=True)
    cmdline += " modprobe.blacklist=bcm2835_wdt systemd.debug_shell=ttyS1"
    sock = workdir / "console.sock"
    sock.unlink(missing_ok=True)
    argv = ["qemu-system-aarch64", "-M", "raspi3b", "-m", "1G", "-accel", "tcg",
            "-display", "none", "-monitor", "none", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(initrd), "-dtb", str(dtb),
            "-append", cmdline,
            "-drive", f"file={disk},if=sd,format=raw",
            "-chardev", f"socket,id=console,path={sock},server=on,wait=off",
            "-serial", "null", "-serial", "chardev:console"]
    print(f"image: {image}\ncommand line: {cmdline}", flush=True)
    started = time.monotonic()
    qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    console = Console(sock, workdir / "console.log")
    shell_up = typed = False
    kernel_at: float | None = None
    last: dict[str, Any] | None = None
    next_probe = 0.0
    seen: set[str] = set()
    timeline: list[tuple[str, float]] = []
    verdict = "timed out"
    settle_until = 0.0
    radio: dict[str, Any] | None = None
    try:
        while time.monotonic() - started < args.timeout:
            if qemu.poll() is not None:
                verdict = f"qemu exited ({qemu.returncode})"
                break
            for line in console.take():
                if kernel_at is None and "Booting Linux" in line:
                    kernel_at = time.monotonic() - started
                for note, words in (("systemd started", "Welcome to Debian"),
                                    ("admin password printed", "Ahoy admin password"),
                                    ("provisioning done", "ahoy-provision: done")):
                    if words in line and note not in seen:
                        seen.add(note)
                        timeline.append((note, time.monotonic() - started))
                        print(f"  [{time.monotonic() - started:6.1f}s host] {note}", flush=True)
                if line.startswith(MARK.strip()) or MARK in line:
                    try:
                        last = json.loads(line.split(MARK, 1)[1])
                    except (IndexError, json.JSONDecodeError):
                        continue
                    if not shell_up:
                        shell_up = True
            now = time.monotonic()
            if now >= next_probe:
                next_probe = now + 20
                if not typed:
                    # The shell may not be there yet: typing the script again is harmless.
                    console.type("cat > /run/ahoy-probe.py <<'EOF'\n" + PROBE.strip()
                                 + "\nEOF\n")
                console.type("python3 /run/ahoy-probe.py\n")
            if last is not None:
                typed = True
                health = last["healthz"].get("status") == "ok"
                provisioned = last["units"]["ahoy-provision.service"]["state"] == "active"
                if health and provisioned:
                    if "healthz" not in seen:
                        seen.add("healthz")
                        timeline.append(("/healthz answers", now - started))
                        print(f"  [{now - started:6.1f}s host] /healthz answers; waiting 60 s "
                              "more to see that nothing restarts in a loop", flush=True)
                        settle_until = now + 60
                    elif now >= settle_until and last["uptime"] > 0:
                        verdict = "done"
                        break
            time.sleep(0.5)
        if verdict == "done" and args.radio_timeout > 0:
            radio = radio_part(console, qemu, args.radio_timeout, started, timeline)
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait()
    total = time.monotonic() - started
    failures: list[str] = []
    if last is None:
        failures.append(f"no answer from the VM's shell ({verdict}); see {workdir}/console.log")
    else:
        for name, ok, detail in judge(last):
            print(f"  {'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
            if not ok:
                failures.append(name)
        if verdict != "done":
            failures.append(verdict)
        if args.radio_timeout > 0:
            for name, ok, detail in judge_radio(radio):
                print(f"  {'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
                if not ok:
                    failures.append(name)
        print("\ntimeline (seconds since the kernel started, from systemd's clocks)")
        for name in ("ahoy-data-partition.service", "ahoy-provision.service", "ahoy.service",
                     "multi-user.target"):
            at = last["units"][name]["at"]
            shown = f"active at {at:7.1f}" if at else "not active"
            print(f"  {name:32s} {shown}")
        print("host side (seconds since qemu started)")
        if kernel_at is not None:
            print(f"  {'kernel started':32s} {kernel_at:7.1f}")
        for name, at in timeline:
            print(f"  {name:32s} {at:7.1f}")
        print(f"  {'whole test':32s} {total:7.1f}")
    if failures:
        print("\narm64 boot test FAILED:\n" + "\n".join(f"  - {f}" for f in failures))
        return 1
    print("\narm64 boot test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
