#!/usr/bin/env python3
"""`make site-vm-test`: two whole boxes of a site and two phones on simulated radios, in a VM.

Inside one VM (qemu TCG, Debian trixie's kernel with mac80211_hwsim), box A and box B each
live in a network namespace with their own simulated radio and run what the image runs,
from the configs provisioning renders from their own ahoy.txt: hostapd (the same Wi-Fi
name and passphrase, channels 1 and 6), dnsmasq, the nftables ruleset, coturn, nats-server
and the Ahoy service. A veth pair is the backbone cable. Two phones (wpa_supplicant and
busybox's DHCP client on two more radios, phone.py speaking docs/protocol.md with aiortc):
one on A and one on B find each other, chat and complete a call across the backbone; then
the phone on A walks to B's radio and comes back as the same person with exactly the
messages it missed. See inside.py for the steps.

The VM's programs are this machine's own (the ones `make test` uses: hostapd, dnsmasq,
coturn, nats-server, wpa_supplicant, busybox, and the repo's .venv), shared read-only into
the VM over 9p under a RAM overlay: one Python environment for `make test` and this test,
nothing to build. Only the kernel and its modules come from the mesh test's cached
trixie root (image/meshtest/run.py, AHOY_IMAGE_CACHE).

Prints the steps as they come and a timeline; exits non-zero on failure. Needs root,
qemu-system-x86_64, cpio, mmdebstrap (first run, for the kernel), and on this machine
hostapd, dnsmasq, coturn, nats-server, wpasupplicant, busybox, iw and the repo's .venv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TIMEOUT_S = 1200
# The kernel's parts this test needs (the mesh test's list, plus 9p, overlayfs and veth).
EXTRA_MODULES = ("fs/9p", "net/9p", "fs/netfs", "fs/overlayfs", "fs/fscache", "drivers/virtio",
                 "drivers/net/veth.ko*", "net/sched")
PROGRAMS = ("hostapd", "dnsmasq", "turnserver", "nats-server", "wpa_supplicant", "wpa_cli",
            "busybox", "iw", "nft", "ip")

INIT = r"""#!/bin/sh
# PID 1 in the VM: load the radios, mount this machine's root read-only with a RAM
# overlay on top, and run inside.py there.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
say() { echo "AHOY-SITEVM $*" > /dev/ttyS0; }
say start "$(uname -r)"
. /sitevm.env
for m in 9pnet_virtio 9p overlay veth; do modprobe $m || say fail "modprobe $m"; done
modprobe mac80211_hwsim radios=6 || say fail "modprobe mac80211_hwsim"
mkdir -p /host /rw /new
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host \
  || say fail "mount 9p"
mount -t tmpfs -o size=1200m tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /new \
  || say fail "mount overlay"
mount -t proc proc /new/proc; mount -t sysfs sys /new/sys; mount -t devtmpfs dev /new/dev
# Not a tmpfs over /tmp: the repo (a CI clone) may live there. The overlay keeps
# every write in RAM anyway.
mount -t tmpfs tmpfs /new/run
say chroot
chroot /new /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 AHOY_PYTHON="$AHOY_PYTHON" \
  "$AHOY_PYTHON" "$AHOY_INSIDE" > /dev/ttyS0 2>&1
