"""Watching the hotspot interface, and listing the clients on it.

:class:`NetWatcher` follows the kernel's link and address events (pyroute2,
netlink) on a thread and reports the interface's :class:`LinkStatus` to a
callback whenever it changes: it goes down when hostapd stops or a USB
adapter is pulled. :func:`read_clients` merges the kernel neighbour table
with dnsmasq's leases for the admin page.

The parts that decide (:class:`LinkTracker`, :func:`parse_leases`,
:func:`merge_clients`) take plain values, so they are tested without netlink.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pyroute2 import AsyncIPRoute, IPRoute
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK
from pyroute2.netlink.rtnl.ndmsg import states as NUD_STATES

from provisioning.render import DEFAULT_LEASE_FILE

log = logging.getLogger(__name__)

# Where the rendered dnsmasq config keeps its leases (one place: provisioning).
DNSMASQ_LEASES = DEFAULT_LEASE_FILE
IFF_UP = 0x1


# --------------------------------------------------------------------------
# Link status


@dataclass(frozen=True)
class LinkStatus:
    """The watched interface as the service cares about it."""

    ifname: str
    present: bool = False
    admin_up: bool = False
    carrier: bool = False
    operstate: str = "UNKNOWN"
    addresses: tuple[str, ...] = ()

    @property
    def up(self) -> bool:
        """Usable: exists, set up, and has a carrier (the AP is running)."""
        return self.present and self.admin_up and self.carrier


@dataclass(frozen=True)
class LinkEvent:
    """A link appeared, changed or went away."""

    index: int
    ifname: str | None
    flags: int = 0
    carrier: bool = False
    operstate: str = "UNKNOWN"
    removed: bool = False


@dataclass(frozen=True)
class AddressEvent:
    """An address was added to or removed from a link."""

    index: int
    address: str
    removed: bool = False


class LinkTracker:
    """Folds link and address events into the :class:`LinkStatus` of one interface.

    The interface is known by name; its index is learnt from link events, so
    an adapter that is unplugged and plugged back in (new index) is followed.
    """

    def __init__(self, ifname: str) -> None:
        self.status = LinkStatus(ifname)
        self._index: int | None = None

    def apply(self, event: LinkEvent | AddressEvent) -> bool:
        """Apply one event; True if the status changed."""
        before = self.status
        if isinstance(event, LinkEvent):
            self._apply_link(event)
        elif event.index == self._index:
            addresses = [a for a in self.status.addresses if a != event.address]
            if not event.removed:
                addresses.append(event.address)
            self.status = replace(self.status, addresses=tuple(addresses))
        return self.status != before

    def _apply_link(self, event: LinkEvent) -> None:
        ours = event.ifname == self.status.ifname
        if event.index == self._index and not ours:
            # Deleted, or renamed away from the name we watch.
            self._index = None
            self.status = LinkStatus(self.status.ifname)
            return
        if not ours:
            return
        if event.removed:
            self._index = None
            self.status = LinkStatus(self.status.ifname)
            return
        if event.index != self._index:
            self.status = LinkStatus(self.status.ifname)  # a new device: forget addresses
            self._index = event.index
        self.status = replace(
            self.status,
            present=True,
            admin_up=bool(event.flags & IFF_UP),
            carrier=event.carrier,
            operstate=event.operstate,
        )


def _event(msg: Any) -> LinkEvent | AddressEvent | None:
    """The event in one pyroute2 rtnetlink message, if it is one we follow."""
    kind = msg.get("event")
    if kind in ("RTM_NEWLINK", "RTM_DELLINK"):
        return LinkEvent(
            index=msg["index"],
            ifname=msg.get("ifname"),
            flags=msg["flags"],
            carrier=bool(msg.get("carrier")),
            operstate=msg.get("operstate") or "UNKNOWN",
            removed=kind == "RTM_DELLINK",
        )
    if kind in ("RTM_NEWADDR", "RTM_DELADDR"):
        address = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
        if address is None:
            return None
        return AddressEvent(msg["index"], address, removed=kind == "RTM_DELADDR")
    return None


class NetWatcher:
    """Reports changes of one interface's :class:`LinkStatus` to ``on_change``.

    ``on_change`` runs on the watcher's thread, first with the status found at
    start, then after every change. ``netns`` names a network namespace
    (tests; the box itself watches its own namespace).
    """

    def __init__(
        self,
        ifname: str,
        on_change: Callable[[LinkStatus], object],
        *,
        netns: str | None = None,
    ) -> None:
        self._tracker = LinkTracker(ifname)
        self._on_change = on_change
        self._netns = netns
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def status(self) -> LinkStatus:
        return self._tracker.status

    def start(self, timeout: float = 10) -> LinkStatus:
        """Start watching; returns the status found once the first dump is read."""
        if self._thread is not None:
            return self.status
        self._thread = threading.Thread(target=self._run, name="netwatch", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("network watcher did not start")
        if self._error is not None:
            raise RuntimeError(f"network watcher failed: {self._error}") from self._error
        return self.status

    def close(self) -> None:
        """Stop watching and wait for the thread to end."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._watch())
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self._error = exc
            log.exception("network watcher stopped")
        finally:
            self._ready.set()
            loop.close()

    async def _watch(self) -> None:
        async with AsyncIPRoute(netns=self._netns) as ipr:
            # Subscribe before the dump, so nothing falls between the two.
            await ipr.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
            for msg in [m async for m in await ipr.link("dump")]:
                self._feed(msg, report=False)
            for msg in [m async for m in await ipr.addr("dump")]:
                self._feed(msg, report=False)
            self._report()
            self._ready.set()
            while True:
                async for msg in ipr.get():
                    self._feed(msg, report=True)

    def _feed(self, msg: Any, *, report: bool) -> None:
        event = _event(msg)
        if event is not None and self._tracker.apply(event) and report:
            self._report()

    def _report(self) -> None:
        try:
            self._on_change(self._tracker.status)
        except Exception:
            log.exception("network watcher callback failed")


