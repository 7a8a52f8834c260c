#!/usr/bin/env python3
"""`make vm-test`: boot the amd64 test image twice under qemu (TCG, no KVM) and judge it.

Boot 1 (open network): the agent inside (agent.py) checks leases, the captive portal, HTTPS,
chat, STUN and a call, then starts a burst of messages; once enough acks have arrived here,
qemu is killed (the pulled plug). ahoy.txt on the boot partition is then switched to WPA2.
Boot 2: the hotspot must come back with the new config and every acked message must be in
the conversation's history.
Boot 3: the update image (boot and root partitions, out/vm/ahoy-vmtest-amd64-update.img) is
written over the disk, as an admin flashes it over the card: the box must come back with
the same ahoy.txt (put back from its copy on /data), every acked message, its data partition
ending at the disk's end, and the data file system clean (e2fsck -fn).

Reads the agent's JSON lines from the VM's second serial port; the first serial port (the
console) is kept in out/vm/run/console-N.log. Prints a timeline and exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VM = HERE.parent / "out" / "vm"
WPA2_PASSPHRASE = "vm-test-passphrase"


class Boot:
    """One run of the VM; `events` are the agent's lines with the host time they arrived."""

    def __init__(self, n: int, disk: Path, run_dir: Path, memory: str,
                 phase: int | str | None = None, extra: str = "") -> None:
        self.n = n
        self.console = run_dir / f"console-{n}.log"
        self.results = run_dir / f"results-{n}.log"
        for path in (self.console, self.results):
            path.unlink(missing_ok=True)
        cmdline = (f"root=LABEL=AHOYROOT ro console=ttyS0,115200 net.ifnames=0 "
                   f"ahoy.vmtest={phase or n} panic=10{extra}")
        self.argv = [
            "qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-cpu", "max",
            "-smp", "2", "-m", memory, "-display", "none", "-monitor", "none",
            "-no-reboot", "-nic", "none", "-device", "i6300esb",
            "-kernel", str(VM / "vmlinuz"), "-initrd", str(VM / "initrd.img"),
            "-append", cmdline,
            "-drive", f"file={disk},format=raw,if=virtio,cache=writeback",
            "-serial", f"file:{self.console}", "-serial", f"file:{self.results}",
        ]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
        self.events: list[dict[str, Any]] = []
        self._offset = 0

    def poll(self) -> list[dict[str, Any]]:
        """New agent lines since the last call."""
        new: list[dict[str, Any]] = []
        if not self.results.exists():
            return new
        with self.results.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        complete = chunk.rfind(b"\n") + 1
        self._offset += complete
        for raw in chunk[:complete].decode(errors="replace").splitlines():
            raw = raw.strip()
            if raw.startswith("{"):
                try:
                    event = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                event["host_s"] = round(time.monotonic() - self.started, 1)
                new.append(event)
                self.events.append(event)
                show(self.n, event)
        return new

    def pull_the_plug(self) -> bool:
        """Kill qemu; False when the VM had already stopped on its own (reset, panic)."""
        alive = self.proc.poll() is None
        if alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return alive

    def first(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["event"] == name), None)


def start_boot(n: int, disk: Path, run_dir: Path, memory: str, **kw: Any) -> Boot:
    """Boot n; booted again once when the kernel died before its first program ran.

    QEMU 7.2's TCG with two vCPUs now and then crashes Linux 6.12 while it patches its own
    code at start ("Oops: int3" in the first seconds, before /init): nothing of the disk
    has been touched then, so a second start tests the same thing.
    """
    boot = Boot(n, disk, run_dir, memory, **kw)
    while boot.proc.poll() is None:
        text = boot.console.read_bytes() if boot.console.exists() else b""
        if b"Run /init as init process" in text:
            return boot
        time.sleep(0.5)
    text = boot.console.read_bytes() if boot.console.exists() else b""
    if b"Kernel panic" in text and b"Run /init as init process" not in text:
        print(f"  boot {n}: the kernel crashed before /init under TCG (see "
              f"{boot.console.name}.first); booting again", flush=True)
        boot.console.replace(boot.console.with_name(boot.console.name + ".first"))
        boot = Boot(n, disk, run_dir, memory, **kw)
    return boot


def show(n: int, event: dict[str, Any]) -> None:
    if event["event"] == "ack":
        return
    fields = {k: v for k, v in event.items() if k not in ("event", "t", "host_s", "ids")}
    text = json.dumps(fields)[:300]
    print(f"  boot {n} [{event['t']:7.1f}s in VM, {event['host_s']:6.1f}s host] "
          f"{event['event']} {text}", flush=True)


def boot_partition_offset(disk: Path) -> int:
    table = json.loads(subprocess.check_output(["sfdisk", "--json", str(disk)]))
    return int(table["partitiontable"]["partitions"][0]["start"]) * 512


