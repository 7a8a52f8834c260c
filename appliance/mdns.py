"""mDNS announcement: ``<hostname>.local`` and the web app's services.

Laptops and admins on the hotspot or a wired network find the box without
knowing its address. python-zeroconf does the protocol (probing, answering,
goodbye packets); this module only decides what to announce and where.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from zeroconf import ServiceInfo, Zeroconf

log = logging.getLogger(__name__)

HTTP_TYPE = "_http._tcp.local."
HTTPS_TYPE = "_https._tcp.local."


@dataclass(frozen=True)
class Announcement:
    """What the box announces: its name, ports and web paths."""

    hostname: str
    http_port: int | None = 80
    https_port: int | None = 443
    path: str = "/"
    admin_path: str = "/admin"
    instance: str = ""  # the name browsers show; defaults to "Ahoy <hostname>"
    extra_txt: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _valid_label(self.hostname):
            raise ValueError(
                f"hostname {self.hostname!r} must be 1 to 63 letters, digits or hyphens"
            )

    @property
    def server(self) -> str:
        """The host's mDNS name, with the trailing dot DNS needs."""
        return f"{self.hostname}.local."

    @property
    def instance_name(self) -> str:
        return self.instance or f"Ahoy {self.hostname}"


def service_infos(announcement: Announcement, addresses: Iterable[str]) -> list[ServiceInfo]:
    """The zeroconf records for ``announcement`` reachable at ``addresses``."""
    ips = [str(ipaddress.ip_address(a)) for a in addresses]
    txt = {"path": announcement.path, "admin": announcement.admin_path}
    txt.update(announcement.extra_txt)
    infos = []
    for type_, port in ((HTTP_TYPE, announcement.http_port), (HTTPS_TYPE, announcement.https_port)):
        if port is None:
            continue
        infos.append(
            ServiceInfo(
                type_,
                f"{announcement.instance_name}.{type_}",
                port=port,
                properties=txt,
                server=announcement.server,
                parsed_addresses=ips,
            )
        )
    return infos


class Announcer:
    """Announces the box at the given addresses, on the interfaces that have them (or
    on those of `interfaces`, IPv4 addresses too, when given).

    Every address is announced on every interface: python-zeroconf
    sends one record set to all its sockets, and phones and laptops simply
    try the addresses they get.
    """

    def __init__(
        self,
        announcement: Announcement,
        addresses: Iterable[str],
        *,
        interfaces: Iterable[str] | None = None,
        zeroconf_factory: type[Zeroconf] = Zeroconf,
    ) -> None:
        self._announcement = announcement
        self._addresses = _unique(addresses)
        # The IPv4 addresses of the interfaces to answer on (None: those announced).
        self._interfaces = None if interfaces is None else _unique(interfaces)
        self._factory = zeroconf_factory
        self._zeroconf: Zeroconf | None = None
        self._infos: list[ServiceInfo] = []
        self._lock = threading.Lock()

    @property
    def addresses(self) -> list[str]:
        return list(self._addresses)

    def start(self) -> None:
        """Open the mDNS sockets and announce; does nothing without addresses."""
        with self._lock:
            if self._zeroconf is None:
                self._register()

    def update_addresses(self, addresses: Iterable[str],
                         interfaces: Iterable[str] | None = None) -> None:
        """Announce on a new set of addresses (an interface came or went)."""
        new = _unique(addresses)
        where = None if interfaces is None else _unique(interfaces)
        with self._lock:
            if new == self._addresses and where == self._interfaces:
                return
            was_running = self._zeroconf is not None
            self._unregister()
            self._addresses, self._interfaces = new, where
            if was_running:
                self._register()

    def close(self) -> None:
        """Say goodbye (records with TTL 0) and close the sockets."""
        with self._lock:
            self._unregister()

    def _register(self) -> None:
        if not self._addresses:
            log.info("mDNS: no addresses to announce on yet")
            return
        # Zeroconf binds to the interfaces at construction, so a change of
        # addresses means a new instance.
        # Zeroconf takes IPv4 interface addresses as plain strings; IPv6
        # addresses still go into the records.
        ipv4 = [a for a in self._addresses if ipaddress.ip_address(a).version == 4]
        zc = self._factory(interfaces=self._interfaces or ipv4 or list(self._addresses))
        infos = service_infos(self._announcement, self._addresses)
        try:
            for info in infos:
                zc.register_service(info, allow_name_change=True)
        except Exception:
            zc.close()
            raise
        self._zeroconf, self._infos = zc, infos
        log.info(
            "mDNS: announcing %s on %s",
            self._announcement.server,
            ", ".join(self._addresses),
        )

    def _unregister(self) -> None:
        zc, self._zeroconf = self._zeroconf, None
        infos, self._infos = self._infos, []
        if zc is None:
            return
        try:
            for info in infos:
                zc.unregister_service(info)
        finally:
            zc.close()


def _unique(addresses: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for address in addresses:
        ip = str(ipaddress.ip_address(address))
        if ip not in seen:
            seen.append(ip)
    return seen


def _valid_label(label: str) -> bool:
    return (
        0 < len(label) <= 63
        and not label.startswith("-")
        and not label.endswith("-")
        and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
    )
