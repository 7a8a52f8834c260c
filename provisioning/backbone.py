"""The site's backbone, kept up as root: a link-local address, discovery, routes.

On the backbone interface (a switch, one cable, or the mesh's bat0) every box

- takes a link-local address (169.254.x.y) chosen from its box id, after an
  ARP probe (`arping -D`, RFC 5227) shows nobody else has it: no DHCP server
  is needed on a bare switch;
- announces itself with zeroconf (`_ahoy-box._tcp`): its box id, name,
  backbone address and hotspot subnet, signed with a key derived from the
  site's secret, and browses for the other boxes of its site;
- routes every other box's hotspot subnet via that box's backbone address
  (pyroute2), and drops the routes of boxes it no longer hears;
- writes what it heard to `<data_dir>/site/backbone.json` for the admin page,
  the status lights and the site's chat replication (one discovery, not two).

When a box with a lower id already has this box's hotspot subnet, the box
writes the next free subnet to `<data_dir>/site/hotspot-subnet` and asks for
an apply (see `provisioning.configstore`, which uses it).

Deciding is in `provisioning.sitenet` (pure); this module is the edges.
Run it as `python -m provisioning.backbone` (the systemd unit ahoy-backbone).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path
from typing import Any

from provisioning import sitenet
from provisioning.config import MESH_BACKBONE, BoxConfig
from provisioning.datadir import DEFAULT_BOOT_CONFIG, DEFAULT_DATA_DIR, DataDir, write_file
from provisioning.site import SitePaths, box_id, rendered_listen, site_dir

log = logging.getLogger(__name__)

SERVICE_TYPE = "_ahoy-box._tcp.local."
# The port other boxes reach this one's site services on (the site's NATS).
ANNOUNCED_PORT = 4222
MAX_TXT_VALUE = 64  # every TXT value we read is bounded
PROBE_TRIES = 16
# Records live 2 minutes (not mDNS's usual 75 for service records): a box switched
# off without a goodbye loses its routes after that; one that says goodbye at once.
RECORD_TTL = 120
RECONCILE_SECONDS = 3.0


def site_key(site_name: str, site_secret: str) -> bytes:
    """The key announcements are signed with: only boxes that know the secret are routed."""
    return hashlib.sha256(f"ahoy-backbone\0{site_name}\0{site_secret}".encode()).digest()


def _signed_fields(site: str, peer: sitenet.Peer) -> bytes:
    return (f"{site}|{peer.box_id:08x}|{peer.name}|{peer.backbone}|{peer.hotspot}|"
            f"{peer.wifi}").encode()


def wifi_tag(key: bytes, config: BoxConfig) -> str:
    """Tells boxes whether they broadcast the same Wi-Fi name and passphrase (phones roam
    only between those) without saying either."""
    text = f"wifi\0{config.wifi_name}\0{config.wifi_passphrase}".encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()[:16]


def announcement_properties(site: str, key: bytes, me: sitenet.Peer) -> dict[str, str]:
    """The TXT record of a box's announcement."""
    tag = hmac.new(key, _signed_fields(site, me), hashlib.sha256).hexdigest()[:32]
    return {"site": site, "id": f"{me.box_id:08x}", "name": me.name,
            "backbone": str(me.backbone), "hotspot": str(me.hotspot), "wifi": me.wifi,
            "sig": tag}


def peer_from_properties(
    properties: dict[bytes, bytes | None], site: str, key: bytes
) -> sitenet.Peer | None:
    """The peer an announcement describes, or None if it is not of this site, badly
    formed, too long or wrongly signed (a stranger on the backbone routes nothing)."""
    try:
        text = {k.decode(): (v or b"").decode() for k, v in properties.items()}
    except UnicodeDecodeError:
        return None
    if any(len(v) > MAX_TXT_VALUE for v in text.values()) or text.get("site") != site:
        return None
    try:
        peer = sitenet.Peer(int(text["id"], 16), text["name"],
                            IPv4Address(text["backbone"]), IPv4Network(text["hotspot"]),
                            text.get("wifi", ""))
    except (KeyError, ValueError):
        return None
    want = hmac.new(key, _signed_fields(site, peer), hashlib.sha256).hexdigest()[:32]
    return peer if hmac.compare_digest(want, text.get("sig", "")) else None


# --- the link-local address


Probe = Callable[[str, IPv4Address], bool]


def arp_probe(interface: str, address: IPv4Address) -> bool:
    """True if nobody on `interface` answers for `address` (arping -D, RFC 5227 probes)."""
    done = subprocess.run(["arping", "-D", "-q", "-I", interface, "-c", "3", "-w", "3",
                           str(address)], capture_output=True, timeout=10, check=False)
    if done.returncode not in (0, 1):
        raise OSError(f"arping failed on {interface}: {done.stderr.decode().strip()}")
    return done.returncode == 0


