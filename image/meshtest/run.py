#!/usr/bin/env python3
"""`make mesh-test`: the Wi-Fi mesh backbone on simulated radios, in a small VM.

Three boxes' second radios (mac80211_hwsim, one network namespace each) join the
site's 802.11s mesh with the wpa_supplicant config Ahoy renders
(`provisioning.mesh.render_wpa_supplicant`) and are put under batman-adv with the
commands `provisioning.apply` runs (`provisioning.mesh.batman_commands`). Boxes A
and B know the site secret; box C has another one. The VM reports batctl's
originator tables and pings over bat0 (the backbone) on its serial console; this
script judges them with `provisioning.mesh.parse_originators`:

- A and B see each other as direct mesh neighbours with a link quality;
- IPv4 goes between them over bat0 (link-local addresses, as the backbone uses);
- C, with a wrong secret, is nobody's neighbour and reaches nobody.

Then roaming in the same boot: A and B make hotspots with the hostapd, dnsmasq and
nftables files provisioning renders for a site (one Wi-Fi name and passphrase, their own
subnets), routed to each other over bat0; a phone joins A (address in A's subnet,
`ahoy.internal` = A), A's hotspot stops, the phone moves to B by itself (address in B's
subnet, `ahoy.internal` = B) and reaches box A across the mesh through B's firewall.

The VM is the Debian trixie amd64 kernel (it has mac80211_hwsim and batman-adv)
with a root made by mmdebstrap (iw, wpasupplicant, batctl, iproute2), booted as an
initramfs under qemu (TCG). The root is cached (AHOY_IMAGE_CACHE or image/cache).
Needs root (mmdebstrap), qemu-system-x86_64 and cpio. Exits non-zero on failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from provisioning import mesh  # noqa: E402
from provisioning.config import parse_config  # noqa: E402

PACKAGES = ["iproute2", "iw", "wpasupplicant", "batctl", "kmod", "busybox", "linux-image-amd64",
            "hostapd", "dnsmasq-base", "nftables", "netbase"]
MIRROR = os.environ.get("AHOY_MIRROR", "http://deb.debian.org/debian")
SUITE = "trixie"
SECRET = "tern gravel copper lantern"
WRONG_SECRET = "a different secret, not this site's"
# Only what the test needs from the kernel's modules, so the initramfs stays small.
MODULE_DIRS = ("net/wireless", "net/mac80211", "net/batman-adv", "drivers/net/wireless/virtual",
               "lib", "crypto", "arch/x86/crypto", "net/rfkill", "net/core", "net/ipv4",
               "net/bridge", "net/802", "net/llc", "net/netfilter", "net/ipv4/netfilter",
               "net/ipv6")
TIMEOUT_S = 600

INIT = r"""#!/bin/sh
# Inside the VM: three radios in three namespaces, mesh and batman-adv, then report.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /run /tmp /var/run/netns; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
say() { echo "AHOY-MESH $*" > /dev/ttyS0; }
say start "$(uname -r)"
modprobe mac80211_hwsim radios=6 || say fail "modprobe mac80211_hwsim"
modprobe batman-adv || say fail "modprobe batman-adv"
i=0
for box in a b c; do
  ip netns add $box
  iw phy phy$i set netns name $box || say fail "iw phy phy$i set netns"
  ip netns exec $box ip link set lo up
  i=$((i+1))
done
i=0
for box in a b c; do
  ip netns exec $box sh /cmds-$box.sh > /tmp/cmds-$box.log 2>&1 \
    || say fail "batman $box: $(tail -1 /tmp/cmds-$box.log)"
  ip netns exec $box wpa_supplicant -B -i wlan$i -c /mesh-$box.conf -f /tmp/wpa-$box.log
  ip netns exec $box ip addr add 169.254.10.$((i+1))/16 dev bat0
  i=$((i+1))
done
# Wait for the mesh to form and batman-adv to learn the paths (OGMs every second).
n=0
while [ $n -lt 60 ]; do
  if ip netns exec a batctl meshif bat0 originators -H 2>/dev/null | grep -q '\*'; then break; fi
  sleep 1; n=$((n+1))
