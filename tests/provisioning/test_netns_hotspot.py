"""The rendered hotspot, running for real: a box and a phone in network namespaces.

The box namespace gets its address from `HostSystem.ensure_address` (pyroute2),
loads the rendered nftables ruleset and runs the real dnsmasq and coturn with
the rendered configs; the phone, over a veth pair, asks for a lease, resolves
names, is redirected by the firewall and uses STUN and TURN. Needs root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from provisioning_programs import need, run, sh, stop_all

from provisioning import credentials, render
from provisioning.apply import HostSystem
from provisioning.config import BoxConfig, parse_config

pytestmark = pytest.mark.netns

CLIENT = Path(__file__).with_name("phone_client.py")
PHONE_IP = "10.42.0.50"


@dataclass
class Hotspot:
    box: str
    phone: str
    config: BoxConfig
    folder: Path
    address_changes: list[bool] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def on_phone(self, *args: str) -> dict[str, Any]:
        result = run(["ip", "netns", "exec", self.phone, sys.executable, str(CLIENT), *args],
                     timeout=30)
        assert result.returncode == 0, result.stderr
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer

    def in_box(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.box, *argv])

    def start_in_box(self, name: str, *argv: str) -> None:
        log = open(self.folder / f"{name}.log", "wb")
        self.processes.append(
            subprocess.Popen(["ip", "netns", "exec", self.box, *argv],
                             stdout=log, stderr=subprocess.STDOUT)
        )



@pytest.fixture(scope="module")
def hotspot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotspot]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    need("ip")
    dnsmasq, nft, turnserver = need("dnsmasq"), need("nft"), need("turnserver")
    box, phone = f"ahoy-prov-box-{os.getpid()}", f"ahoy-prov-phone-{os.getpid()}"
    created = run(["ip", "netns", "add", box])
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    folder = tmp_path_factory.mktemp("hotspot")
    config = parse_config(
        "interface = hot0\nbox_name = netns-box\ndhcp_range = 10.42.0.100 - 10.42.0.150\n"
    )
    spot = Hotspot(box, phone, config, folder)
    try:
        sh("ip", "netns", "add", phone)
        sh("ip", "-n", box, "link", "add", "hot0", "type", "veth", "peer", "name", "ph0",
           "netns", phone)
        for ns, iface in ((box, "lo"), (phone, "lo"), (phone, "ph0")):
            sh("ip", "-n", ns, "link", "set", iface, "up")
        sh("ip", "-n", phone, "addr", "add", f"{PHONE_IP}/24", "dev", "ph0")
        system = HostSystem(netns=box)
        for _ in range(2):
            spot.address_changes.append(system.ensure_address("hot0", "10.42.0.1", 24))
        sh("ip", "-n", phone, "route", "add", "default", "via", "10.42.0.1")

        secret = credentials.turn_secret(folder / "data")
        files = render.render_all(config, secret, lease_file=folder / "leases")
        for name, text in files.items():
            (folder / name).write_text(text)
        for _ in range(2):  # loading the ruleset again must work and replace it
            sh("ip", "netns", "exec", box, nft, "-f", str(folder / render.NFTABLES))
        spot.start_in_box("dnsmasq", dnsmasq, "--keep-in-foreground", "--user=root",
                          f"--conf-file={folder / render.DNSMASQ}",
                          f"--pid-file={folder / 'dnsmasq.pid'}")
        spot.start_in_box("turnserver", turnserver, "-c", str(folder / render.TURNSERVER),
                          "--pidfile=", "--log-file=stdout")
        (folder / "www").mkdir()
        (folder / "www" / "index.html").write_text("portal")
        for port in ("80", "8080"):
            spot.start_in_box(f"http-{port}", sys.executable, "-m", "http.server", port,
                              "--bind", "10.42.0.1", "--directory", str(folder / "www"))
        yield spot
    finally:
        stop_all(spot.processes, [box, phone])


def test_pyroute2_sets_the_box_address_and_a_second_run_changes_nothing(
    hotspot: Hotspot,
) -> None:
    assert hotspot.address_changes == [True, False]
    shown = hotspot.in_box("ip", "-4", "-o", "addr", "show", "dev", "hot0").stdout
    assert "10.42.0.1/24" in shown
    # hot0 is a veth standing in for the radio: apply would keep any address of its
    # own (see test_netns_wrong_interface); a Wi-Fi interface gets exactly this one.


def test_phone_gets_a_lease_with_router_dns_and_the_captive_portal_api(
    hotspot: Hotspot,
) -> None:
    offer = hotspot.on_phone("dhcp", "ph0")
    assert "error" not in offer, offer
    assert offer["yiaddr"].startswith("10.42.0.1")
    assert 100 <= int(offer["yiaddr"].rsplit(".", 1)[1]) <= 150
    options = offer["options"]
    assert options["3"] == "10.42.0.1" and options["6"] == "10.42.0.1"
    assert options["114"] == "https://10.42.0.1/captive-portal/api"


@pytest.mark.parametrize(
    "name", ["connectivitycheck.gstatic.com", "captive.apple.com", "ahoy.internal", "x.y.z"]
)
def test_every_name_resolves_to_the_box(hotspot: Hotspot, name: str) -> None:
    answer = hotspot.on_phone("dns", "10.42.0.1", name)
    assert answer.get("addresses") == ["10.42.0.1"], answer


def test_dns_sent_to_any_server_is_answered_by_the_box(hotspot: Hotspot) -> None:
    answer = hotspot.on_phone("dns", "8.8.8.8", "example.com")
    assert answer.get("addresses") == ["10.42.0.1"], answer


def _tcp(hotspot: Hotspot, host: str, port: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        result = hotspot.on_phone("tcp", host, port)
        if result["connected"] or time.monotonic() > deadline:
            return result
        if result["error"] != "ConnectionRefusedError" or host != "10.42.0.1":
            return result
        time.sleep(0.2)


def test_web_traffic_to_any_address_lands_on_the_box(hotspot: Hotspot) -> None:
    assert _tcp(hotspot, "10.42.0.1", "80")["connected"]
    redirected = _tcp(hotspot, "203.0.113.7", "80")
    assert redirected["connected"], redirected
    assert "200" in redirected["reply"]


def test_ports_that_are_not_services_are_closed_to_phones(hotspot: Hotspot) -> None:
    assert _tcp(hotspot, "10.42.0.1", "80")["connected"]  # the box is up
    blocked = hotspot.on_phone("tcp", "10.42.0.1", "8080")
    assert not blocked["connected"]


def test_stun_tells_the_phone_its_own_address(hotspot: Hotspot) -> None:
    answer = hotspot.on_phone("stun", "10.42.0.1", str(render.STUN_PORT))
    assert answer["type"] == 0x0101
    assert answer["mapped"].split(":")[0] == PHONE_IP


def test_turn_allocates_a_relay_with_service_credentials(hotspot: Hotspot) -> None:
    secret = credentials.turn_secret(hotspot.folder / "data")
    user, password = credentials.turn_credentials(secret, "alice", 600)
    answer = hotspot.on_phone("turn", "10.42.0.1", str(render.STUN_PORT), user, password)
    assert answer["challenge"] == 401 and answer["realm"] == render.TURN_REALM
    assert answer["type"] == 0x0103, answer
    address, port = answer["relayed"].split(":")
    low, high = render.TURN_RELAY_PORTS
    assert address == "10.42.0.1" and low <= int(port) <= high


def test_turn_refuses_a_wrong_password(hotspot: Hotspot) -> None:
    user, _ = credentials.turn_credentials("not-the-secret", "mallory", 600)
    answer = hotspot.on_phone("turn", "10.42.0.1", str(render.STUN_PORT), user, "forged")
    assert answer["type"] == 0x0113 and answer["error"] == 401


def test_turn_refuses_expired_credentials(hotspot: Hotspot) -> None:
    secret = credentials.turn_secret(hotspot.folder / "data")
    user, password = credentials.turn_credentials(secret, "late", 60, now=time.time() - 3600)
    answer = hotspot.on_phone("turn", "10.42.0.1", str(render.STUN_PORT), user, password)
    assert answer["type"] == 0x0113 and answer["error"] == 401
