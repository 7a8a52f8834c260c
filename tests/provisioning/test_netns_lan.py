"""LAN mode (`hotspot = off`), for real: the box joins a ship's network in namespaces.

The ship's router is a namespace running its own dnsmasq (DHCP and DNS) on a
bridge; the box and a laptop hang off that bridge. The box takes its address
from the router with a real DHCP client (pyroute2's, standing in for
systemd-networkd, which the rendered unit configures on the box), loads the
rendered LAN-mode nftables ruleset and runs the service's real LAN-mode
companions (network watcher and mDNS announcer). Needs root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from provisioning_programs import need, run, sh, stop_all, wait_for

from provisioning import render
from provisioning.config import parse_config

pytestmark = pytest.mark.netns

HERE = Path(__file__).parent
REPO = HERE.parents[1]
CLIENT = HERE / "phone_client.py"
SHIP_LAN = IPv4Network("192.168.77.0/24")
LAPTOP_IP = "192.168.77.50"
BOX_NAME = "lanbox"
RESOLVE = """
import json, sys
from zeroconf import IPVersion, Zeroconf
from zeroconf import AddressResolverIPv4
zc = Zeroconf(interfaces=[sys.argv[1]], ip_version=IPVersion.V4Only)
try:
    resolver = AddressResolverIPv4(sys.argv[2])
    found = resolver.request(zc, 3000)
    print(json.dumps({"addresses": resolver.parsed_addresses() if found else []}))
finally:
    zc.close()
