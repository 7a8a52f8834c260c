"""The hotspot and LAN mode together (`uplink = on`), for real, in network namespaces.

The ship's router is a namespace running its own dnsmasq (DHCP and DNS) on a bridge,
with a laptop on it. The box has two interfaces: `up0` on the ship's bridge, which
takes its address from the router with a real DHCP client (pyroute2's, standing in for
systemd-networkd), and `hs0`, the hotspot (a veth standing in for the radio), where a
phone sits. The box loads the rendered ruleset with routing turned on (so only the
firewall keeps the two sides apart) and runs the real dnsmasq and coturn with the
rendered files. Needs root.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from provisioning_programs import need, run, sh, stop_all, wait_for

from provisioning import credentials, render
from provisioning.config import parse_config

pytestmark = pytest.mark.netns

HERE = Path(__file__).parent
REPO = HERE.parents[1]
CLIENT = HERE / "phone_client.py"
TURN_PEER = HERE.parent / "netns" / "turn_peer.py"
SHIP_LAN = IPv4Network("192.168.77.0/24")
ROUTER_IP = "192.168.77.1"
LAPTOP_IP = "192.168.77.50"
BOX_IP = "10.42.0.1"
PHONE_IP = "10.42.0.50"
BOX_NAME = "deckbox"
ECHO_PORT = "7000"
RESOLVE = """
import json, sys
from zeroconf import AddressResolverIPv4, IPVersion, Zeroconf
zc = Zeroconf(interfaces=[sys.argv[1]], ip_version=IPVersion.V4Only)
try:
    resolver = AddressResolverIPv4(sys.argv[2])
    found = resolver.request(zc, 3000)
    print(json.dumps({"addresses": resolver.parsed_addresses() if found else []}))
finally:
    zc.close()
"""

CONFIG = parse_config(f"box_name = {BOX_NAME}\ninterface = hs0\nuplink = on\n"
                      "uplink_interface = up0\n")


@dataclass
class Ship:
    router: str
    box: str
    laptop: str
    phone: str
    folder: Path
    secret: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    turnserver: subprocess.Popen[bytes] | None = None

    def start(self, ns: str, name: str, *argv: str, cwd: Path | None = None) -> None:
        log = open(self.folder / f"{name}.log", "wb")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.processes.append(subprocess.Popen(["ip", "netns", "exec", ns, *argv], cwd=cwd,
                                               stdout=log, stderr=subprocess.STDOUT, env=env))

    def client(self, ns: str, *args: str) -> dict[str, Any]:
        result = run(["ip", "netns", "exec", ns, sys.executable, str(CLIENT), *args],
                     timeout=60)
        assert result.returncode == 0, result.stderr
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer

    def answers(self, ns: str, *args: str) -> dict[str, Any] | None:
        """The client's answer, or None when it failed (a server not up yet)."""
        result = run(["ip", "netns", "exec", ns, sys.executable, str(CLIENT), *args],
                     timeout=60)
        if result.returncode != 0:
            return None
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer

    def on_laptop(self, *args: str) -> dict[str, Any]:
        return self.client(self.laptop, *args)

    def on_phone(self, *args: str) -> dict[str, Any]:
        return self.client(self.phone, *args)

    def uplink_address(self) -> str | None:
        shown = run(["ip", "-n", self.box, "-4", "-j", "addr", "show", "dev", "up0"]).stdout
        for link in json.loads(shown or "[]"):
            for info in link.get("addr_info", []):
                if IPv4Address(info["local"]) in SHIP_LAN:
                    return str(info["local"])
        return None

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}"
                         for p in sorted(self.folder.glob("*.log")))


def _veth(ns: str, iface: str, peer_ns: str, peer: str) -> None:
    sh("ip", "-n", ns, "link", "add", iface, "type", "veth", "peer", "name", peer,
       "netns", peer_ns)
    sh("ip", "-n", ns, "link", "set", iface, "up")
    sh("ip", "-n", peer_ns, "link", "set", peer, "up")