def claim_backbone_address(
    interface: str, me: int, *, probe: Probe = arp_probe, netns: str | None = None
) -> IPv4Address:
    """Give `interface` a link-local address nobody else has; keep one it already has.

    Raises LookupError when the interface is not there, OSError when no free
    address was found in PROBE_TRIES tries.
    """
    from pyroute2 import IPRoute

    with IPRoute(netns=netns) if netns else IPRoute() as ipr:
        found = ipr.link_lookup(ifname=interface)
        if not found:
            raise LookupError(interface)
        index = found[0]
        if not ipr.get_links(index)[0]["flags"] & 1:
            ipr.link("set", index=index, state="up")
        for msg in ipr.get_addr(index=index, family=socket.AF_INET):
            have = IPv4Address(msg.get("IFA_ADDRESS"))
            if have in sitenet.LINK_LOCAL:
                return have
        candidates = sitenet.backbone_candidates(me)
        for _ in range(PROBE_TRIES):
            address = next(candidates)
            if probe(interface, address):
                ipr.addr("add", index=index, address=str(address),
                         prefixlen=sitenet.BACKBONE_PREFIX, scope=253)  # scope link
                return address
            log.warning("backbone: %s is taken on %s, trying another", address, interface)
    raise OSError(f"no free link-local address on {interface} after {PROBE_TRIES} tries")


# --- routes


def current_routes(
    ipr: Any, index: int, space: IPv4Network
) -> dict[IPv4Network, IPv4Address]:
    """The routes via the backbone interface towards subnets inside the site's space."""
    routes: dict[IPv4Network, IPv4Address] = {}
    for msg in ipr.get_routes(family=socket.AF_INET, oif=index):
        dst, gateway = msg.get("RTA_DST"), msg.get("RTA_GATEWAY")
        if dst is None or gateway is None:
            continue
        net = IPv4Network(f"{dst}/{msg['dst_len']}")
        if net.subnet_of(space):
            routes[net] = IPv4Address(gateway)
    return routes


def sync_routes(
    interface: str,
    own: IPv4Network,
    space: IPv4Network,
    peers: list[sitenet.Peer],
    *,
    netns: str | None = None,
) -> sitenet.RoutePlan:
    """Make the routes over `interface` match the peers heard; returns what changed."""
    from pyroute2 import IPRoute

    with IPRoute(netns=netns) if netns else IPRoute() as ipr:
        found = ipr.link_lookup(ifname=interface)
        if not found:
            raise LookupError(interface)
        index = found[0]
        plan = sitenet.plan_routes(own, space, peers, current_routes(ipr, index, space))
        for net in plan.remove:
            ipr.route("del", dst=str(net), oif=index)
        for net, via in plan.add.items():
            ipr.route("replace", dst=str(net), gateway=str(via), oif=index)
    return plan


# --- discovery


@dataclass
class Heard:
    """The peers heard on the backbone, with when each was last heard."""

    peers: dict[int, sitenet.Peer] = field(default_factory=dict)
    seen: dict[int, float] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)  # zeroconf name -> box id
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, name: str, peer: sitenet.Peer, now: float) -> None:
        with self.lock:
            self.peers[peer.box_id] = peer
            self.seen[peer.box_id] = now
            self.names[name] = peer.box_id

    def forget(self, name: str) -> None:
        with self.lock:
            box = self.names.pop(name, None)
            if box is not None and box not in self.names.values():
                self.peers.pop(box, None)
                self.seen.pop(box, None)

    def current(self) -> list[sitenet.Peer]:
        with self.lock:
            return sorted(self.peers.values(), key=lambda p: p.box_id)


