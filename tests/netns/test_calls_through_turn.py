"""Calls between phones with the box's STUN and TURN: real coturn, real aiortc peers.

The box namespace holds a bridge `hot0` standing in for the access point (a
Wi-Fi AP with client isolation off forwards station to station the same way),
loads the nftables ruleset provisioning renders, and runs the real coturn with
the rendered `turnserver.conf` (only its pid file moved, on the command line;
it logs to syslog as rendered). Two phones, each in its own namespace on its own veth port of
the bridge, run an aiortc peer (`turn_peer.py`) configured with exactly the
`ice_servers` list the service hands phones, TURN credentials signed with the
rendered secret. The test carries the offer and answer between them.

With the bridge forwarding, the call goes phone to phone; with the bridge
dropping everything between its ports (client isolation, or a Wi-Fi that
does not pass station-to-station traffic), the same call goes through the
box's TURN relay. Needs root, iproute2, nftables and coturn.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from provisioning_programs import need, run, sh, stop_all

from appliance.ice import ice_servers
from provisioning import credentials, render
from provisioning.config import BoxConfig, parse_config

pytestmark = pytest.mark.netns

PEER = Path(__file__).with_name("turn_peer.py")
PHONE_CLIENT = Path(__file__).resolve().parents[1] / "provisioning" / "phone_client.py"
# Not the default network, so the test shows every address comes from the config.
CONFIG = "box_name = calls-box\ninterface = hot0\nnetwork = 10.78.0.0/24\n"
PHONES = {"alice": "10.78.0.50", "bob": "10.78.0.60"}
# The bridge ports the phones hang off, in the box namespace.
PORTS = {"alice": "port1", "bob": "port2"}
ISOLATION_TABLE = "ahoy_calls_isolation"
CANDIDATE = re.compile(
    r"^a=candidate:\S+ (?P<component>\d+) (?P<protocol>\w+) \d+ (?P<ip>\S+) (?P<port>\d+) "
    r"typ (?P<type>\w+)", re.MULTILINE)


@dataclass
class Hotspot:
    config: BoxConfig
    folder: Path
    secret: str
    box: str
    phones: dict[str, str]  # phone name -> namespace
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return str(self.config.box_address)

    def ice_for(self, user: str, transports: tuple[str, ...] = ("udp", "tcp")
                ) -> list[dict[str, Any]]:
        """What the service puts in `welcome.ice_servers` (URLs as `appliance serve` makes them).

        aiortc uses the first TURN URL only; `transports` picks which ones are handed out.
        """
        stun = (f"stun:{self.address}:{render.STUN_PORT}",)
        turn = tuple(f"turn:{self.address}:{render.STUN_PORT}?transport={t}" for t in transports)
        return ice_servers(stun, turn, self.secret, user, int(time.time()), 600)

    def on_phone(self, phone: str, *argv: str, timeout: float = 20
                 ) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.phones[phone], *argv], timeout=timeout)

    def turn_output(self) -> str:
        """What coturn printed; its log proper goes to syslog, as rendered."""
        return (self.folder / "turnserver.out").read_text(errors="replace")[-3000:]



def _isolate_phones(spot: Hotspot, isolated: bool) -> None:
    """Make the bridge drop (or pass) everything between its phone ports."""
    verdict = "drop" if isolated else "accept"
    ports = ", ".join(f'"{p}"' for p in PORTS.values())
    ruleset = (
        f"table bridge {ISOLATION_TABLE}\n"
        f"delete table bridge {ISOLATION_TABLE}\n"
        f"table bridge {ISOLATION_TABLE} {{\n"
        "  chain forward {\n"
        "    type filter hook forward priority filter; policy accept;\n"
        f"    iifname {{ {ports} }} oifname {{ {ports} }} counter {verdict}\n"
        "  }\n"
        "}\n"
    )
    path = spot.folder / "isolation.nft"
    path.write_text(ruleset)
    sh("ip", "netns", "exec", spot.box, need("nft"), "-f", str(path))


def _wait_for_stun(spot: Hotspot) -> None:
    deadline = time.monotonic() + 15
    while True:
        answer = spot.on_phone("alice", sys.executable, str(PHONE_CLIENT), "stun", spot.address,
                               str(render.STUN_PORT))
        if answer.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"coturn does not answer STUN:\n{spot.turn_output()}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def hotspot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotspot]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    pytest.importorskip("aiortc")
    need("ip")
    nft, turnserver = need("nft"), need("turnserver")
    tag = os.getpid()
    box = f"ahoy-calls-box-{tag}"
    created = run(["ip", "netns", "add", box])
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    namespaces = [box]
    folder = tmp_path_factory.mktemp("calls-netns")
    config = parse_config(CONFIG)
    secret = credentials.turn_secret(folder / "data")
    spot = Hotspot(config, folder, secret, box,
                   {name: f"ahoy-calls-{name}-{tag}" for name in PHONES})
    try:
        prefix = config.network.prefixlen
        sh("ip", "-n", box, "link", "add", config.interface, "type", "bridge")
        for name, address in PHONES.items():
            ns = spot.phones[name]
            sh("ip", "netns", "add", ns)
            namespaces.append(ns)
            sh("ip", "-n", box, "link", "add", PORTS[name], "type", "veth", "peer", "name",
               "ph0", "netns", ns)
            sh("ip", "-n", box, "link", "set", PORTS[name], "master", config.interface, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", "ph0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{address}/{prefix}", "dev", "ph0")
        sh("ip", "-n", box, "link", "set", "lo", "up")
        sh("ip", "-n", box, "link", "set", config.interface, "up")
        sh("ip", "-n", box, "addr", "add", f"{config.box_address}/{prefix}", "dev",
           config.interface)
        # A Wi-Fi AP passes station-to-station frames without netfilter; with
        # br_netfilter loaded, bridged IPv4 would meet the box's forward chain.
        for sysctl in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables",
                       "bridge-nf-call-arptables"):
            run(["ip", "netns", "exec", box, "sysctl", "-q", "-w", f"net.bridge.{sysctl}=0"])

        files = render.render_all(config, secret, lease_file=folder / "leases")
        for name in (render.NFTABLES, render.TURNSERVER):
            (folder / name).write_text(files[name])
        sh("ip", "netns", "exec", box, nft, "-f", str(folder / render.NFTABLES))
        _isolate_phones(spot, isolated=False)
        with open(folder / "turnserver.out", "wb") as out:
            spot.processes.append(subprocess.Popen(
                ["ip", "netns", "exec", box, turnserver, "-c", str(folder / render.TURNSERVER),
                 f"--pidfile={folder / 'turnserver.pid'}"],
                stdout=out, stderr=subprocess.STDOUT))
        _wait_for_stun(spot)
        yield spot
    finally:
        stop_all(spot.processes, namespaces)


class Peer:
    """One `turn_peer.py` in a phone's namespace, spoken to in JSON lines."""

    def __init__(self, spot: Hotspot, phone: str, *args: str) -> None:
        self.phone = phone
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", spot.phones[phone], sys.executable, str(PEER), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._buffer = b""

    def read(self, timeout: float = 25) -> dict[str, Any]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(left, 0))
            chunk = os.read(self.process.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                self.close()
                assert self.process.stderr is not None
                stderr = self.process.stderr.read().decode(errors="replace")[-3000:]
                raise AssertionError(f"{self.phone}'s peer said nothing more:\n{stderr}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def hang_up(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()

    def close(self) -> None:
        self.hang_up()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def peers(hotspot: Hotspot) -> Iterator[list[Peer]]:
    """Peers started by a test; always stopped afterwards."""
    started: list[Peer] = []
    yield started
    for peer in started:  # both ends hang up at once, then each is waited for
        peer.hang_up()
    for peer in started:
        peer.close()


def _call(spot: Hotspot, peers: list[Peer], policy: str = "all",
          transports: tuple[str, ...] = ("udp", "tcp")) -> dict[str, dict[str, Any]]:
    """Alice calls Bob; each side's report once the other's hello arrived."""
    alice = Peer(spot, "alice", "offer", "alice",
                 json.dumps(spot.ice_for("alice", transports)), policy)
    peers.append(alice)
    bob = Peer(spot, "bob", "answer", "bob", json.dumps(spot.ice_for("bob", transports)), policy)
    peers.append(bob)
    bob.write(alice.read())
    alice.write(bob.read())
    reports = {"alice": alice.read(), "bob": bob.read()}
    for name, report in reports.items():
        assert "error" not in report, f"{name}: {report}\ncoturn:\n{spot.turn_output()}"
    return reports


def _candidates(sdp: str) -> list[dict[str, str]]:
    return [m.groupdict() for m in CANDIDATE.finditer(sdp)]


def _packets_between_phones(spot: Hotspot) -> int:
    """Packets the bridge passed (or dropped) between the phones since it was last set up."""
    listed = run(["ip", "netns", "exec", spot.box, need("nft"), "-j", "list", "table", "bridge",
                  ISOLATION_TABLE])
    assert listed.returncode == 0, listed.stderr
    counters = [expr["counter"]["packets"]
                for item in json.loads(listed.stdout)["nftables"] if "rule" in item
                for expr in item["rule"]["expr"] if "counter" in expr]
    assert len(counters) == 1, listed.stdout
    packets: int = counters[0]
    return packets


@pytest.fixture
def isolated(hotspot: Hotspot) -> Iterator[Hotspot]:
    """The hotspot with the phones unable to reach each other, only the box."""
    _isolate_phones(hotspot, isolated=True)
    try:
        yield hotspot
    finally:
        _isolate_phones(hotspot, isolated=False)


def test_phone_learns_its_own_address_and_a_relay_from_the_box(
    hotspot: Hotspot, peers: list[Peer]
) -> None:
    peer = Peer(hotspot, "alice", "gather", json.dumps(hotspot.ice_for("alice")))
    peers.append(peer)
    offer = peer.read()
    candidates = _candidates(offer["sdp"])
    by_type = {c["type"]: c for c in candidates if c["component"] == "1"}
    # With no NAT on the hotspot, the box's STUN reveals the phone's LAN address:
    # the candidate a browser can share even while it hides its host IP.
    assert by_type["srflx"]["ip"] == PHONES["alice"], candidates
    assert by_type["host"]["ip"] == PHONES["alice"], candidates
    # The service's TURN credentials are accepted and coturn relays from the box.
    low, high = render.TURN_RELAY_PORTS
    assert by_type["relay"]["ip"] == hotspot.address, candidates
    assert low <= int(by_type["relay"]["port"]) <= high, candidates


def test_call_goes_phone_to_phone_when_the_hotspot_passes_traffic_between_phones(
    hotspot: Hotspot, peers: list[Peer]
) -> None:
    reports = _call(hotspot, peers)
    assert _packets_between_phones(hotspot) > 0  # the call's packets went phone, bridge, phone
    assert reports["alice"]["received"] == "hello from bob"
    assert reports["bob"]["received"] == "hello from alice"
    for name, other in (("alice", "bob"), ("bob", "alice")):
        pair = reports[name]["pair"]
        assert reports[name]["state"] == "connected"
        assert pair["local"]["type"] in ("host", "srflx"), reports
        assert pair["remote"]["type"] in ("host", "srflx"), reports
        assert pair["local"]["ip"] == PHONES[name], reports
        assert pair["remote"]["ip"] == PHONES[other], reports


def test_call_goes_through_the_box_turn_relay_when_phones_cannot_reach_each_other(
    isolated: Hotspot, peers: list[Peer]
) -> None:
    reports = _call(isolated, peers)
    assert _packets_between_phones(isolated) > 0  # direct checks were tried, and dropped
    assert reports["alice"]["received"] == "hello from bob"
    assert reports["bob"]["received"] == "hello from alice"
    for name in ("alice", "bob"):
        pair = reports[name]["pair"]
        assert reports[name]["state"] == "connected"
        assert "relay" in (pair["local"]["type"], pair["remote"]["type"]), reports
        # Whichever side relays, its packets go to or come from the box's relay.
        relayed = pair["local"] if pair["local"]["type"] == "relay" else pair["remote"]
        assert relayed["ip"] == isolated.address, reports


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_relay_only_phones_talk_through_two_relays_on_the_box(
    isolated: Hotspot, peers: list[Peer], transport: str
) -> None:
    """Phones that allow only relayed candidates (iceTransportPolicy "relay"), with
    TURN over UDP or, as browsers fall back to, over TCP: coturn relays between two
    of its own allocations, which the rendered allowed-peer-ip range permits."""
    reports = _call(isolated, peers, policy="relay", transports=(transport,))
    assert reports["alice"]["received"] == "hello from bob"
    assert reports["bob"]["received"] == "hello from alice"
    low, high = render.TURN_RELAY_PORTS
    for name in ("alice", "bob"):
        pair = reports[name]["pair"]
        assert reports[name]["state"] == "connected"
        for end in (pair["local"], pair["remote"]):
            assert end["type"] == "relay", reports
            assert end["ip"] == isolated.address and low <= end["port"] <= high, reports