say done
sync
echo o > /proc/sysrq-trigger
busybox poweroff -f
"""


def meshtest() -> Any:
    spec = importlib.util.spec_from_file_location("meshtest_run", HERE.parent / "meshtest/run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def venv_python() -> Path:
    chosen = Path(os.environ.get("AHOY_VENV") or REPO / ".venv") / "bin" / "python"
    if not chosen.exists():
        raise SystemExit(f"site-vm-test: {chosen} is missing: run `make .venv/.installed` "
                         "(or set AHOY_VENV to a venv with requirements-dev.txt)")
    return chosen


def make_initramfs(work: Path, python: Path) -> tuple[Path, Path]:
    mesh = meshtest()
    root = work / "root"
    root.mkdir()
    with tarfile.open(mesh.base_root()) as tar:
        tar.extractall(root, filter="fully_trusted")
    kernel = sorted((root / "boot").glob("vmlinuz-*"))[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    modules = root / "usr/lib/modules" / version
    kept = modules.with_name(version + ".kept")
    kept.mkdir()
    for folder in (*mesh.MODULE_DIRS, *EXTRA_MODULES):
        for source in (modules / "kernel").glob(folder):
            target = kept / "kernel" / source.relative_to(modules / "kernel")
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
    for name in modules.glob("modules.*"):
        shutil.copy(name, kept / name.name)
    shutil.rmtree(modules)
    kept.rename(modules)
    subprocess.run(["chroot", str(root), "depmod", version], check=True)
    vmlinuz = work / "vmlinuz"
    shutil.copy(kernel, vmlinuz)
    for path in (root / "boot").iterdir():
        path.unlink() if path.is_file() or path.is_symlink() else shutil.rmtree(path)
    # The root's programs are not used (this machine's are): leave out the biggest.
    for heavy in ("usr/share/doc", "usr/share/locale", "usr/lib/x86_64-linux-gnu/perl"):
        shutil.rmtree(root / heavy, ignore_errors=True)
    (root / "sitevm.env").write_text(f"AHOY_PYTHON={python}\nAHOY_INSIDE={HERE / 'inside.py'}\n")
    init = root / "ahoy-sitevm"
    init.write_text(INIT)
    init.chmod(0o755)
    initrd = work / "initrd.cpio.gz"
    with open(initrd, "wb") as out:
        find = subprocess.Popen(["find", "."], cwd=root, stdout=subprocess.PIPE)
        cpio = subprocess.Popen(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root,
                                stdin=find.stdout, stdout=subprocess.PIPE)
        assert find.stdout is not None
        find.stdout.close()
        subprocess.run(["gzip", "-1"], stdin=cpio.stdout, stdout=out, check=True)
        cpio.wait()
        find.wait()
    return vmlinuz, initrd


def show(event: dict[str, Any]) -> None:
    fields = {k: v for k, v in event.items() if k not in ("event", "t", "host_s")}
    text = json.dumps(fields)
    if event["event"] != "log":
        text = text[:400]
    print(f"  [{event['t']:7.1f}s VM {event['host_s']:6.1f}s host] {event['event']} {text}",
          flush=True)


def boot(vmlinuz: Path, initrd: Path, console: Path, results: Path) -> list[dict[str, Any]]:
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-cpu", "max", "-smp", "2",
            "-m", "3072", "-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
            "-kernel", str(vmlinuz), "-initrd", str(initrd),
            "-append", "console=ttyS0 rdinit=/ahoy-sitevm panic=-1 quiet",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,"
                       "multidevs=remap",
            "-serial", f"file:{console}", "-serial", f"file:{results}"]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    events: list[dict[str, Any]] = []
    offset = 0
    try:
        while True:
            if results.exists():
                with results.open("rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                complete = chunk.rfind(b"\n") + 1
                offset += complete
                for raw in chunk[:complete].decode(errors="replace").splitlines():
                    if not raw.startswith("{"):
                        continue
                    try:
                        event = json.loads(raw)
                    except json.JSONDecodeError:
                        continue
                    event["host_s"] = round(time.monotonic() - started, 1)
                    events.append(event)
                    show(event)
            if any(e["event"] == "done" for e in events) or proc.poll() is not None:
                break
            if time.monotonic() - started > TIMEOUT_S:
                print(f"site-vm-test: the VM did not finish within {TIMEOUT_S} s", flush=True)
                break
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            time.sleep(2)
            proc.kill()
        proc.wait()
    print(f"site-vm-test: the VM ran {time.monotonic() - started:.0f} s", flush=True)
    return events


def timeline(events: list[dict[str, Any]]) -> None:
    def at(name: str, last: bool = False, **match: Any) -> float | None:
        for e in reversed(events) if last else events:
            if e["event"] == name and all(e.get(k) == v for k, v in match.items()):
                return float(e["t"])
        return None

    marks = [
        ("kernel to the test's first step (9p root, Python)", at("inside_start")),
        ("box B's channel chosen by its scan", at("channel_scan")),
        ("both boxes configured, backbone addresses taken", at("boxes_configured")),
        ("each box routes the other's phones (discovery)", at("backbone_routes")),
        ("box A's service answering", at("box_up", box="a")),
        ("box B's service answering", at("box_up", box="b")),
        ("phone1 on box A's Wi-Fi with a lease", at("phone_on_wifi", phone="phone1")),
        ("phone2 on box B's Wi-Fi with a lease", at("phone_on_wifi", phone="phone2")),
        ("both phones joined the chat", at("ben_join")),
        ("each sees the other across the backbone", at("people_across_boxes")),
        ("direct message A -> B -> A done", at("ana_expect")),
        ("call connected and ended", at("ben_answer")),
        ("roam: phone1 told to walk to box B", at("roam_start")),
        ("roam: phone1 associated with box B", at("roam_associated")),
        ("roam: phone1 has box B's address", at("phone_on_wifi", phone="phone1", box="b")),
        ("roam: Ana back in the chat, caught up", at("ana_join", last=True)),
        ("LAN-mode box on the ship's Wi-Fi (alongside)", at("lanbox_joined")),
        ("done", at("done")),
    ]
    print("\ntimeline (seconds since the VM's kernel started)")
    previous = None
    for label, t in marks:
        if t is None:
            print(f"  {'-':>7}         {label}")
            continue
        step = f"+{t - previous:5.1f}" if previous is not None else "      "
        print(f"  {t:7.1f} {step}  {label}")
        previous = t


def main() -> int:
    if os.geteuid() != 0:
        print("site-vm-test: needs root (mmdebstrap, chroot)", file=sys.stderr)
        return 2
    missing = [p for p in ("mmdebstrap", "qemu-system-x86_64", "cpio", *PROGRAMS)
               if shutil.which(p) is None]
    if missing:
        print(f"site-vm-test: not installed here: {', '.join(missing)}", file=sys.stderr)
        return 2
    # CI's time limit stops the test with SIGTERM: qemu is killed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    python = venv_python()
    out = REPO / "image" / "out" / "sitevm"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ahoy-sitevm-") as tmp:
        vmlinuz, initrd = make_initramfs(Path(tmp), python)
        print(f"site-vm-test: initramfs {initrd.stat().st_size // (1 << 20)} MiB "
              f"({time.monotonic() - started:.0f} s)", flush=True)
        console, results = out / "console.log", out / "results.log"
        for path in (console, results):
            path.unlink(missing_ok=True)
        events = boot(vmlinuz, initrd, console, results)
    timeline(events)
    problems = [f"{e['name']}" for e in events if e["event"] == "check" and not e["ok"]]
    problems += [e["error"] for e in events if e["event"] == "fail"]
    done = next((e for e in events if e["event"] == "done"), None)
    if done is None:
        problems.append(f"the test inside the VM did not finish (console: {console})")
    checks = [e for e in events if e["event"] == "check"]
    print(f"\n{len(checks) - len([c for c in checks if not c['ok']])} checks passed, "
          f"{len([c for c in checks if not c['ok']])} failed; whole test "
          f"{time.monotonic() - started:.0f} s")
    for problem in problems:
        print(f"site-vm-test: FAIL: {problem}")
    print("site-vm-test: " + ("FAILED" if problems or not checks else "passed"))
    return 1 if problems or not checks else 0


if __name__ == "__main__":
    sys.exit(main())