class Discovery:
    """Announce this box and hear the others of its site, with python-zeroconf."""

    def __init__(self, site: str, key: bytes, me: sitenet.Peer) -> None:
        self.site, self.key, self.me = site, key, me
        self.heard = Heard()
        self._zc: Any = None
        self._info: Any = None
        self._browser: Any = None

    def start(self) -> None:
        from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, Zeroconf

        self._zc = Zeroconf(interfaces=[str(self.me.backbone)], ip_version=IPVersion.V4Only)
        self._info = ServiceInfo(
            SERVICE_TYPE, f"ahoy-{self.me.box_id:016x}.{SERVICE_TYPE}",
            port=ANNOUNCED_PORT,
            properties=announcement_properties(self.site, self.key, self.me),
            server=f"ahoy-{self.me.box_id:016x}.local.",
            parsed_addresses=[str(self.me.backbone)],
            host_ttl=RECORD_TTL, other_ttl=RECORD_TTL,
        )
        self._zc.register_service(self._info)
        self._browser = ServiceBrowser(self._zc, SERVICE_TYPE, handlers=[self._changed])

    def _changed(self, zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        from zeroconf import ServiceStateChange

        if state_change is ServiceStateChange.Removed:
            self.heard.forget(name)
            return
        # Called on zeroconf's thread: ask in the background, bounded in time.
        threading.Thread(target=self._resolve, args=(name,), daemon=True).start()

    def _resolve(self, name: str) -> None:
        zc = self._zc
        if zc is None:
            return
        info = zc.get_service_info(SERVICE_TYPE, name, timeout=3000)
        if info is None:
            return
        peer = peer_from_properties(dict(info.properties), self.site, self.key)
        if peer is None or peer.box_id == self.me.box_id:
            return
        addresses = {ip_address(a) for a in info.parsed_addresses()}
        if peer.backbone not in addresses:
            return  # the record names another address than the one it came from
        self.heard.put(name, peer, time.monotonic())

    def update(self, me: sitenet.Peer) -> None:
        """Announce a changed hotspot subnet."""
        from zeroconf import ServiceInfo

        if self._zc is None or me == self.me:
            return
        self.me = me
        info = ServiceInfo(
            SERVICE_TYPE, self._info.name, port=ANNOUNCED_PORT,
            properties=announcement_properties(self.site, self.key, me),
            server=self._info.server, parsed_addresses=[str(me.backbone)],
            host_ttl=RECORD_TTL, other_ttl=RECORD_TTL,
        )
        self._zc.update_service(info)
        self._info = info

    def close(self) -> None:
        zc, self._zc = self._zc, None
        if zc is None:
            return
        try:
            if self._browser is not None:
                self._browser.cancel()
            zc.unregister_all_services()
        finally:
            zc.close()


# --- the state file and the loop


def own_id(data_dir: Path) -> int:
    """This box's id on the backbone: the site's box id (one id per box, made once on
    the data partition, see provisioning.site.box_id), as a number."""
    return sitenet.box_number(box_id(data_dir))


def status_path(data_dir: Path) -> Path:
    return DataDir(data_dir).site_backbone


def chosen_subnet_path(data_dir: Path) -> Path:
    return DataDir(data_dir).chosen_hotspot_subnet


def mesh_neighbours() -> list[dict[str, Any]] | None:
    """The mesh nodes batman-adv knows, with link quality (batctl); None if it cannot say."""
    from provisioning.mesh import parse_originators

    try:
        done = subprocess.run(["batctl", "meshif", MESH_BACKBONE, "originators", "-H"],
                              capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [{"mac": n.mac, "quality_percent": n.quality_percent, "last_seen_s": n.last_seen_s,
             "via": n.via, "direct": n.via == n.mac}
            for n in parse_originators(done.stdout[:256 * 1024].decode(errors="replace"))]


def write_status(data_dir: Path, me: sitenet.Peer, peers: list[sitenet.Peer],
                 problems: list[str], mesh: list[dict[str, Any]] | None = None) -> None:
    """What the admin page, the lights and the site's replication read."""
    status = {
        "box": {"id": f"{me.box_id:08x}", "name": me.name, "backbone": str(me.backbone),
                "hotspot": str(me.hotspot)},
        "peers": [{"id": f"{p.box_id:08x}", "name": p.name, "backbone": str(p.backbone),
                   "hotspot": str(p.hotspot), "same_wifi": p.wifi == me.wifi} for p in peers],
        "problems": problems,
        "mesh": mesh,
    }
    write_file(status_path(data_dir), json.dumps(status, indent=1).encode())


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The last status written, or None (no site, or the backbone is not up yet)."""
    try:
        data = status_path(data_dir).read_bytes()
        if len(data) > 256 * 1024:
            return None
        status: dict[str, Any] = json.loads(data)
        return status
    except (OSError, ValueError):
        return None


def site_link(status: dict[str, Any] | None) -> dict[str, Any]:
    """What the admin page and the lights say about the link to the site's other boxes."""
    if status is None:
        return {"boxes": 0, "alone": True, "peers": [], "problems": [],
                "text": "alone: the backbone has not started yet"}
    peers = status.get("peers") or []
    count = len(peers)
    text = (f"connected to {count} other box{'es' if count != 1 else ''}" if count
            else "alone: no other box of the site heard on the backbone")
    return {"boxes": count, "alone": count == 0, "peers": peers, "box": status.get("box"),
            "problems": list(status.get("problems") or []), "text": text,
            "mesh": status.get("mesh")}


@dataclass
class Backbone:
    """One box's backbone: configured once, then `step` keeps it in shape."""

    config: BoxConfig
    mac: str | None
    data_dir: Path
    site_secret: str = ""
    subnet_pinned: bool = False  # hotspot_subnet set in ahoy.txt: never moved
    probe: Probe = arp_probe
    netns: str | None = None
    request_apply: Callable[[], None] | None = None
    discovery: Discovery | None = None
    _asked_listen: str = ""  # the nats-server address an apply was asked for

    @property
    def site(self) -> str:
        return str(getattr(self.config, "site_name", ""))

    def start(self) -> None:
        me = own_id(self.data_dir)
        address = claim_backbone_address(self.config.backbone_interface, me,
                                         probe=self.probe, netns=self.netns)
        key = site_key(self.site, self.site_secret)
        peer = sitenet.Peer(me, self.config.box_name, address, self.config.hotspot_subnet,
                            wifi_tag(key, self.config))
        self.discovery = Discovery(self.site, key, peer)
        self.discovery.start()
        log.info("backbone: %s on %s, hotspot %s", address, self.config.backbone_interface,
                 self.config.hotspot_subnet)

    def step(self) -> list[sitenet.Peer]:
        """Routes and status from what was heard; move the subnet if another box has it."""
        assert self.discovery is not None
        me = self.discovery.me
        peers = self.discovery.heard.current()
        problems: list[str] = []
        claims = {p.hotspot: p.box_id for p in peers}
        problems += [f"box {p.name} broadcasts another Wi-Fi name or password: phones will not "
                     "move between it and this box by themselves; set the same wifi_name and "
                     "wifi_passphrase on every box of the site" for p in peers if p.wifi != me.wifi]
        chosen = sitenet.choose_hotspot_subnet(self.config.network, me.box_id, me.hotspot,
                                               claims)
        if chosen != me.hotspot:
            if self.subnet_pinned:
                problems.append(f"hotspot_subnet {me.hotspot} is also used by another box "
                                "of the site; set another one in ahoy.txt")
            else:
                write_file(chosen_subnet_path(self.data_dir), f"{chosen}\n".encode())
                log.warning("backbone: %s is taken by another box; moving to %s",
                            me.hotspot, chosen)
                self.discovery.update(replace(me, hotspot=chosen))
                if self.request_apply is not None:
                    self.request_apply()
        sync_routes(self.config.backbone_interface, self.discovery.me.hotspot,
                    self.config.network, peers, netns=self.netns)
        mesh = mesh_neighbours() if self.config.mesh_interface else None
        if self.config.mesh_interface and mesh is None:
            problems.append("the mesh's neighbours cannot be read (is batman-adv loaded and "
                            f"{self.config.mesh_interface} in the mesh?)")
        write_status(self.data_dir, self.discovery.me, peers, problems, mesh)
        self._follow_nats_listen()
        return peers

    def _follow_nats_listen(self) -> None:
        """The site's nats-server listens on the backbone address alone: when the one
        rendered is not this box's (first start, or the address moved), ask for an
        apply, which renders it anew and restarts the server."""
        assert self.discovery is not None
        rendered = rendered_listen(SitePaths(site_dir(self.data_dir)))
        wanted = str(self.discovery.me.backbone)
        if rendered is None or rendered[0] == wanted or self._asked_listen == wanted:
            return
        log.info("backbone: the site's nats-server listens on %s, not on %s; asking for an apply",
                 rendered[0], wanted)
        self._asked_listen = wanted
        if self.request_apply is not None:
            self.request_apply()

    def close(self) -> None:
        if self.discovery is not None:
            self.discovery.close()


def _request_apply(data_dir: Path) -> Callable[[], None]:
    def request() -> None:
        path = data_dir / "requests" / f"{time.time_ns()}-apply.json"
        write_file(path, json.dumps({"action": "apply"}).encode(), mode=0o600)

    return request


def main(argv: Sequence[str] | None = None) -> int:
    from provisioning import configstore, credentials

    parser = argparse.ArgumentParser(
        prog="python -m provisioning.backbone",
        description="Keep the site's backbone up: link-local address, discovery, routes.")
    parser.add_argument("--config", type=Path, default=DEFAULT_BOOT_CONFIG)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    loaded = configstore.read_config(args.config, args.data_dir)
    config = loaded.config
    if not config.in_site:
        print("no site_name set: this box is alone, the backbone is not used")
        return 0
    backbone = Backbone(
        config, configstore.interface_mac(config.interface), args.data_dir,
        site_secret=credentials.read_site_secret(args.data_dir) or "",
        subnet_pinned=configstore.hotspot_subnet_pinned(args.config),
        request_apply=_request_apply(args.data_dir),
    )
    backbone.start()
    try:
        while True:
            time.sleep(RECONCILE_SECONDS)
            backbone.step()
    except KeyboardInterrupt:
        return 0
    finally:
        backbone.close()


if __name__ == "__main__":
    raise SystemExit(main())
