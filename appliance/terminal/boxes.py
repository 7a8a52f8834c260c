"""Where a box answers: its address from what the person typed, or found with mDNS."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# The DNS-SD service type every box announces (appliance/mdns.py), with its
# web app's path in the TXT record; the standard one for web servers.
HTTP_TYPE = "_http._tcp.local."


@dataclass(frozen=True)
class BoxAddress:
    """Where a box answers: ``ws(s)://host:port<path>ws``."""

    host: str
    port: int
    secure: bool = False
    path: str = "/"
    name: str = ""  # the box's mDNS host name, when it was found that way

    @property
    def ws_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        base = self.path if self.path.endswith("/") else self.path + "/"
        return f"{'wss' if self.secure else 'ws'}://{host}:{self.port}{base}ws"

    @property
    def label(self) -> str:
        """How the box is shown to the person: its name, or its address."""
        default = 443 if self.secure else 80
        host = self.name.rstrip(".") or self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def key(self) -> str:
        """A file-name-safe key for this box's saved identity."""
        return re.sub(r"[^A-Za-z0-9._-]", "-", self.label.replace(":", "-"))


def parse_box(text: str, port: int | None = None) -> BoxAddress:
    """``http://10.42.0.1``, ``ahoy.internal``, ``https://ahoy.local:8443`` → a BoxAddress."""
    raw = text.strip()
    if "://" not in raw:
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        url_port = parts.port
    except ValueError as e:
        raise ValueError(f"box address {text!r} is not valid: {e}") from e
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise ValueError(
            f"box address {text!r} is not valid; give it like http://10.42.0.1 or ahoy.internal"
        )
    secure = parts.scheme in ("https", "wss")
    path = parts.path or "/"
    if path.endswith("/ws"):
        path = path[:-2]
    chosen = port or url_port or (443 if secure else 80)
    if not 0 < chosen < 65536:
        raise ValueError(f"port {chosen} is not between 1 and 65535")
    return BoxAddress(parts.hostname, chosen, secure, path)


def discover_boxes(timeout: float = 3.0, interfaces: Any = None,
                   first_only: bool = True) -> list[BoxAddress]:
    """Boxes announcing ``_http._tcp`` with a ``path`` in their TXT record.

    Blocks for up to ``timeout`` seconds (less once one is found when
    ``first_only``); run it in a thread from async code.
    """
    from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, ServiceListener, Zeroconf

    found: list[BoxAddress] = []
    done = threading.Event()

    class Listener(ServiceListener):
        def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            info = zc.get_service_info(type_, name, timeout=1500)
            if info is None or b"path" not in (info.properties or {}):
                return
            addresses = info.parsed_addresses(IPVersion.V4Only) or info.parsed_addresses()
            if not addresses or info.port is None:
                return
            path = (info.properties.get(b"path") or b"/").decode("utf-8", "replace")
            box = BoxAddress(addresses[0], info.port, False, path or "/", info.server or "")
            if box not in found:
                found.append(box)
            if first_only:
                done.set()

        def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            pass

        def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            pass

    zc = Zeroconf(interfaces=interfaces if interfaces is not None else InterfaceChoice.All)
    try:
        browser = ServiceBrowser(zc, HTTP_TYPE, Listener())
        done.wait(timeout)
        browser.cancel()
    finally:
        zc.close()
    return found
