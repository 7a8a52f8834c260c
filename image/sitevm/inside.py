"""Inside the `make site-vm-test` VM: two boxes of a site, two phones, a roam.

Runs as root in the VM (the host's programs and the repo's venv, seen through a read-only
9p share under a RAM overlay; see run.py). mac80211_hwsim has made six radios: wlan0 is
box A's hotspot, wlan1 box B's, wlan2 and wlan3 are the phones; wlan4 is a ship's own
access point and wlan5 the uplink of a third box in LAN mode (lan_box_over_wifi). Each
box is a network namespace ("a", "b") with its radio, set up from its own ahoy.txt by provisioning
(`python -m provisioning apply --files-only`, as ahoy-provision does before it starts
the services) and running what the image runs: hostapd, dnsmasq, the nftables ruleset,
coturn, nats-server and the Ahoy service (`python -m appliance serve --config`). The boxes
are linked by a veth pair (the backbone cable, no addresses on it): each box's backbone
service (`python -m provisioning.backbone`, ahoy-backbone.service) takes a link-local
address, finds the other box and routes its hotspot subnet, and the chat replication
links to the other box's nats-server from what it found. Box A's channel is set in its
ahoy.txt to the one box B would take without a scan; box B scans first
(`python -m provisioning scan-channel`) and must take another.

Every step is one JSON line on the second serial port (/dev/ttyS1), which run.py reads;
`t` is seconds since the kernel started.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
PYTHON = os.environ.get("AHOY_PYTHON", sys.executable)
WORK = Path("/tmp/sitevm")
SECRET = "tern gravel copper lantern"
PASSPHRASE = "same passphrase on every box"
BOXES = {
    # box: (radio, its MAC: mac80211_hwsim's)
    "a": ("wlan0", "02:00:00:00:00:00"),
    "b": ("wlan1", "02:00:00:00:01:00"),
}
PHONES = {"phone1": "wlan2", "phone2": "wlan3"}
_out = os.open("/dev/ttyS1", os.O_WRONLY | os.O_NOCTTY)
_started = time.monotonic()


def uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def report(event: str, **fields: Any) -> None:
    line = json.dumps({"t": round(uptime(), 2), "event": event, **fields}) + "\n"
    os.write(_out, line.encode())


def run(*argv: str, netns: str | None = None, timeout: float = 120,
        env: dict[str, str] | None = None, check: bool = True) -> str:
    full = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    try:
        done = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, check=False)
    except subprocess.TimeoutExpired:
        if check:
            raise
        return ""
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(full)} failed ({done.returncode}): "
                           f"{(done.stdout + done.stderr).strip()[-600:]}")
    return done.stdout


def wait(what: str, condition: Any, timeout: float) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.3)


def box_config(box: str, channel: int | None = None) -> str:
    radio, _ = BOXES[box]
    return (f"box_name = box-{box}\nsite_name = ship\nsite_secret = {SECRET}\n"
            f"interface = {radio}\ncountry = DE\n"
            f"wifi_passphrase = {PASSPHRASE}\nbackbone_interface = bb0\n"
            + (f"channel = {channel}\n" if channel else ""))


def channel_without_a_scan(box: str) -> int:
    """The channel the box's id points at (config's derived `channel`, no scan)."""
    from provisioning.config import parse_config

    return parse_config(box_config(box), mac=BOXES[box][1]).channel


def hotspot_of(box: str) -> dict[str, str]:
    """The subnet and address provisioning chose for the box (from its rendered dnsmasq)."""
    text = (WORK / box / "root/etc/dnsmasq.d/ahoy.conf").read_text()
    address = re.search(r"option:router,([0-9.]+)", text)
    start = re.search(r"dhcp-range=([0-9.]+),", text)
    assert address and start
    return {"address": address.group(1), "subnet": ".".join(address.group(1).split(".")[:3])}


def start_box(box: str, channel: int | None = None,
              on_air: threading.Event | None = None) -> dict[str, Any]:
    """Box A is told its channel in ahoy.txt; box B has none and scans first. `on_air` is
    set once the box's access point is up."""
    radio, _ = BOXES[box]
    folder = WORK / box
    data = folder / "data"
    data.mkdir(parents=True)
    (folder / "ahoy.txt").write_text(box_config(box, channel))
    env = {"PYTHONPATH": str(REPO)}
    scanned = ""
    if channel is None:
        # What `provisioning apply` does first on a box (before hostapd starts).
        scanned = run(PYTHON, "-m", "provisioning", "scan-channel", "--config",
                      str(folder / "ahoy.txt"), "--data-dir", str(data), netns=box, env=env)
        report("channel_scan", box=box, said=scanned.strip())
    # What ahoy-provision does next (the files; the services are started below).
    apply = [PYTHON, "-m", "provisioning", "apply", "--config", str(folder / "ahoy.txt"),
             "--data-dir", str(data), "--root", str(folder / "root"), "--files-only",
             "--service-user", "ahoy-vm-none"]
    run(*apply, netns=box, env=env)
    spot = hotspot_of(box)
    prefix = 24
    run("ip", "addr", "add", f"{spot['address']}/{prefix}", "dev", radio, netns=box)
    run("ip", "link", "set", radio, "up", netns=box)
    run("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=box)
    run("nft", "-f", str(folder / "root/etc/ahoy/nftables.nft"), netns=box)
    hostapd_conf = folder / f"root/etc/hostapd/{radio}.conf"
    run("hostapd", "-B", "-P", str(folder / "hostapd.pid"), "-f", str(folder / "hostapd.log"),
        str(hostapd_conf), netns=box)
    log = folder / "hostapd.log"
    wait(f"box {box}'s access point", lambda: log.exists() and "AP-ENABLED" in log.read_text(),
         120)
    if on_air is not None:
        on_air.set()
    found = re.search(r"(?m)^channel=(\d+)", hostapd_conf.read_text())
    assert found
    run("dnsmasq", f"--conf-file={folder / 'root/etc/dnsmasq.d/ahoy.conf'}",
        f"--pid-file={folder / 'dnsmasq.pid'}", "--user=root", netns=box)
    logs = {name: open(folder / f"{name}.log", "ab")
            for name in ("coturn", "nats", "ahoy", "backbone")}
    subprocess.Popen(["ip", "netns", "exec", box, "turnserver", "-c",
                      str(folder / "root/etc/turnserver.conf"), "--log-file=stdout",
                      "--pidfile", str(folder / "coturn.pid")],
                     stdout=logs["coturn"], stderr=subprocess.STDOUT)
    # ahoy-backbone.service: the link-local address on bb0, discovery, routes.
    subprocess.Popen(["ip", "netns", "exec", box, PYTHON, "-m", "provisioning.backbone",
                      "--config", str(folder / "ahoy.txt"), "--data-dir", str(data)],
                     cwd=REPO, stdout=logs["backbone"], stderr=subprocess.STDOUT,
                     env={**os.environ, **env})
    status = data / "site/backbone.json"

    def backbone_address() -> str:
        try:
            return str(json.loads(status.read_text())["box"]["backbone"])
        except (OSError, ValueError, KeyError):
            return ""

    backbone = wait(f"box {box}'s backbone address", backbone_address, 600)
    # The backbone service then asks for an apply: nats-server listens on that address.
    run(*apply, netns=box, env=env)
    subprocess.Popen(["ip", "netns", "exec", box, "nats-server", "-c",
                      str(data / "site/nats-server.conf")],
                     stdout=logs["nats"], stderr=subprocess.STDOUT)
    subprocess.Popen(["ip", "netns", "exec", box, PYTHON, "-m", "appliance", "serve",
                      "--config", str(folder / "ahoy.txt"), "--data-dir", str(data),
                      "--no-mdns"], cwd=REPO, stdout=logs["ahoy"], stderr=subprocess.STDOUT,
                     env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONPATH": str(REPO)})
    mac = run("cat", f"/sys/class/net/{radio}/address", netns=box).strip()
    return {"box": box, "backbone": backbone, "channel": int(found.group(1)), "bssid": mac,
            "scanned": bool(scanned), **spot}


def box_healthy(box: str, address: str) -> dict[str, Any] | None:
    # (busybox wget's -T crashes it on bookworm; the subprocess timeout bounds it.)
    out = run("busybox", "wget", "-q", "-O", "-", f"http://{address}/healthz",
              netns=box, check=False, timeout=30)
    try:
        health: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError:
        return None
    return health


def link_backbone() -> None:
    """The cable: no addresses, no DHCP; each box's backbone service takes its own."""
    run("ip", "link", "add", "bb-a", "type", "veth", "peer", "name", "bb-b")
    for box in BOXES:
        run("ip", "link", "set", f"bb-{box}", "netns", box)
        run("ip", "link", "set", f"bb-{box}", "name", "bb0", netns=box)
        run("ip", "link", "set", "bb0", "up", netns=box)


def routed(box: str, subnet: str) -> bool:
    return f"{subnet}.0/24 via" in run("ip", "-4", "route", netns=box, check=False)


UDHCPC = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$subnet" dev "$interface"
    [ -z "${router:-}" ] || ip route replace default via "${router%% *}" dev "$interface"
    mkdir -p "/etc/netns/$AHOY_NETNS"
    : > "/etc/netns/$AHOY_NETNS/resolv.conf"
    for d in ${dns:-}; do echo "nameserver $d" >> "/etc/netns/$AHOY_NETNS/resolv.conf"; done
    echo "LEASE ip=$ip dns=${dns:-}"
    ;;
esac
exit 0
"""


def make_phone(netns: str, radio: str, bssid: str) -> None:
    """A phone's radio in its namespace, wpa_supplicant told the site's Wi-Fi (one name)."""
    phy = Path(f"/sys/class/net/{radio}/phy80211/name").read_text().strip()
    run("ip", "netns", "add", netns)
    run("iw", "phy", phy, "set", "netns", "name", netns)
    run("ip", "link", "set", "lo", "up", netns=netns)
    run("ip", "link", "set", radio, "up", netns=netns)
    conf = WORK / f"{netns}-wpa.conf"
    # The phone starts next to its box: `bssid` stands for where it stands.
    conf.write_text(f"ctrl_interface=/run/wpa-{netns}\nnetwork={{\n  ssid=\"Ahoy-ship\"\n"
                    f"  psk=\"{PASSPHRASE}\"\n  key_mgmt=WPA-PSK\n  bssid={bssid}\n}}\n")
    run("wpa_supplicant", "-B", "-i", radio, "-c", str(conf), "-f", str(WORK / f"{netns}-wpa.log"),
        netns=netns)


def associated(netns: str, radio: str, bssid: str) -> bool:
    return f"Connected to {bssid}" in run("iw", "dev", radio, "link", netns=netns, check=False)


def lease(netns: str, radio: str) -> dict[str, str]:
    script = WORK / "udhcpc.sh"
    out = run("busybox", "udhcpc", "-i", radio, "-f", "-q", "-n", "-t", "20", "-T", "2",
              "-s", str(script), netns=netns, env={"AHOY_NETNS": netns})
    found = re.search(r"LEASE ip=(\S+) dns=(\S*)", out)
    if not found:
        raise RuntimeError(f"{netns}: no DHCP lease: {out[-300:]}")
    return {"ip": found.group(1), "dns": found.group(2)}


class PhoneAgent:
    """phone.py in the phone's namespace; one command at a time."""

    def __init__(self, netns: str, name: str, cas: list[str]) -> None:
        self.netns, self.name = netns, name
        self.log = open(WORK / f"{netns}-agent.log", "ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, PYTHON, str(HERE / "phone.py"), name, *cas],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        ready = self.read()
        assert ready.get("event") == "ready", ready

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name}'s phone agent exited; see {self.log.name}")
        value: dict[str, Any] = json.loads(line)
        return value

    def start(self, do: str, **fields: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"do": do, **fields}) + "\n")
        self.proc.stdin.flush()

    def finish(self, do: str) -> dict[str, Any]:
        result = self.read()
        if result.get("done") != do or not result.get("ok"):
            raise RuntimeError(f"{self.name}: {do}: {result}")
        report(f"{self.name.lower()}_{do}", **{k: v for k, v in result.items()
                                               if k not in ("done", "ok")})
        return result

    def do(self, do: str, **fields: Any) -> dict[str, Any]:
        self.start(do, **fields)
        return self.finish(do)