@pytest.fixture(scope="module")
def ship(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ship]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    need("ip")
    nft, dnsmasq, turnserver = need("nft"), need("dnsmasq"), need("turnserver")
    dhcp_client = shutil.which("pyroute2-dhcp-client", path=str(Path(sys.executable).parent))
    if dhcp_client is None:
        pytest.skip("pyroute2-dhcp-client is missing (it comes with pyroute2)")
    tag = os.getpid()
    router, box, laptop, phone = (f"ahoy-both-{n}-{tag}" for n in ("rt", "box", "lap", "ph"))
    created = run(["ip", "netns", "add", router])
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    folder = tmp_path_factory.mktemp("both")
    secret = credentials.turn_secret(folder / "data")
    spot = Ship(router, box, laptop, phone, folder, secret)
    namespaces = [router]
    try:
        for ns in (box, laptop, phone):
            sh("ip", "netns", "add", ns)
            namespaces.append(ns)
        for ns in namespaces:
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", router, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", router, "addr", "add", f"{ROUTER_IP}/24", "dev", "br0")
        sh("ip", "-n", router, "link", "set", "br0", "up")
        # The hotspot's interface first, as wlan0 comes before a USB radio (wlan1) on a
        # Pi: coturn left to itself would relay from its address.
        _veth(box, "hs0", phone, "eth0")
        for ns, iface, port in ((box, "up0", "pbox"), (laptop, "eth0", "plap")):
            _veth(ns, iface, router, port)
            sh("ip", "-n", router, "link", "set", port, "master", "br0")
        sh("ip", "-n", box, "addr", "add", f"{BOX_IP}/24", "dev", "hs0")
        sh("ip", "-n", laptop, "addr", "add", f"{LAPTOP_IP}/24", "dev", "eth0")
        # Routing on in the box: only the firewall keeps the two sides apart.
        sh("ip", "netns", "exec", box, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        # The ship's router: its own DHCP and DNS, nothing of Ahoy's.
        router_conf = folder / "router-dnsmasq.conf"
        router_conf.write_text(
            "interface=br0\nbind-interfaces\nno-resolv\nno-hosts\n"
            f"address=/router.ship/{ROUTER_IP}\n"
            "dhcp-range=192.168.77.100,192.168.77.150,255.255.255.0,1h\n"
            f"dhcp-leasefile={folder / 'router.leases'}\n")
        spot.start(router, "router-dnsmasq", dnsmasq, "--keep-in-foreground", "--user=root",
                   f"--conf-file={router_conf}", f"--pid-file={folder / 'router.pid'}")
        files = render.render_all(CONFIG, secret, lease_file=folder / "box.leases")
        for name, text in files.items():
            (folder / name).write_text(text)
        sh("ip", "netns", "exec", box, nft, "-f", str(folder / render.NFTABLES))
        spot.start(box, "box-dnsmasq", dnsmasq, "--keep-in-foreground", "--user=root",
                   f"--conf-file={folder / render.DNSMASQ}",
                   f"--pid-file={folder / 'box-dnsmasq.pid'}")
        # Started before the uplink has an address, as at boot.
        spot.start(box, "turnserver", turnserver, "-c", str(folder / render.TURNSERVER),
                   "--pidfile=", "--log-file=stdout")
        spot.turnserver = spot.processes[-1]
        (folder / "dhcp").mkdir()
        spot.start(box, "dhcp-client", dhcp_client, "up0", cwd=folder / "dhcp")
        wait_for("the box's DHCP lease on the uplink", spot.uplink_address, spot)
        (folder / "www").mkdir()
        (folder / "www" / "index.html").write_text("ahoy")
        for port in ("80", "8080"):
            spot.start(box, f"http-{port}", sys.executable, "-m", "http.server", port,
                       "--directory", str(folder / "www"))
        # The phone has joined the hotspot (its lease is checked below).
        sh("ip", "-n", phone, "addr", "add", f"{PHONE_IP}/24", "dev", "eth0")
        sh("ip", "-n", phone, "route", "add", "default", "via", BOX_IP)
        for ns in (laptop, phone):
            spot.start(ns, f"echo-{ns}", sys.executable, str(CLIENT), "echo", ECHO_PORT)
        # The service's companions: watchers of both interfaces and the mDNS announcer.
        spot.start(box, "service", sys.executable, str(HERE / "lan_box.py"),
                   str(folder / "service"), BOX_NAME, "up0", "hs0", BOX_IP)
        yield spot
    finally:
        stop_all(spot.processes, namespaces)


def test_the_config_renders_the_hotspot_and_the_uplink_beside_it() -> None:
    files = render.render_all(CONFIG, "secret")
    assert {render.HOSTAPD, render.DNSMASQ, render.NETWORKD, render.NETWORKD_UPLINK} <= set(files)
    assert "interface=hs0" in files[render.DNSMASQ]
    assert "Name=hs0" in files[render.NETWORKD] and "Address=10.42.0.1/24" in files[
        render.NETWORKD]
    assert "Name=up0" in files[render.NETWORKD_UPLINK]
    assert "DHCP=ipv4" in files[render.NETWORKD_UPLINK]
    # Both sides, and an address DHCP gives after coturn started.
    assert "listening-ip=0.0.0.0" in files[render.TURNSERVER].splitlines()


def test_a_fixed_uplink_address_is_where_turn_relays() -> None:
    fixed = parse_config("interface = hs0\nuplink = on\nuplink_interface = up0\n"
                         "uplink_address = 192.168.77.9/24\nuplink_gateway = 192.168.77.1\n")
    lines = render.render_turnserver(fixed, "secret").splitlines()
    assert "listening-ip=0.0.0.0" in lines and "relay-ip=192.168.77.9" in lines
    assert "Address=192.168.77.9/24" in render.render_all(fixed, "s")[render.NETWORKD_UPLINK]
    assert fixed.fixed_addresses == ["10.42.0.1", "192.168.77.9"]  # both in the certificate


def test_the_box_takes_its_uplink_address_from_the_ships_dhcp_server(ship: Ship) -> None:
    address = wait_for("an uplink address", ship.uplink_address, ship)
    assert 100 <= int(address.rsplit(".", 1)[1]) <= 150
    routes = run(["ip", "-n", ship.box, "-4", "route", "show", "default"]).stdout
    assert ROUTER_IP in routes


def test_phones_on_the_hotspot_get_the_boxs_lease_and_the_portal(ship: Ship) -> None:
    offer = wait_for("the box's DHCP offer", lambda: (o := ship.on_phone("dhcp", "eth0"))
                     .get("yiaddr") and o, ship)
    assert IPv4Address(offer["yiaddr"]) in CONFIG.network
    assert offer["options"]["54"] == BOX_IP and offer["options"]["3"] == BOX_IP
    assert offer["options"]["114"] == f"https://{BOX_IP}/captive-portal/api"


def test_only_the_ships_router_hands_out_addresses_on_the_ships_network(ship: Ship) -> None:
    offers = ship.on_laptop("dhcp_offers", "eth0", "4")
    assert offers["offers"] > 0  # the laptop's DISCOVERs reached the bridge
    assert offers["servers"] == [ROUTER_IP]
    # dnsmasq is bound to the hotspot alone: none of its sockets is on the uplink.
    address = wait_for("an uplink address", ship.uplink_address, ship)
    sockets = run(["ip", "netns", "exec", ship.box, "ss", "-H", "-lnup"]).stdout
    dnsmasq = [line for line in sockets.splitlines() if "dnsmasq" in line]
    assert any(f"{BOX_IP}:53" in line for line in dnsmasq), sockets
    assert not [line for line in dnsmasq if address in line or "0.0.0.0:53" in line], sockets


def test_the_box_answers_names_on_the_hotspot_and_none_on_the_ships_network(ship: Ship) -> None:
    assert ship.on_phone("dns", BOX_IP, "anything.example").get("addresses") == [BOX_IP]
    address = wait_for("an uplink address", ship.uplink_address, ship)
    assert ship.on_laptop("dns", ROUTER_IP, "router.ship").get("addresses") == [ROUTER_IP]
    assert not ship.on_laptop("dns", address, "ahoy.internal").get("addresses")


def test_people_on_the_ships_network_reach_the_web_app_and_nothing_else(ship: Ship) -> None:
    address = wait_for("an uplink address", ship.uplink_address, ship)
    web = wait_for("the web app", lambda: (r := ship.on_laptop("tcp", address, "80"))
                   ["connected"] and r, ship)
    assert "200" in web["reply"]
    assert not ship.on_laptop("tcp", address, "8080")["connected"]
    assert ship.on_phone("tcp", BOX_IP, "80")["connected"]


def test_stun_and_turn_answer_on_both_sides_each_relaying_from_its_own_address(
    ship: Ship,
) -> None:
    address = wait_for("an uplink address", ship.uplink_address, ship)
    stun = wait_for("STUN on the uplink", lambda: (ship.answers(
        ship.laptop, "stun", address, str(render.STUN_PORT)) or {}).get("mapped"), ship)
    assert stun.startswith(f"{LAPTOP_IP}:")
    user, password = credentials.turn_credentials(ship.secret, "u_test", 600)
    low, high = render.TURN_RELAY_PORTS
    for on, at in ((ship.on_laptop, address), (ship.on_phone, BOX_IP)):
        answer = on("turn", at, str(render.STUN_PORT), user, password)
        assert answer["type"] == 0x0103, answer  # Allocate success
        relay_ip, relay_port = answer["relayed"].split(":")
        # One of the box's addresses (until apply knows the uplink's, coturn picks one):
        # phones on the hotspot reach either, so a call between the sides has a path.
        assert relay_ip in (address, BOX_IP) and low <= int(relay_port) <= high


def test_once_apply_knows_the_uplinks_lease_coturn_relays_there_for_both_sides(
    ship: Ship,
) -> None:
    from provisioning.apply import HostSystem

    address = wait_for("an uplink address", ship.uplink_address, ship)
    # The service saw the lease and asked the root side to apply again.
    requests = ship.folder / "service" / "requests"
    wait_for("the service's apply request", lambda: list(requests.glob("*-apply.json")), ship)
    user, password = credentials.turn_credentials(ship.secret, "u_test", 600)
    port = str(render.STUN_PORT)
    assert ship.turnserver is not None
    if "relay-ip" not in (ship.folder / render.TURNSERVER).read_text():
        # The control: left to itself, coturn relays the laptop from the hotspot's address,
        # which nothing on the ship's network reaches.
        answer = ship.on_laptop("turn", address, port, user, password)
        assert answer["relayed"].split(":")[0] == BOX_IP, answer
    # What apply renders now (it asks the machine for the uplink's address), and coturn
    # restarted with it, as apply does when its file changed.
    now = HostSystem(netns=ship.box).address_of("up0")
    assert now == address
    text = render.render_all(CONFIG, ship.secret, uplink_now=now)[render.TURNSERVER]
    assert f"relay-ip={address}" in text.splitlines()
    (ship.folder / render.TURNSERVER).write_text(text)
    ship.turnserver.terminate()
    ship.turnserver.wait(10)
    ship.start(ship.box, "turnserver-again", need("turnserver"), "-c",
               str(ship.folder / render.TURNSERVER), "--pidfile=", "--log-file=stdout")
    ship.turnserver = ship.processes[-1]
    wait_for("STUN again", lambda: ship.answers(ship.laptop, "stun", address, port), ship)
    for on, at in ((ship.on_laptop, address), (ship.on_phone, BOX_IP)):
        answer = on("turn", at, port, user, password)
        assert answer["type"] == 0x0103, answer
        assert answer["relayed"].split(":")[0] == address, answer


@pytest.fixture
def route_to_the_hotspot(ship: Ship) -> Iterator[str]:
    """The laptop knows a way to the hotspot's phones through the box, as a helpful ship's
    technician might set up: the box must still route nothing."""
    address = wait_for("an uplink address", ship.uplink_address, ship)
    sh("ip", "-n", ship.laptop, "route", "add", str(CONFIG.network), "via", address)
    try:
        yield address
    finally:
        sh("ip", "-n", ship.laptop, "route", "del", str(CONFIG.network))


def test_nothing_is_routed_between_the_hotspot_and_the_ships_network(
    ship: Ship, route_to_the_hotspot: str,
) -> None:
    address = route_to_the_hotspot
    # The controls: each side reaches the box's own address on the other side (the box
    # itself, not a route through it).
    assert ship.on_phone("tcp", address, "443")["error"] == "ConnectionRefusedError"
    assert ship.on_laptop("tcp", address, "80")["connected"]

    def crossing() -> dict[str, bool]:
        return {
            "phone->laptop tcp": ship.on_phone("tcp", LAPTOP_IP, ECHO_PORT)["connected"],
            "phone->laptop udp": ship.on_phone("udp", LAPTOP_IP, ECHO_PORT)["echoed"],
            "laptop->phone tcp": ship.on_laptop("tcp", PHONE_IP, ECHO_PORT)["connected"],
            "laptop->phone udp": ship.on_laptop("udp", PHONE_IP, ECHO_PORT)["echoed"],
        }

    assert not any(crossing().values())
    # Without Ahoy's table the same packets would cross (routing is on): the firewall is
    # what keeps the sides apart.
    sh("ip", "netns", "exec", ship.box, "nft", "delete", "table", "inet", "ahoy")
    try:
        def all_cross() -> dict[str, bool] | None:
            tried = crossing()
            return tried if all(tried.values()) else None

        assert all(wait_for("packets crossing without the firewall", all_cross, ship).values())
    finally:
        sh("ip", "netns", "exec", ship.box, "nft", "-f", str(ship.folder / render.NFTABLES))
    assert not any(crossing().values())


def test_box_name_dot_local_is_the_uplinks_address_on_both_sides(ship: Ship) -> None:
    address = wait_for("an uplink address", ship.uplink_address, ship)

    def resolve(ns: str, own_ip: str) -> list[str] | None:
        done = run(["ip", "netns", "exec", ns, sys.executable, "-c", RESOLVE, own_ip,
                    f"{BOX_NAME}.local."], timeout=30)
        if done.returncode != 0:
            return None
        found: list[str] = json.loads(done.stdout)["addresses"]
        return found or None

    # The ship's laptop gets the address it can reach; a phone on the hotspot the same
    # one, which it reaches too (the box is its router; the web app answers there).
    assert wait_for("deckbox.local on the ship", lambda: resolve(ship.laptop, LAPTOP_IP),
                    ship) == [address]
    assert wait_for("deckbox.local on the hotspot", lambda: resolve(ship.phone, PHONE_IP),
                    ship) == [address]
    assert ship.on_phone("tcp", address, "80")["connected"]


class CallPeer:
    """tests/netns/turn_peer.py (aiortc) in a namespace, spoken to in JSON lines."""

    def __init__(self, ns: str, *args: str) -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(TURN_PEER), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._buffer = b""

    def read(self, timeout: float = 40) -> dict[str, Any]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self.process.stdout], [], [],
                                        max(deadline - time.monotonic(), 0))
            chunk = os.read(self.process.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                self.close()
                assert self.process.stderr is not None
                raise AssertionError("the peer said nothing more:\n"
                                     + self.process.stderr.read().decode(errors="replace"))
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def test_a_hotspot_phone_calls_a_laptop_on_the_ships_network_through_the_boxs_turn(
    ship: Ship, tmp_path: Path,
) -> None:
    pytest.importorskip("aiortc")
    from appliance.app import create_app
    from appliance.settings import Settings

    address = wait_for("an uplink address", ship.uplink_address, ship)
    # The ICE servers the service hands each of them, as `appliance serve` sets it up.
    port = render.STUN_PORT
    hub = create_app(Settings(
        data_dir=tmp_path / "service", box_address=BOX_IP, hotspot_network=str(CONFIG.network),
        uplink_interface="up0", uplink_address=address, stun_urls=(f"stun:{BOX_IP}:{port}",),
        turn_urls=(f"turn:{BOX_IP}:{port}?transport=udp",), turn_secret=ship.secret,
    )).extensions["ahoy"].hub
    phone_ice = hub.ice_servers("u_phone", PHONE_IP)
    laptop_ice = hub.ice_servers("u_laptop", LAPTOP_IP)
    assert [s["urls"][0] for s in phone_ice] == [f"stun:{BOX_IP}:{port}",
                                                 f"turn:{BOX_IP}:{port}?transport=udp"]
    assert [s["urls"][0] for s in laptop_ice] == [f"stun:{address}:{port}",
                                                  f"turn:{address}:{port}?transport=udp"]
    # The laptop uses its own relay only (as a browser set to relay, or one on a Wi-Fi
    # that isolates its clients must): so its TURN URL must be one it can reach.
    phone = CallPeer(ship.phone, "offer", "phone", json.dumps(phone_ice))
    laptop = CallPeer(ship.laptop, "answer", "laptop", json.dumps(laptop_ice), "relay")
    try:
        laptop.write(phone.read())
        phone.write(laptop.read())
        reports = {"phone": phone.read(), "laptop": laptop.read()}
    finally:
        phone.close()
        laptop.close()
    for name, other in (("phone", "laptop"), ("laptop", "phone")):
        report = reports[name]
        assert "error" not in report, f"{name}: {report}\n{ship.logs()}"
        assert report["received"] == f"hello from {other}"
        pair = report["pair"]
        # Nothing routes between the sides: the call goes through the laptop's relay.
        relayed = pair["local"] if name == "laptop" else pair["remote"]
        assert relayed["type"] == "relay" and relayed["ip"] in (address, BOX_IP), reports