done
sleep 5
for box in a b c; do
  say "iw-$box" "$(ip netns exec $box iw dev | tr '\n' ' ')"
  ip netns exec $box batctl meshif bat0 originators | sed "s/^/AHOY-MESH orig-$box /" > /dev/ttyS0
done
# A young mesh under an emulated CPU loses packets (link quality can start near
# 25/255): the first answer within 15 tries is what counts, not the first ping.
ab=fail
n=0
while [ $n -lt 15 ]; do
  if ip netns exec a busybox ping -c 1 -W 2 169.254.10.2 >/dev/null 2>&1; then ab=ok; break; fi
  n=$((n+1))
done
say ping-ab $ab
if ip netns exec a busybox ping -c 2 -W 2 169.254.10.3 >/dev/null 2>&1
then say ping-ac ok; else say ping-ac fail; fi

# --- Roaming: boxes A and B make their hotspots (same Wi-Fi name and passphrase, their own
# subnets), routed to each other over bat0; a phone joins A, then A's hotspot stops and
# the phone moves to B by itself.
mkdir -p /run/hostapd
ip netns add phone
iw phy phy3 set netns name a; iw phy phy4 set netns name b; iw phy phy5 set netns name phone
ip netns exec phone ip link set lo up
for box in a b; do
  . /hotspot-$box.env
  ip netns exec $box ip addr add $BOX_CIDR dev $HOTSPOT
  ip netns exec $box ip link set $HOTSPOT up
  # What apply does with sysctl (not in this small root): the box routes between hotspots.
  ip netns exec $box sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
  ip netns exec $box nft -f /nft-$box.nft > /tmp/nft-$box.log 2>&1 \
    || say fail "nft $box: $(head -3 /tmp/nft-$box.log | tr '\n' ' ')"
  ip netns exec $box ip route add $OTHER_SUBNET via $OTHER_BACKBONE dev bat0
  ip netns exec $box dnsmasq --conf-file=/dnsmasq-$box.conf --pid-file=/tmp/dnsmasq-$box.pid \
    --user=root || say fail "dnsmasq $box"
done
ip netns exec a hostapd -B -P /tmp/hostapd-a.pid /hostapd-a.conf > /tmp/hostapd-a.log 2>&1 \
  || say fail "hostapd a: $(tail -1 /tmp/hostapd-a.log)"