SHIP_AP = """interface=wlan4
driver=nl80211
ssid=Ship crew
hw_mode=g
channel=6
wpa=2
wpa_key_mgmt=WPA-PSK
rsn_pairwise=CCMP
wpa_passphrase=ship crew passphrase
"""


def lan_box_over_wifi() -> dict[str, Any]:
    """LAN mode over Wi-Fi: a third box with `hotspot = off` joins a ship's own WPA2
    network (an access point and DHCP server in namespace "ship") with the wpa_supplicant
    config provisioning renders from uplink_wifi_name and uplink_wifi_passphrase."""
    for netns, radio in (("ship", "wlan4"), ("lanbox", "wlan5")):
        phy = Path(f"/sys/class/net/{radio}/phy80211/name").read_text().strip()
        run("ip", "netns", "add", netns)
        run("iw", "phy", phy, "set", "netns", "name", netns)
        run("ip", "link", "set", "lo", "up", netns=netns)
    ship = WORK / "ship"
    ship.mkdir()
    (ship / "hostapd.conf").write_text(SHIP_AP)
    run("ip", "addr", "add", "192.168.77.1/24", "dev", "wlan4", netns="ship")
    run("ip", "link", "set", "wlan4", "up", netns="ship")
    run("hostapd", "-B", "-f", str(ship / "hostapd.log"), str(ship / "hostapd.conf"),
        netns="ship")
    run("dnsmasq", "--port=0", "--interface=wlan4", "--bind-interfaces", "--user=root",
        "--dhcp-range=192.168.77.50,192.168.77.99,12h", f"--pid-file={ship / 'dnsmasq.pid'}",
        f"--dhcp-leasefile={ship / 'leases'}", netns="ship")
    folder = WORK / "lanbox"
    (folder / "data").mkdir(parents=True)
    (folder / "ahoy.txt").write_text(
        "box_name = deckbox\nhotspot = off\nuplink_interface = wlan5\n"
        "uplink_wifi_name = Ship crew\nuplink_wifi_passphrase = ship crew passphrase\n")
    run(PYTHON, "-m", "provisioning", "apply", "--config", str(folder / "ahoy.txt"),
        "--data-dir", str(folder / "data"), "--root", str(folder / "root"), "--files-only",
        "--service-user", "ahoy-vm-none", netns="lanbox", env={"PYTHONPATH": str(REPO)})
    conf = folder / "root/etc/wpa_supplicant/wpa_supplicant-wlan5.conf"
    # What wpa_supplicant@wlan5 runs (Debian's unit: -c that file -i the interface).
    run("wpa_supplicant", "-B", "-i", "wlan5", "-c", str(conf), "-f", str(folder / "wpa.log"),
        netns="lanbox")
    ship_mac = run("cat", "/sys/class/net/wlan4/address", netns="ship").strip()
    wait("the LAN-mode box on the ship's Wi-Fi", lambda: associated("lanbox", "wlan5", ship_mac),
         180)
    got = lease("lanbox", "wlan5")
    text = conf.read_text()
    return {"lease": got["ip"], "typed_passphrase_in_file": "ship crew passphrase" in text}


