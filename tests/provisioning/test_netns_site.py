"""A site's backbone, for real: three boxes, two phones and a stranger in network namespaces.

The boxes sit on one switch (a bridge in its own namespace) with no DHCP
server on it, each running the real backbone loop (`site_box.py`: link-local
address with arping probes, zeroconf announce and browse, pyroute2 routes)
and the rendered nftables ruleset. Phone A hangs off box A's hotspot, phone B
off box B's. The stranger is another machine on the same cable (a ship's
laptop or its own network): it already holds the address box A would pick
first, and it tries to reach the phones. Box C's Wi-Fi adapter has a MAC
that points at box A's hotspot subnet. Needs root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from provisioning_programs import need, run, sh, stop_all, wait_for

from provisioning import render, sitenet
from provisioning.apply import HostSystem
from provisioning.backbone import read_status
from provisioning.config import BoxConfig, parse_config
from provisioning.site import box_id as site_box_id

pytestmark = pytest.mark.netns

HERE = Path(__file__).parent
REPO = HERE.parents[1]
CLIENT = HERE / "phone_client.py"
SECRET = "tern gravel copper lantern"
MAC_A = "02:00:00:00:0a:01"
MAC_B = "02:00:00:00:0b:01"
STRANGER_IP = "192.168.77.2"
ECHO_PORT = "5000"

# The boxes' ids (made once on each data partition; written here so that box C's
# is higher than box A's and box C, not box A, moves off the slot they share).
BOX_IDS = {"a": "000000a1", "b": "000000b1", "c": "000000c1"}


def mac_sharing_a_slot(mac: str) -> str:
    """Another MAC that points at the same first hotspot slot as `mac`."""
    slots = len(sitenet.slots(IPv4Network("10.42.0.0/16")))
    target = sitenet.mac_seed(mac)
    for n in range(1, 200_000):
        candidate = f"02:00:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"
        if candidate != mac and sitenet.mac_seed(candidate) % slots == target % slots:
            return candidate
    raise AssertionError("no MAC found")


@dataclass
class Box:
    name: str
    ns: str
    mac: str
    config: BoxConfig
    data: Path

    def status(self) -> dict[str, Any] | None:
        return read_status(self.data)


@dataclass
class Site:
    boxes: dict[str, Box]
    phones: dict[str, str]  # box letter -> namespace
    stranger: str
    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, ns: str, name: str, *argv: str) -> None:
        log = open(self.folder / f"{name}.log", "wb")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.processes.append(subprocess.Popen(["ip", "netns", "exec", ns, *argv],
                                               stdout=log, stderr=subprocess.STDOUT, env=env))

    def on(self, ns: str, *args: str) -> dict[str, Any]:
        result = run(["ip", "netns", "exec", ns, sys.executable, str(CLIENT), *args], timeout=30)
        assert result.returncode == 0, result.stderr
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}"
                         for p in sorted(self.folder.glob("*.log")))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    need("ip")
    nft, dnsmasq = need("nft"), need("dnsmasq")
    if not any(Path(d, "arping").exists() for d in ("/usr/bin", "/usr/sbin", "/bin")):
        pytest.skip("arping is not installed (apt-get install iputils-arping)")
    tag = os.getpid()
    switch, stranger = f"ahoy-site-sw-{tag}", f"ahoy-site-st-{tag}"
    created = run(["ip", "netns", "add", switch])
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    folder = tmp_path_factory.mktemp("site")
    macs = {"a": MAC_A, "b": MAC_B, "c": mac_sharing_a_slot(MAC_A)}
    namespaces = [switch]
    boxes: dict[str, Box] = {}
    phones = {letter: f"ahoy-site-ph{letter}-{tag}" for letter in ("a", "b")}
    spot = Site(boxes, phones, stranger, folder)
    try:
        sh("ip", "-n", switch, "link", "add", "sw0", "type", "bridge")
        sh("ip", "-n", switch, "link", "set", "sw0", "up")
        for n, (letter, mac) in enumerate(macs.items()):
            ns = f"ahoy-site-box{letter}-{tag}"
            sh("ip", "netns", "add", ns)
            namespaces.append(ns)
            sh("ip", "-n", ns, "link", "add", "bb0", "type", "veth", "peer", "name",
               f"p{n}", "netns", switch)
            sh("ip", "-n", switch, "link", "set", f"p{n}", "master", "sw0", "up")
            # The hotspot side: a veth standing in for the radio, with the adapter's MAC.
            sh("ip", "-n", ns, "link", "add", "hot0", "address", mac, "type", "veth", "peer",
               "name", "ph0")
            for iface in ("lo", "bb0"):
                sh("ip", "-n", ns, "link", "set", iface, "up")
            sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            text = (f"site_name = ship\nbox_name = box-{letter}\ninterface = hot0\n"
                    "backbone_interface = bb0\n")
            if letter == "c":  # set up by hand with another password: phones cannot roam
                text += "wifi_passphrase = not the same one\n"
            (folder / f"{letter}.txt").write_text(text)
            config = parse_config(text, mac=mac)
            boxes[letter] = Box(f"box-{letter}", ns, mac, config, folder / f"data-{letter}")
            (folder / f"data-{letter}" / "site").mkdir(parents=True)
            (folder / f"data-{letter}" / "site" / "box-id").write_text(BOX_IDS[letter] + "\n")
            HostSystem(netns=ns).ensure_address("hot0", str(config.box_address),
                                                config.hotspot_subnet.prefixlen)
            rules = folder / f"{letter}.nft"
            rules.write_text(render.render_nftables(config))
            sh("ip", "netns", "exec", ns, nft, "-f", str(rules))
            dns = folder / f"{letter}-dnsmasq.conf"
            dns.write_text(render.render_dnsmasq(config, folder / f"{letter}.leases"))
            spot.start(ns, f"dnsmasq-{letter}", dnsmasq, "--keep-in-foreground", "--user=root",
                       f"--conf-file={dns}", f"--pid-file={folder / f'{letter}-dnsmasq.pid'}")
        for letter, phone in phones.items():
            box = boxes[letter]
            sh("ip", "netns", "add", phone)
            namespaces.append(phone)
            sh("ip", "-n", box.ns, "link", "set", "ph0", "netns", phone)
            sh("ip", "-n", phone, "link", "set", "ph0", "up")
            sh("ip", "-n", phone, "link", "set", "lo", "up")
            address = box.config.hotspot_subnet[50]
            sh("ip", "-n", phone, "addr", "add",
               f"{address}/{box.config.hotspot_subnet.prefixlen}", "dev", "ph0")
            sh("ip", "-n", phone, "route", "add", "default", "via", str(box.config.box_address))
            spot.start(phone, f"echo-{letter}", sys.executable, str(CLIENT), "echo", ECHO_PORT)
        # The stranger: on the same cable, already holding box A's first link-local choice,
        # and on a LAN of its own that box A also has an address in (the ship's network).
        sh("ip", "netns", "add", stranger)
        namespaces.append(stranger)
        sh("ip", "-n", stranger, "link", "add", "st0", "type", "veth", "peer", "name", "pst",
           "netns", switch)
        sh("ip", "-n", switch, "link", "set", "pst", "master", "sw0", "up")
        first = next(sitenet.backbone_candidates(sitenet.box_number(BOX_IDS["a"])))
        for address in (f"{first}/16", f"{STRANGER_IP}/24"):
            sh("ip", "-n", stranger, "addr", "add", address, "dev", "st0")
        for iface in ("lo", "st0"):
            sh("ip", "-n", stranger, "link", "set", iface, "up")
        sh("ip", "-n", stranger, "route", "add", "10.42.0.0/16", "via", "192.168.77.1")
        spot.start(stranger, "echo-stranger", sys.executable, str(CLIENT), "echo", ECHO_PORT)
        sh("ip", "-n", boxes["a"].ns, "addr", "add", "192.168.77.1/24", "dev", "bb0")
        for letter, box in boxes.items():
            spot.start(box.ns, f"backbone-{letter}", sys.executable, str(HERE / "site_box.py"),
                       str(folder / f"{letter}.txt"), str(box.data), SECRET)
        yield spot
    finally:
        stop_all(spot.processes, namespaces)


def _peers(box: Box, count: int) -> list[dict[str, Any]] | None:
    status = box.status()
    if status is None or len(status["peers"]) != count:
        return None
    return list(status["peers"])


def _routes(site: Site, box: Box) -> str:
    return run(["ip", "-n", box.ns, "-4", "route", "show", "dev", "bb0"]).stdout


def test_each_box_takes_a_link_local_backbone_address_without_dhcp_and_none_collide(
    site: Site,
) -> None:
    addresses = {}
    for letter, box in site.boxes.items():
        status = wait_for(f"{box.name} on the backbone", box.status, site)
        addresses[letter] = IPv4Address(status["box"]["backbone"])
        assert addresses[letter] in sitenet.LINK_LOCAL
        # One id per box: the backbone announces the one the site's replication uses.
        assert status["box"]["id"] == site_box_id(box.data) == BOX_IDS[letter]
    assert len(set(addresses.values())) == 3
    # The stranger answered the ARP probe for box A's first choice: box A took another.
    first = next(sitenet.backbone_candidates(sitenet.box_number(BOX_IDS["a"])))
    assert addresses["a"] != first


def test_every_box_hears_the_other_two_of_its_site_and_not_the_stranger(site: Site) -> None:
    for box in site.boxes.values():
        peers = wait_for(f"{box.name} hearing two boxes", lambda b=box: _peers(b, 2), site)
        assert {p["name"] for p in peers} == {"box-a", "box-b", "box-c"} - {box.name}


def test_a_box_whose_subnet_another_box_has_moves_and_the_lower_id_keeps_it(site: Site) -> None:
    a, c = site.boxes["a"], site.boxes["c"]
    assert a.config.hotspot_subnet == c.config.hotspot_subnet  # the same first choice
    moved = wait_for("box C to move", lambda: (c.status() or {}).get("box", {}).get(
        "hotspot") != str(a.config.hotspot_subnet) and c.status(), site)
    new = IPv4Network(moved["box"]["hotspot"])
    assert new != a.config.hotspot_subnet and new.subnet_of(IPv4Network("10.42.0.0/16"))
    assert (c.data / "site" / "hotspot-subnet").read_text().strip() == str(new)
    status_a = wait_for("box A's status", a.status, site)
    assert status_a["box"]["hotspot"] == str(a.config.hotspot_subnet)


def test_each_box_routes_the_other_boxes_hotspots_over_the_backbone(site: Site) -> None:
    a, b = site.boxes["a"], site.boxes["b"]
    b_backbone = wait_for("box B's address", b.status, site)["box"]["backbone"]
    a_backbone = wait_for("box A's address", a.status, site)["box"]["backbone"]
    wait_for("A's route to B's phones", lambda: f"{b.config.hotspot_subnet} via {b_backbone}"
             in _routes(site, a), site)
    wait_for("B's route to A's phones", lambda: f"{a.config.hotspot_subnet} via {a_backbone}"
             in _routes(site, b), site)


def _phone_ip(site: Site, letter: str) -> str:
    return str(site.boxes[letter].config.hotspot_subnet[50])


def _routed(site: Site) -> None:
    a, b = site.boxes["a"], site.boxes["b"]
    wait_for("routes both ways", lambda: str(b.config.hotspot_subnet) in _routes(site, a)
             and str(a.config.hotspot_subnet) in _routes(site, b), site)


def test_phones_on_different_boxes_reach_each_other_over_tcp_and_udp(site: Site) -> None:
    _routed(site)
    a_ip, b_ip = _phone_ip(site, "a"), _phone_ip(site, "b")
    tcp = wait_for("TCP phone A -> phone B",
                   lambda: (r := site.on(site.phones["a"], "tcp", b_ip, ECHO_PORT))["connected"]
                   and r, site)
    # No address translation: phone B sees phone A's own address, as WebRTC needs.
    assert tcp["reply"] == f"echo from {a_ip}"
    udp = site.on(site.phones["b"], "udp", a_ip, ECHO_PORT)
    assert udp["echoed"] and udp["reply"] == f"echo from {b_ip}", udp


def test_nothing_leaks_between_the_phones_and_any_other_network(site: Site) -> None:
    _routed(site)
    # Box A can reach the stranger's network itself (the control: the path exists) ...
    direct = run(["ip", "netns", "exec", site.boxes["a"].ns, sys.executable, str(CLIENT),
                  "tcp", STRANGER_IP, ECHO_PORT])
    assert json.loads(direct.stdout)["connected"], direct
    # ... but its phones cannot, over TCP or UDP, and the stranger cannot reach them.
    a_ip = _phone_ip(site, "a")
    assert not site.on(site.phones["a"], "tcp", STRANGER_IP, ECHO_PORT)["connected"]
    assert not site.on(site.phones["a"], "udp", STRANGER_IP, ECHO_PORT)["echoed"]
    assert not site.on(site.stranger, "tcp", a_ip, ECHO_PORT)["connected"]
    assert not site.on(site.stranger, "udp", a_ip, ECHO_PORT)["echoed"]


def test_every_box_broadcasts_the_same_wifi_name_so_phones_roam(site: Site) -> None:
    names = {box.config.wifi_name for box in site.boxes.values()}
    assert names == {"Ahoy-ship"}
    a = site.boxes["a"]
    status = wait_for("box A to notice box C's other password", lambda: (s := a.status())
                      and any("box-c" in p for p in s["problems"]) and s, site)
    assert not any("box-b" in p for p in status["problems"])
    same = {p["name"]: p["same_wifi"] for p in status["peers"]}
    assert same == {"box-b": True, "box-c": False}


def test_ahoy_internal_is_the_box_the_phone_is_on(site: Site) -> None:
    for letter, phone in site.phones.items():
        box = site.boxes[letter]
        answer = wait_for(f"DNS on box {letter}", lambda p=phone, b=box: (r := site.on(
            p, "dns", str(b.config.box_address), "ahoy.internal")).get("addresses") and r, site)
        assert answer["addresses"] == [str(box.config.box_address)]