ip netns exec phone wpa_supplicant -B -i wlan5 -c /phone.conf -f /tmp/wpa-phone.log
joined() {
  n=0
  while [ $n -lt 40 ]; do
    if ip netns exec phone iw dev wlan5 link | grep -q "Connected to $1"; then return 0; fi
    sleep 1; n=$((n+1))
  done
  return 1
}
lease() {
  ip netns exec phone ip addr flush dev wlan5
  ip netns exec phone busybox udhcpc -i wlan5 -n -q -t 10 -s /udhcpc.sh > /dev/null 2>&1 \
    || say fail "no lease on $1"
  say "phone-$1-lease" "$(ip netns exec phone ip -4 -o addr show dev wlan5 | tr -s ' ')"
  say "phone-$1-dns" "$(ip netns exec phone busybox nslookup ahoy.internal $2 2>&1 | tr '\n' ' ')"
}
. /hotspot-a.env; A_ADDR=${BOX_CIDR%/*}; A_BSSID=$BSSID
. /hotspot-b.env; B_ADDR=${BOX_CIDR%/*}; B_BSSID=$BSSID
joined $A_BSSID && say phone-joined a || say fail "the phone did not join box A"
lease a $A_ADDR
ip netns exec b hostapd -B -P /tmp/hostapd-b.pid /hostapd-b.conf > /tmp/hostapd-b.log 2>&1 \
  || say fail "hostapd b: $(tail -1 /tmp/hostapd-b.log)"
sleep 3
kill $(cat /tmp/hostapd-a.pid)
# Box A itself stays on the site (only its Wi-Fi went): its hotspot address stays up.
sleep 1
. /hotspot-a.env
ip netns exec a ip link set $HOTSPOT up
ip netns exec a ip addr replace $BOX_CIDR dev $HOTSPOT
joined $B_BSSID && say phone-joined b || say fail "the phone did not move to box B"
lease b $B_ADDR
if ip netns exec phone busybox ping -c 3 -W 3 $A_ADDR >/dev/null 2>&1
then say ping-phone-on-b-to-box-a ok; else say ping-phone-on-b-to-box-a fail
say diag-b-to-a "$(ip netns exec b busybox ping -c 1 -W 2 $A_ADDR 2>&1 | tr '\n' ' ')"
say diag-a-addr "$(ip -n a -4 -o addr | tr -s ' ' | tr '\n' ' ')"
say diag-a-routes "$(ip -n a -4 route | tr '\n' ';')"
say diag-b-routes "$(ip -n b -4 route | tr '\n' ';')"
say diag-phone-routes "$(ip -n phone -4 route | tr '\n' ';')"
say diag-b-forward "$(ip netns exec b nft list chain inet ahoy forward | tr '\n' ' ' | tr -s ' \t')"
fi
tail -8 /tmp/wpa-phone.log | sed 's/^/AHOY-MESH wpa-phone /' > /dev/ttyS0
tail -5 /tmp/wpa-a.log | sed 's/^/AHOY-MESH wpa-a /' > /dev/ttyS0
tail -5 /tmp/wpa-c.log | sed 's/^/AHOY-MESH wpa-c /' > /dev/ttyS0
say done
sync
echo o > /proc/sysrq-trigger
busybox poweroff -f
"""


def cache_dir() -> Path:
    folder = Path(os.environ.get("AHOY_IMAGE_CACHE") or REPO / "image" / "cache") / "meshtest"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def base_root() -> Path:
    """The mmdebstrap root as a tar, made once per package list and suite."""
    key = hashlib.sha256(f"{SUITE} {' '.join(PACKAGES)} {MIRROR}".encode()).hexdigest()[:16]
    tar = cache_dir() / f"root-{key}.tar"
    if tar.exists():
        return tar
    print(f"mesh-test: making the VM's root with mmdebstrap ({', '.join(PACKAGES)})")
    partial = tar.with_suffix(".partial.tar")
    subprocess.run([
        "mmdebstrap", "--variant=essential", f"--include={','.join(PACKAGES)}",
        "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=force-confold",
        # No initramfs: the whole root is the VM's initramfs.
        '--essential-hook=mkdir -p "$1/etc/initramfs-tools"; '
        'echo update_initramfs=no > "$1/etc/initramfs-tools/update-initramfs.conf"',
        SUITE, str(partial), MIRROR,
    ], check=True)
    partial.rename(tar)
    return tar


def rendered(secret: str, box: str) -> tuple[str, str]:
    """The wpa_supplicant config and batman-adv commands provisioning makes for this box."""
    radio = {"a": "wlan0", "b": "wlan1", "c": "wlan2"}[box]
    config = parse_config(f"site_name = ship\nbox_name = box-{box}\ninterface = wlan9\n"
                          f"mesh_interface = {radio}\nmesh_channel = 1\n")
    commands = mesh.batman_commands(config, have_backbone=False)
    script = "set -e\n" + "\n".join(" ".join(argv) for argv in commands) + "\n"
    return mesh.render_wpa_supplicant(config, secret), script


UDHCPC = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
"""
PHONE_PASSPHRASE = "same passphrase on every box"


def hotspots() -> dict[str, str]:
    """Files for boxes A and B's hotspots, rendered by provisioning as on a box of a site
    whose hotspot radio has the simulated radio's MAC (wlan3, wlan4)."""
    from provisioning import render

    files: dict[str, str] = {}
    configs = {}
    for box, radio, mesh_radio in (("a", 3, 0), ("b", 4, 1)):
        mac = f"02:00:00:00:0{radio}:00"
        configs[box] = (mac, parse_config(
            f"site_name = ship\nbox_name = box-{box}\ninterface = wlan{radio}\n"
            f"mesh_interface = wlan{mesh_radio}\nmesh_channel = 1\n"
            f"wifi_passphrase = {PHONE_PASSPHRASE}\n", mac=mac))
    backbone = {"a": "169.254.10.1", "b": "169.254.10.2"}
    for box, (mac, config) in configs.items():
        other = "b" if box == "a" else "a"
        files[f"hostapd-{box}.conf"] = render.render_hostapd(config)
        files[f"dnsmasq-{box}.conf"] = render.render_dnsmasq(config, Path(f"/tmp/leases-{box}"))
        files[f"nft-{box}.nft"] = render.render_nftables(config)
        files[f"hotspot-{box}.env"] = (
            f"HOTSPOT={config.interface}\nBOX_CIDR={config.box_address}/"
            f"{config.hotspot_subnet.prefixlen}\nBSSID={mac}\n"
            f"OTHER_SUBNET={configs[other][1].hotspot_subnet}\nOTHER_BACKBONE={backbone[other]}\n")
    name = configs["a"][1].wifi_name
    assert name == configs["b"][1].wifi_name  # one Wi-Fi for the site
    files["phone.conf"] = (f'ctrl_interface=/run/wpa_supplicant\nnetwork={{\n\tssid="{name}"\n'
                           f'\tpsk="{PHONE_PASSPHRASE}"\n\tkey_mgmt=WPA-PSK\n}}\n')
    files["udhcpc.sh"] = UDHCPC
    files["expected.json"] = json.dumps({box: {"subnet": str(c.hotspot_subnet),
                                              "address": str(c.box_address)}
                                        for box, (_, c) in configs.items()})
    return files


def make_initramfs(work: Path) -> tuple[Path, Path]:
    root = work / "root"
    root.mkdir()
    with tarfile.open(base_root()) as tar:
        tar.extractall(root, filter="fully_trusted")
    kernel = sorted((root / "boot").glob("vmlinuz-*"))[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    modules = root / "usr/lib/modules" / version
    kept = modules.with_name(version + ".kept")
    kept.mkdir()
    for folder in MODULE_DIRS:
        source = modules / "kernel" / folder
        if source.exists():
            shutil.copytree(source, kept / "kernel" / folder, dirs_exist_ok=True)
    for name in modules.glob("modules.*"):
        shutil.copy(name, kept / name.name)
    shutil.rmtree(modules)
    kept.rename(modules)
    subprocess.run(["chroot", str(root), "depmod", version], check=True)
    vmlinuz = work / "vmlinuz"
    shutil.copy(kernel, vmlinuz)
    for path in (root / "boot").iterdir():
        path.unlink() if path.is_file() or path.is_symlink() else shutil.rmtree(path)
    for box, secret in (("a", SECRET), ("b", SECRET), ("c", WRONG_SECRET)):
        conf, script = rendered(secret, box)
        (root / f"mesh-{box}.conf").write_text(conf)
        (root / f"cmds-{box}.sh").write_text(script)
    for name, text in hotspots().items():
        (root / name).write_text(text)
    (root / "udhcpc.sh").chmod(0o755)
    init = root / "ahoy-meshtest"
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


def boot(vmlinuz: Path, initrd: Path, console: Path) -> list[str]:
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-cpu", "max", "-smp", "2",
            "-m", "1536", "-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
            "-kernel", str(vmlinuz), "-initrd", str(initrd),
            "-append", "console=ttyS0 rdinit=/ahoy-meshtest panic=-1 quiet",
            "-serial", f"file:{console}"]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            if time.monotonic() - started > TIMEOUT_S:
                raise SystemExit(f"mesh-test: the VM did not finish within {TIMEOUT_S} s")
            if console.exists() and "AHOY-MESH done" in console.read_text(errors="replace"):
                time.sleep(2)
                break
            time.sleep(1)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    print(f"mesh-test: the VM ran {time.monotonic() - started:.0f} s")
    return [line.removeprefix("AHOY-MESH ").rstrip()
            for line in console.read_text(errors="replace").splitlines()
            if line.startswith("AHOY-MESH ")]


def judge(lines: list[str]) -> dict[str, object]:
    tables = {box: "\n".join(line.split(" ", 1)[1] for line in lines
                             if line.startswith(f"orig-{box} ")) for box in "abc"}
    neighbours = {box: mesh.parse_originators(text) for box, text in tables.items()}
    macs = {}
    for box in "abc":
        found = next((line for line in lines if line.startswith(f"iw-{box} ")), "")
        # The mesh interface's address (the radio also has a P2P device with its own).
        match = re.search(r"Interface wlan\d+\s.*?addr ([0-9a-f:]{17})", found)
        macs[box] = match.group(1) if match else None
    def said(key: str) -> str:
        return next((line.split(" ", 1)[1] for line in lines if line.startswith(key + " ")), "")

    roaming = {}
    for box in "ab":
        lease = re.search(r"inet ([0-9.]+)/", said(f"phone-{box}-lease"))
        answer = re.findall(r"Name:\s*ahoy\.internal\s+Address:\s*([0-9.]+)",
                            said(f"phone-{box}-dns"))
        roaming[box] = {"lease": lease.group(1) if lease else None,
                        "ahoy.internal": answer[-1] if answer else None,
                        "joined": f"phone-joined {box}" in lines}
    result = {
        "failures": [line for line in lines if line.startswith("fail ")],
        "roaming": roaming,
        "ping_phone_on_b_to_box_a": "ping-phone-on-b-to-box-a ok" in lines,
        "a_hears": {n.mac: n.quality_percent for n in neighbours["a"] if n.via == n.mac},
        "b_hears": {n.mac: n.quality_percent for n in neighbours["b"] if n.via == n.mac},
        "c_hears": {n.mac: n.quality_percent for n in neighbours["c"]},
        "macs": macs,
        "ping_ab": "ping-ab ok" in lines,
        "ping_ac": "ping-ac ok" in lines,
    }
    return result


def main() -> int:
    if os.geteuid() != 0:
        print("mesh-test: needs root (mmdebstrap)", file=sys.stderr)
        return 2
    for program in ("mmdebstrap", "qemu-system-x86_64", "cpio"):
        if shutil.which(program) is None:
            print(f"mesh-test: {program} is not installed", file=sys.stderr)
            return 2
    out = REPO / "image" / "out" / "meshtest"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ahoy-meshtest-") as tmp:
        vmlinuz, initrd = make_initramfs(Path(tmp))
        print(f"mesh-test: initramfs {initrd.stat().st_size // (1 << 20)} MiB")
        console = out / "console.log"
        console.unlink(missing_ok=True)
        lines = boot(vmlinuz, initrd, console)
    (out / "report.txt").write_text("\n".join(lines) + "\n")
    result = judge(lines)
    print(json.dumps(result, indent=1))
    macs = result["macs"]
    assert isinstance(macs, dict)
    problems = list(result["failures"])  # type: ignore[call-overload]
    if not (macs["b"] and macs["b"] in result["a_hears"]):  # type: ignore[operator]
        problems.append("box A does not hear box B as a mesh neighbour")
    if not (macs["a"] and macs["a"] in result["b_hears"]):  # type: ignore[operator]
        problems.append("box B does not hear box A as a mesh neighbour")
    if macs["c"] and (macs["c"] in result["a_hears"] or result["c_hears"]):  # type: ignore[operator]
        problems.append("box C (wrong secret) joined the mesh")
    if not result["ping_ab"]:
        problems.append("no IPv4 between A and B over bat0")
    if result["ping_ac"]:
        problems.append("A reached C (wrong secret) over bat0")
    expected = json.loads(hotspots()["expected.json"])
    roaming = result["roaming"]
    assert isinstance(roaming, dict)
    for box in "ab":
        got = roaming[box]
        if not got["joined"]:
            problems.append(f"the phone was not on box {box.upper()}'s Wi-Fi")
        if got["lease"] is None or IPv4Address(got["lease"]) not in IPv4Network(
                expected[box]["subnet"]):
            problems.append(f"on box {box.upper()} the phone's address {got['lease']} is not in "
                            f"{expected[box]['subnet']}")
        if got["ahoy.internal"] != expected[box]["address"]:
            problems.append(f"on box {box.upper()} ahoy.internal is {got['ahoy.internal']}, not "
                            f"the box ({expected[box]['address']})")
    if not result["ping_phone_on_b_to_box_a"]:
        problems.append("the phone on box B cannot reach box A over the mesh backbone")
    for problem in problems:
        print(f"mesh-test: FAIL: {problem}")
    print("mesh-test: " + ("FAILED" if problems else "passed") + f" (console: {console})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