def check(name: str, ok: bool, **detail: Any) -> bool:
    report("check", name=name, ok=bool(ok), **detail)
    return bool(ok)


def scenario() -> bool:
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "udhcpc.sh").write_text(UDHCPC)
    (WORK / "udhcpc.sh").chmod(0o755)
    for box, (radio, _) in BOXES.items():
        phy = Path(f"/sys/class/net/{radio}/phy80211/name").read_text().strip()
        run("ip", "netns", "add", box)
        run("iw", "phy", phy, "set", "netns", "name", box)
        run("ip", "link", "set", "lo", "up", netns=box)
    link_backbone()
    with ThreadPoolExecutor() as side:
        lan = side.submit(lan_box_over_wifi)  # alongside the site, on its own radios
        ok = site_scenario()
        try:
            joined = lan.result(timeout=600)
            report("lanbox_joined", **joined)
            ok &= check("LAN mode over Wi-Fi: the rendered wpa_supplicant config joins the "
                        "ship's WPA2 network and gets an address from its DHCP server",
                        joined["lease"].startswith("192.168.77.")
                        and not joined["typed_passphrase_in_file"], **joined)
        except Exception as exc:
            ok &= check("LAN mode over Wi-Fi: the rendered wpa_supplicant config joins the "
                        "ship's WPA2 network and gets an address from its DHCP server", False,
                        error=f"{type(exc).__name__}: {exc}")
    return ok