# --------------------------------------------------------------------------
# Clients


@dataclass(frozen=True)
class Lease:
    """One line of dnsmasq's leases file."""

    expiry: int  # Unix time; 0 for an infinite lease
    mac: str
    ip: str
    hostname: str | None
    client_id: str | None


@dataclass(frozen=True)
class Neighbour:
    """One entry of the kernel's neighbour (ARP/NDP) table."""

    ip: str
    mac: str
    state: str  # "reachable", "stale", "delay", "probe", "permanent", ...


@dataclass(frozen=True)
class Client:
    """A device on the hotspot, as the admin page lists it.

    ``state`` is the kernel's neighbour state ("reachable" means it answered
    recently, "stale" that it has been quiet) or "leased" when only dnsmasq
    knows it (it may have left).
    """

    mac: str
    ip: str
    hostname: str | None
    state: str


def parse_leases(text: str) -> list[Lease]:
    """Parse dnsmasq's leases file: ``expiry mac ip hostname clientid`` lines.

    Malformed lines and the ``duid`` line of DHCPv6 are skipped; ``*`` means
    "none" for the hostname and the client id.
    """
    leases = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] == "duid":
            continue
        expiry, mac, ip, hostname = fields[:4]
        client_id = fields[4] if len(fields) > 4 else "*"
        try:
            expires = int(expiry)
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            continue
        leases.append(
            Lease(
                expiry=expires,
                mac=mac.lower(),
                ip=ip,
                hostname=None if hostname == "*" else hostname,
                client_id=None if client_id == "*" else client_id,
            )
        )
    return leases


def merge_clients(
    neighbours: Iterable[Neighbour], leases: Iterable[Lease], now: float
) -> list[Client]:
    """One :class:`Client` per MAC address, from the neighbour table and leases.

    The lease gives the name and the address; the neighbour table says
    whether the device is still around. Expired leases are left out.
    """
    live = [lease for lease in leases if lease.expiry == 0 or lease.expiry > now]
    by_mac = {lease.mac: lease for lease in live}
    clients: dict[str, Client] = {}
    # A phone has IPv4 and IPv6 neighbour entries: list it once, by IPv4.
    for neighbour in sorted(neighbours, key=lambda n: _ip_sort_key(n.ip)):
        mac = neighbour.mac.lower()
        if mac in clients:
            continue
        lease = by_mac.get(mac)
        if lease:
            clients[mac] = Client(mac, lease.ip, lease.hostname, neighbour.state)
        else:
            clients[mac] = Client(mac, neighbour.ip, None, neighbour.state)
    for lease in live:
        clients.setdefault(lease.mac, Client(lease.mac, lease.ip, lease.hostname, "leased"))
    return sorted(clients.values(), key=lambda c: _ip_sort_key(c.ip))


def _ip_sort_key(ip: str) -> tuple[int, int]:
    parsed = ipaddress.ip_address(ip)
    return parsed.version, int(parsed)


_NUD_NAMES = {bit: name for name, bit in NUD_STATES.items() if bit}


def _nud_name(state: int) -> str:
    names = [name for bit, name in sorted(_NUD_NAMES.items()) if state & bit]
    return names[0] if names else "none"


def read_neighbours(ifname: str, *, netns: str | None = None) -> list[Neighbour]:
    """The kernel's neighbour entries on ``ifname`` that have a MAC address."""
    with IPRoute(netns=netns) as ipr:
        indexes = ipr.link_lookup(ifname=ifname)
        if not indexes:
            return []
        entries = []
        for msg in ipr.get_neighbours(ifindex=indexes[0]):
            ip, mac = msg.get("NDA_DST"), msg.get("NDA_LLADDR")
            if ip is None or mac is None:
                continue
            address = ipaddress.ip_address(ip)
            if address.is_multicast or (address.version == 6 and address.is_link_local):
                continue
            entries.append(Neighbour(str(address), mac.lower(), _nud_name(msg["state"])))
        return entries


def read_leases(path: Path = DNSMASQ_LEASES) -> list[Lease]:
    """dnsmasq's current leases; none when the file is missing or unreadable."""
    try:
        return parse_leases(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return []


def read_clients(
    ifname: str,
    leases_path: Path = DNSMASQ_LEASES,
    *,
    netns: str | None = None,
    now: float | None = None,
) -> list[Client]:
    """Clients on the hotspot interface, for the admin page."""
    return merge_clients(
        read_neighbours(ifname, netns=netns),
        read_leases(leases_path),
        time.time() if now is None else now,
    )