"""


@dataclass
class Lan:
    router: str
    box: str
    laptop: str
    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, ns: str, name: str, *argv: str, cwd: Path | None = None) -> None:
        log = open(self.folder / f"{name}.log", "wb")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.processes.append(subprocess.Popen(["ip", "netns", "exec", ns, *argv], cwd=cwd,
                                               stdout=log, stderr=subprocess.STDOUT, env=env))

    def on_laptop(self, *args: str) -> dict[str, Any]:
        result = run(["ip", "netns", "exec", self.laptop, sys.executable, str(CLIENT), *args],
                     timeout=30)
        assert result.returncode == 0, result.stderr
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer

    def box_address(self) -> str | None:
        shown = run(["ip", "-n", self.box, "-4", "-j", "addr", "show", "dev", "up0"]).stdout
        for link in json.loads(shown or "[]"):
            for info in link.get("addr_info", []):
                if IPv4Address(info["local"]) in SHIP_LAN:
                    return str(info["local"])
        return None

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}"
                         for p in sorted(self.folder.glob("*.log")))


CONFIG = parse_config(f"hotspot = off\nuplink_interface = up0\nbox_name = {BOX_NAME}\n")


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lan]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    need("ip")
    nft, dnsmasq = need("nft"), need("dnsmasq")
    dhcp_client = shutil.which("pyroute2-dhcp-client", path=str(Path(sys.executable).parent))
    if dhcp_client is None:
        pytest.skip("pyroute2-dhcp-client is missing (it comes with pyroute2)")
    tag = os.getpid()
    router, box, laptop = (f"ahoy-lan-{n}-{tag}" for n in ("rt", "box", "lap"))
    created = run(["ip", "netns", "add", router])
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    folder = tmp_path_factory.mktemp("lan")
    spot = Lan(router, box, laptop, folder)
    namespaces = [router]
    try:
        sh("ip", "-n", router, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", router, "addr", "add", "192.168.77.1/24", "dev", "br0")
        for ns, iface, port in ((box, "up0", "pbox"), (laptop, "eth0", "plap")):
            sh("ip", "netns", "add", ns)
            namespaces.append(ns)
            sh("ip", "-n", ns, "link", "add", iface, "type", "veth", "peer", "name", port,
               "netns", router)
            sh("ip", "-n", router, "link", "set", port, "master", "br0", "up")
            sh("ip", "-n", ns, "link", "set", iface, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", router, "link", "set", "br0", "up")
        sh("ip", "-n", router, "link", "set", "lo", "up")
        sh("ip", "-n", laptop, "addr", "add", f"{LAPTOP_IP}/24", "dev", "eth0")
        # The ship's router: its own DHCP and DNS, nothing of Ahoy's.
        router_conf = folder / "router-dnsmasq.conf"
        router_conf.write_text(
            "interface=br0\nbind-interfaces\nno-resolv\nno-hosts\n"
            "address=/router.ship/192.168.77.1\n"
            "dhcp-range=192.168.77.100,192.168.77.150,255.255.255.0,1h\n"
            f"dhcp-leasefile={folder / 'router.leases'}\n")
        spot.start(router, "router-dnsmasq", dnsmasq, "--keep-in-foreground", "--user=root",
                   f"--conf-file={router_conf}", f"--pid-file={folder / 'router.pid'}")
        rules = folder / "lan.nft"
        files = render.render_all(CONFIG, "secret")
        rules.write_text(files[render.NFTABLES])
        sh("ip", "netns", "exec", box, nft, "-f", str(rules))
        (folder / "dhcp").mkdir()
        spot.start(box, "dhcp-client", dhcp_client, "up0", cwd=folder / "dhcp")
        wait_for("the box's DHCP lease", spot.box_address, spot)
        (folder / "www").mkdir()
        (folder / "www" / "index.html").write_text("ahoy")
        for port in ("80", "8080"):
            spot.start(box, f"http-{port}", sys.executable, "-m", "http.server", port,
                       "--directory", str(folder / "www"))
        spot.start(box, "service", sys.executable, str(HERE / "lan_box.py"),
                   str(folder / "data"), BOX_NAME, "up0")
        yield spot
    finally:
        stop_all(spot.processes, namespaces)


def test_lan_mode_renders_no_access_point_and_no_dhcp_or_dns_of_its_own() -> None:
    files = render.render_all(CONFIG, "secret")
    assert set(files) == {render.NFTABLES, render.TURNSERVER, render.NETWORKD}
    assert "DHCP=ipv4" in files[render.NETWORKD] and "Name=up0" in files[render.NETWORKD]
    assert "redirect" not in files[render.NFTABLES]
    assert "listening-ip=0.0.0.0" in files[render.TURNSERVER].splitlines()
    fixed = parse_config("hotspot = off\nuplink_address = 192.168.77.9/24\n"
                         "uplink_gateway = 192.168.77.1\n")
    unit = render.render_networkd(fixed)
    assert "Address=192.168.77.9/24" in unit and "Gateway=192.168.77.1" in unit
    assert "DHCP" not in unit and str(fixed.box_address) == "192.168.77.9"


def test_the_box_takes_its_address_from_the_ships_dhcp_server(lan: Lan) -> None:
    address = wait_for("an address", lan.box_address, lan)
    assert 100 <= int(address.rsplit(".", 1)[1]) <= 150


def test_people_on_the_network_reach_the_web_app_and_nothing_else(lan: Lan) -> None:
    address = wait_for("an address", lan.box_address, lan)
    web = wait_for("the web app", lambda: (r := lan.on_laptop("tcp", address, "80"))
                   ["connected"] and r, lan)
    assert "200" in web["reply"]
    assert not lan.on_laptop("tcp", address, "8080")["connected"]


def test_no_dns_takeover_the_box_answers_no_names(lan: Lan) -> None:
    address = wait_for("an address", lan.box_address, lan)
    assert lan.on_laptop("dns", "192.168.77.1", "router.ship").get("addresses") == [
        "192.168.77.1"]  # the control: the ship's own DNS works
    assert not lan.on_laptop("dns", address, "ahoy.internal").get("addresses")


def test_the_box_is_found_as_box_name_dot_local_at_its_dhcp_address(lan: Lan) -> None:
    address = wait_for("an address", lan.box_address, lan)

    def resolve() -> list[str] | None:
        done = run(["ip", "netns", "exec", lan.laptop, sys.executable, "-c", RESOLVE, LAPTOP_IP,
                    f"{BOX_NAME}.local."], timeout=30)
        if done.returncode != 0:
            return None
        found: list[str] = json.loads(done.stdout)["addresses"]
        return found or None

    assert wait_for(f"{BOX_NAME}.local", resolve, lan) == [address]