def set_box_config(disk: Path, text: str, scratch: Path) -> None:
    """Replace ahoy.txt on the image's boot partition (FAT) without mounting it."""
    scratch.write_text(text)
    image = f"{disk}@@{boot_partition_offset(disk)}"
    subprocess.run(["mcopy", "-o", "-i", image, str(scratch), "::ahoy.txt"], check=True)


def wait_for(boot: Boot, done: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for event in boot.poll():
            if done(event):
                return True
        if boot.proc.poll() is not None:
            boot.poll()
            print(f"  boot {boot.n}: qemu exited ({boot.proc.returncode})", flush=True)
            return False
        time.sleep(0.3)
    print(f"  boot {boot.n}: timed out after {timeout:.0f} s; see {boot.console}", flush=True)
    return False


def partition_table(disk: Path) -> list[dict[str, Any]]:
    table = json.loads(subprocess.check_output(["sfdisk", "--json", str(disk)]))
    return list(table["partitiontable"]["partitions"])


def read_box_config(disk: Path, scratch: Path) -> str | None:
    image = f"{disk}@@{boot_partition_offset(disk)}"
    done = subprocess.run(["mtype", "-i", image, "::ahoy.txt"], capture_output=True, check=False)
    return done.stdout.decode() if done.returncode == 0 else None


def data_clean_after_replay(disk: Path, scratch: Path) -> tuple[bool, str]:
    """Replay the data partition's journal on a copy (as the next mount would), then
    e2fsck -fn it: 0 means clean. (The VM's plug was pulled: without the replay, e2fsck -n
    reports the blocks the journal still holds as bitmap differences.)"""
    data = partition_table(disk)[2]
    copy = scratch / "data.fs"
    subprocess.run(["dd", f"if={disk}", f"of={copy}", "bs=4M", "conv=sparse", "status=none",
                    "iflag=skip_bytes,count_bytes", f"skip={int(data['start']) * 512}",
                    f"count={int(data['size']) * 512}"], check=True)
    try:
        subprocess.run(["e2fsck", "-E", "journal_only", "-y", str(copy)],
                       capture_output=True, check=False)
        done = subprocess.run(["e2fsck", "-fn", str(copy)], capture_output=True, text=True,
                              check=False)
    finally:
        copy.unlink()
    return done.returncode == 0, (done.stdout + done.stderr).strip()[-400:]


def update_and_boot(disk: Path, run_dir: Path, args: argparse.Namespace, acked: list[str],
                    failures: list[str]) -> Boot | None:
    """Boot 3: the update image written over the disk (as an admin flashes it over the
    card); the data partition, its messages and ahoy.txt must survive."""
    update = VM / "ahoy-vmtest-amd64-update.img"
    if not update.exists():
        failures.append(f"boot 3: {update} is missing (make -C image vm-image)")
        return None
    before = read_box_config(disk, run_dir / "ahoy.txt")
    subprocess.run(["dd", f"if={update}", f"of={disk}", "bs=4M", "conv=notrunc,sparse",
                    "status=none"], check=True)
    print("boot 3: the update image was written over the disk (boot and root partitions); "
          "data partition, messages and ahoy.txt must survive", flush=True)
    third = start_boot(3, disk, run_dir, args.memory, phase=2)
    wait_for(third, lambda e: e["event"] == "done", args.timeout)
    if not third.pull_the_plug() and not third.first("done"):
        failures.append(f"boot 3: the VM stopped on its own (see {third.console})")
    history = third.first("history")
    if history is None:
        failures.append("boot 3: no history from the box")
    else:
        missing = sorted(set(acked) - set(history["ids"]))
        print(f"  boot 3: {len(history['ids'])} messages in the conversation, "
              f"{len(missing)} of the {len(acked)} acknowledged missing", flush=True)
        if missing:
            failures.append(f"boot 3: acknowledged messages lost in the update: {missing[:5]}")
    for event in third.events:
        if event["event"] == "check" and not event["ok"]:
            failures.append(f"boot 3: {event['name']}")
        if event["event"] == "fail":
            failures.append(f"boot 3: {event['error']}")
    after = read_box_config(disk, run_dir / "ahoy.txt")
    same = after is not None and after == before
    print(f"  boot 3: ahoy.txt put back byte for byte: {same}", flush=True)
    if not same:
        failures.append("boot 3: ahoy.txt was not put back as it was before the update")
    data = partition_table(disk)[2]
    end = (int(data["start"]) + int(data["size"])) * 512
    print(f"  boot 3: data partition ends at {end} of {disk.stat().st_size} bytes", flush=True)
    if end != disk.stat().st_size:
        failures.append("boot 3: the data partition does not end at the end of the disk")
    clean, report = data_clean_after_replay(disk, run_dir)
    print(f"  boot 3: e2fsck -fn of the data partition, its journal replayed: "
          f"{'clean' if clean else report}",
          flush=True)
    if not clean:
        failures.append("boot 3: the data partition is not clean after the update")
    return third


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acks", type=int, default=40,
                        help="pull the plug after this many acknowledged burst messages")
    parser.add_argument("--memory", default="1536M")
    parser.add_argument("--timeout", type=float, default=1500,
                        help="seconds allowed for each boot")
    parser.add_argument("--no-update", action="store_true",
                        help="skip boot 3 (the update image flashed over the disk)")
    args = parser.parse_args()
    image = VM / "ahoy-vmtest-amd64.img"
    if not image.exists():
        print(f"{image} is missing: build it with `make -C image vm-image`", file=sys.stderr)
        return 2
    if shutil.which("qemu-system-x86_64") is None:
        print("qemu-system-x86_64 is missing: apt-get install qemu-system-x86", file=sys.stderr)
        return 2
    run_dir = VM / "run"
    run_dir.mkdir(exist_ok=True)
    disk = run_dir / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)
    # A bigger "card" than the image: the first boot grows the data partition into it.
    os.truncate(disk, disk.stat().st_size + 256 * 1024 * 1024)

    failures: list[str] = []
    started = time.monotonic()
    print("boot 1: open network; phones join, chat, call; then the plug is pulled", flush=True)
    first = start_boot(1, disk, run_dir, args.memory)
    acked: list[str] = []

    def burst_done(event: dict[str, Any]) -> bool:
        if event["event"] == "ack":
            acked.append(event["id"])
        return len(acked) >= args.acks or (event["event"] == "done")

    reached = wait_for(first, lambda e: e["event"] == "burst_start" or e["event"] == "done",
                       args.timeout)
    if reached and first.first("burst_start"):
        reached = wait_for(first, burst_done, 300)
    if not first.pull_the_plug():
        failures.append(f"boot 1: the VM stopped on its own (see {first.console})")
    print(f"  boot 1: plug pulled with {len(acked)} burst messages acknowledged", flush=True)
    for event in first.events:
        if event["event"] == "check" and not event["ok"]:
            failures.append(f"boot 1: {event['name']}")
        if event["event"] == "fail":
            failures.append(f"boot 1: {event['error']}")
    if not acked:
        failures.append("boot 1: no burst message was acknowledged")

    set_box_config(disk, (HERE / "ahoy.txt").read_text()
                   + f"wifi_passphrase = {WPA2_PASSPHRASE}\n", run_dir / "ahoy.txt")
    print("boot 2: WPA2 now; the hotspot must come back with every acknowledged message",
          flush=True)
    second = start_boot(2, disk, run_dir, args.memory)
    wait_for(second, lambda e: e["event"] == "done", args.timeout)
    if not second.pull_the_plug() and not second.first("done"):
        failures.append(f"boot 2: the VM stopped on its own (see {second.console})")
    history = second.first("history")
    if history is None:
        failures.append("boot 2: no history from the box")
    else:
        missing = sorted(set(acked) - set(history["ids"]))
        print(f"  boot 2: {len(acked)} acknowledged before the plug, {len(history['ids'])} "
              f"in the conversation, {len(missing)} missing", flush=True)
        if missing:
            failures.append(f"boot 2: acknowledged messages lost: {missing[:5]}")
    for event in second.events:
        if event["event"] == "check" and not event["ok"]:
            failures.append(f"boot 2: {event['name']}")
        if event["event"] == "fail":
            failures.append(f"boot 2: {event['error']}")

    boots = [first, second]
    if not args.no_update:
        third = update_and_boot(disk, run_dir, args, acked, failures)
        if third is not None:
            boots.append(third)

    print("\ntimeline (seconds; VM = since the kernel started, host = since qemu started)")
    for boot in boots:
        up = boot.first("hotspot_up")
        phone = next((e for e in boot.events if e["event"] == "phone_ready"), None)
        app = next((e for e in boot.events if e["event"] == "check"
                    and e["name"].startswith("web app over HTTPS") and e["ok"]), None)
        joined = next((e for e in boot.events if e["event"] == "phone_joined"), None)
        if up:
            print(f"  boot {boot.n}: boot to hotspot up      {up['t']:6.1f} VM "
                  f"{up['host_s']:6.1f} host")
        if up and phone:
            print(f"  boot {boot.n}: hotspot up to phone on Wi-Fi with a lease "
                  f"{phone['t'] - up['t']:6.1f}")
        if up and app:
            print(f"  boot {boot.n}: hotspot up to first phone with the app (portal, HTTPS) "
                  f"{app['t'] - up['t']:6.1f}")
        if up and joined:
            print(f"  boot {boot.n}: hotspot up to both phones joined in the app "
                  f"{joined['t'] - up['t']:6.1f}")
    print(f"  whole VM test: {time.monotonic() - started:.0f} s")
    if failures:
        print("\nVM test FAILED:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print("\nVM test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