def site_scenario() -> bool:
    # Box A's channel is pinned to the one box B's id points at: B must hear A and move.
    crowded = channel_without_a_scan("b")
    on_air = threading.Event()
    with ThreadPoolExecutor() as pool:
        first = pool.submit(start_box, "a", crowded, on_air)
        while not on_air.wait(1):  # box B listens once box A is on the air
            if first.done():
                first.result()  # raises what stopped box A
        boxes = {"b": start_box("b")}
        boxes["a"] = first.result()
    report("boxes_configured", boxes=boxes)
    for box, other in (("a", "b"), ("b", "a")):
        # The backbone service heard the other box and routes its phones' subnet.
        wait(f"box {box} routing box {other}'s phones",
             lambda box=box, other=other: routed(box, boxes[other]["subnet"]), 300)
    report("backbone_routes")
    ok = check("box B chose its channel by scanning: away from box A's, which its id "
               "pointed at", boxes["b"]["scanned"] and boxes["a"]["channel"] == crowded
               and boxes["b"]["channel"] != crowded, a=boxes["a"]["channel"],
               b=boxes["b"]["channel"])
    for box, info in boxes.items():
        health = wait(f"box {box}'s service",
                      lambda box=box, info=info: box_healthy(box, info["address"]), 600)
        report("box_up", box=box, site=health.get("site"))
    # The phones: phone1 next to box A, phone2 next to box B.
    for (netns, radio), box in zip(PHONES.items(), "ab", strict=True):
        make_phone(netns, radio, boxes[box]["bssid"])
    for (netns, radio), box in zip(PHONES.items(), "ab", strict=True):
        bssid = boxes[box]["bssid"]
        wait(f"{netns} on box {box}'s Wi-Fi",
             lambda netns=netns, radio=radio, bssid=bssid: associated(netns, radio, bssid), 90)
        got = lease(netns, radio)
        report("phone_on_wifi", phone=netns, box=box, **got)
        ok &= check(f"{netns} has an address from box {box.upper()}'s subnet",
                    got["ip"].startswith(boxes[box]["subnet"] + ".") and got["dns"] ==
                    boxes[box]["address"], lease=got, box=boxes[box])
    cas = [str(WORK / box / "data/tls/ahoy-ca.crt") for box in BOXES]
    ana = PhoneAgent("phone1", "Ana", cas)
    ben = PhoneAgent("phone2", "Ben", cas)
    a_join, b_join = ana.do("join"), ben.do("join")
    ok &= check("ahoy.internal is the box each phone is on",
                a_join["box_address"] == boxes["a"]["address"]
                and b_join["box_address"] == boxes["b"]["address"])
    box_ids = {"a": a_join["box"], "b": b_join["box"]}
    ok &= check("the phones are on two different boxes", box_ids["a"] != box_ids["b"])
    ben_id = ana.do("wait_user", name="Ben")["id"]
    ana_id = ben.do("wait_user", name="Ana")["id"]
    report("people_across_boxes")
    ana.do("send", to=ben_id, text="hello Ben, from box A")
    got = ben.do("expect", **{"from": ana_id, "count": 1})
    ben.do("send", to=ana_id, text="hello Ana, from box B")
    back = ana.do("expect", **{"from": ben_id, "count": 1})
    ok &= check("direct messages both ways across the backbone",
                got["texts"] == ["hello Ben, from box A"]
                and back["texts"] == ["hello Ana, from box B"])
    ben.start("answer", to=ana_id)
    ana.start("call", to=ben_id)
    called, answered = ana.finish("call"), ben.finish("answer")
    ok &= check("aiortc call from box A's phone to box B's, audio arriving",
                called["ice"] in ("completed", "connected") and answered["audio_frames"] == 25,
                pair=called.get("pair"))

    # Roaming: Ana walks from box A's radio to box B's. Her app loses its socket; Ben sends
    # while she is between boxes; on B she must be the same person and get exactly those.
    ana.do("leave")
    missed = [ben.do("send", to=ana_id, text=f"while you walk {i}")["id"] for i in range(5)]
    wpa = ["wpa_cli", "-p", "/run/wpa-phone1", "-i", "wlan2"]
    run(*wpa, "set_network", "0", "bssid", boxes["b"]["bssid"], netns="phone1")
    run(*wpa, "reassociate", netns="phone1")
    report("roam_start", to=boxes["b"]["bssid"])
    wait("phone1 on box B's Wi-Fi", lambda: associated("phone1", "wlan2", boxes["b"]["bssid"]), 90)
    report("roam_associated")
    moved = lease("phone1", "wlan2")
    report("phone_on_wifi", phone="phone1", box="b", **moved)
    ok &= check("after the move phone1 has an address from box B's subnet",
                moved["ip"].startswith(boxes["b"]["subnet"] + ".")
                and moved["dns"] == boxes["b"]["address"], lease=moved)
    rejoined = ana.do("join")
    ok &= check("ahoy.internal is box B now", rejoined["box_address"] == boxes["b"]["address"])
    ok &= check("same person on box B (identity kept)", rejoined["user"] == a_join["user"]
                and rejoined["box"] == box_ids["b"], user=rejoined["user"])
    caught = [m["id"] for m in rejoined["caught_up"]]
    ok &= check("exactly the missed messages, each once, in order", caught == missed,
                caught_up=caught, missed=missed)
    after = ana.do("send", to=ben_id, text="back on deck, on box B")
    got = ben.do("expect", **{"from": ana_id, "count": 2})
    ok &= check("the conversation goes on from box B", got["ids"][-1] == after["id"]
                and str(after["at"]).startswith(box_ids["b"] + ":"), ack=after)
    for agent in (ana, ben):
        agent.start("quit")
    return ok


def main() -> int:
    report("inside_start", python=PYTHON)
    try:
        ok = scenario()
    except Exception as exc:
        report("fail", error=f"{type(exc).__name__}: {exc}")
        ok = False
    for name in sorted(WORK.glob("*/*.log")) + sorted(WORK.glob("*.log")):
        tail = name.read_text(errors="replace").splitlines()[-15:] if not ok else []
        if tail:
            report("log", file=str(name.relative_to(WORK)), tail=tail)
    report("done", ok=ok, seconds=round(time.monotonic() - _started, 1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
