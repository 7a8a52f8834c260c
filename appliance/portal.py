"""The captive portal's decisions: which requests are OS probes, and who has accepted.

Phones and laptops test a network by fetching a known URL and comparing the
answer with what the internet would send. Before a client taps "Continue" the
box answers those probes (and any page of a foreign site) with a redirect to
the portal, so the OS opens its portal window; afterwards it answers each
probe exactly like the real server, so the OS calls the network connected.

The state lives on the server, per client: the iOS portal window keeps no
cookies. Plain Python with no sockets or files; `appliance.portalweb` is the
HTTP edge.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

DEFAULT_TTL_S = 24 * 3600
DEFAULT_MAX_CLIENTS = 4096
# A portal form stays valid for at least this long, at most twice as long.
NONCE_WINDOW_S = 3600


class Probe(Enum):
    """A connectivity check, named after the software that sends it."""

    ANDROID = "android"
    APPLE = "apple"
    WINDOWS_CONNECTTEST = "windows-connecttest"
    WINDOWS_NCSI = "windows-ncsi"
    FIREFOX_CANONICAL = "firefox-canonical"
    FIREFOX_SUCCESS = "firefox-success"
    NETWORKMANAGER = "networkmanager"
    NETWORKMANAGER_OK = "networkmanager-ok"
    NETWORKMANAGER_204 = "networkmanager-204"
    KINDLE = "kindle"


@dataclass(frozen=True)
class Answer:
    """What the internet would send for a probe: the exact status, type and body."""

    status: int
    body: bytes
    content_type: str | None


APPLE_SUCCESS = b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
FIREFOX_CANONICAL = (
    b'<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>'
)

# Amazon's reachability page: Kindles look for the marker in it.
KINDLE_MARKER = b"81ce4465-7167-4dcb-835b-dcc9e44c112a"
KINDLE_PAGE = (
    b'<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">\n'
    b"<html>\n<head>\n<title>Kindle Reachability Probe Page</title>\n"
    b'<META http-equiv="Content-Type" content="text/html; charset=iso-8859-1">\n'
    b"<!--" + KINDLE_MARKER + b" created with python 2.5 uuid.uuid4()-->\n</head>\n"
    b'<body bgcolor="#ffffff" text="#000000">\n' + KINDLE_MARKER + b"\n</body>\n</html>\n"
)

ANSWERS: dict[Probe, Answer] = {
    Probe.ANDROID: Answer(204, b"", None),
    Probe.APPLE: Answer(200, APPLE_SUCCESS, "text/html"),
    Probe.WINDOWS_CONNECTTEST: Answer(200, b"Microsoft Connect Test", "text/plain"),
    Probe.WINDOWS_NCSI: Answer(200, b"Microsoft NCSI", "text/plain"),
    # Firefox compares the whole body, byte for byte.
    Probe.FIREFOX_CANONICAL: Answer(200, FIREFOX_CANONICAL, "text/html"),
    Probe.FIREFOX_SUCCESS: Answer(200, b"success\n", "text/plain"),
    # NetworkManager checks that the body starts with its expected response.
    Probe.NETWORKMANAGER: Answer(200, b"NetworkManager is online\n", "text/plain"),
    Probe.NETWORKMANAGER_OK: Answer(200, b"OK\n", "text/plain"),
    # With no expected response configured (Ubuntu), NetworkManager wants a 204.
    Probe.NETWORKMANAGER_204: Answer(204, b"", None),
    Probe.KINDLE: Answer(200, KINDLE_PAGE, "text/html"),
}

ANY_HOST = None
APPLE_HOSTS = frozenset({
    "captive.apple.com", "www.apple.com", "www.appleiphonecell.com", "www.itools.info",
    "www.ibook.info", "www.airport.us", "www.thinkdifferent.us",
})
WINDOWS_HOSTS = frozenset({
    "www.msftconnecttest.com", "ipv6.msftconnecttest.com", "www.msftncsi.com",
    "ipv6.msftncsi.com",
})
FIREFOX_HOSTS = frozenset({"detectportal.firefox.com"})

# (path, hosts or ANY_HOST, probe). A path alone is enough where no real site
# could mean anything else by it; shared names like /success.txt need the host.
PROBE_URLS: tuple[tuple[str, frozenset[str] | None, Probe], ...] = (
    ("/generate_204", ANY_HOST, Probe.ANDROID),
    ("/gen_204", ANY_HOST, Probe.ANDROID),
    ("/hotspot-detect.html", ANY_HOST, Probe.APPLE),
    ("/library/test/success.html", APPLE_HOSTS, Probe.APPLE),
    ("/connecttest.txt", WINDOWS_HOSTS, Probe.WINDOWS_CONNECTTEST),
    ("/ncsi.txt", WINDOWS_HOSTS, Probe.WINDOWS_NCSI),
    ("/canonical.html", FIREFOX_HOSTS, Probe.FIREFOX_CANONICAL),
    ("/success.txt", FIREFOX_HOSTS, Probe.FIREFOX_SUCCESS),
    ("/check_network_status.txt", ANY_HOST, Probe.NETWORKMANAGER),
    ("/nm-check.txt", frozenset({"ping.archlinux.org"}), Probe.NETWORKMANAGER),
    ("/static/hotspot.txt", frozenset({"fedoraproject.org"}), Probe.NETWORKMANAGER_OK),
    ("/", frozenset({"networkcheck.kde.org"}), Probe.NETWORKMANAGER_OK),
    ("/", frozenset({"connectivity-check.ubuntu.com"}), Probe.NETWORKMANAGER_204),
    ("/kindle-wifi/wifistub.html", frozenset({"spectrum.s3.amazonaws.com"}), Probe.KINDLE),
)


def host_name(host: str) -> str:
    """The name part of an HTTP Host header: lower case, no port, no final dot."""
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def classify(host: str, path: str) -> Probe | None:
    """The probe a request for `host` and `path` is, or None for an ordinary request."""
    name = host_name(host)
    for probe_path, hosts, probe in PROBE_URLS:
        if path == probe_path and (hosts is ANY_HOST or name in hosts):
            return probe
    return None


class Platform(Enum):
    """What the portal page needs to know about a device: how to reach its browser."""

    ANDROID = "android"
    APPLE = "apple"
    OTHER = "other"


def platform_of(user_agent: str) -> Platform:
    """Guess the device family from a User-Agent, for the instructions on the page."""
    ua = user_agent.lower()
    if "android" in ua:
        return Platform.ANDROID
    if any(word in ua for word in ("iphone", "ipad", "ipod", "captivenetworksupport",
                                   "macintosh", "mac os x")):
        return Platform.APPLE
    return Platform.OTHER


@dataclass(frozen=True)
class Client:
    """A device as the box sees it: its address, and its MAC when the box knows it."""

    ip: str
    mac: str | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        """State keys, most stable first: a MAC outlives a lease renewal."""
        by_ip = f"ip:{self.ip}"
        return (f"mac:{self.mac.lower()}", by_ip) if self.mac else (by_ip,)


class CaptivePortal:
    """Which clients have tapped "Continue", each until an expiry. Thread-safe.

    At most `max_clients` acceptances are kept; when full the least recently
    seen one is forgotten (that device just sees the portal again).
    """

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
        secret: bytes | None = None,
    ) -> None:
        if ttl_s <= 0 or max_clients < 1:
            raise ValueError("ttl_s must be positive and max_clients at least 1")
        self.ttl_s = ttl_s
        self.max_clients = max_clients
        self._clock = clock
        self._secret = secret or secrets.token_bytes(32)
        self._lock = threading.Lock()
        # key -> expiry, least recently seen first.
        self._accepted: OrderedDict[str, float] = OrderedDict()

    def accept(self, client: Client) -> None:
        """The client tapped "Continue": answer its probes with success until expiry."""
        expiry = self._clock() + self.ttl_s
        with self._lock:
            for key in client.keys:
                self._accepted[key] = expiry
                self._accepted.move_to_end(key)
            while len(self._accepted) > self.max_clients:
                self._accepted.popitem(last=False)

    def forget(self, client: Client) -> None:
        """Send the client through the portal again."""
        with self._lock:
            for key in client.keys:
                self._accepted.pop(key, None)

    def seconds_left(self, client: Client) -> float:
        """How long the client's acceptance lasts; 0 when it has not accepted."""
        now = self._clock()
        with self._lock:
            for key in client.keys:
                expiry = self._accepted.get(key)
                if expiry is None:
                    continue
                if expiry <= now:
                    del self._accepted[key]
                    continue
                self._accepted.move_to_end(key)
                return expiry - now
        return 0.0

    def is_accepted(self, client: Client) -> bool:
        return self.seconds_left(client) > 0

    def __len__(self) -> int:
        """Acceptances held, counting a client known by MAC and IP twice."""
        with self._lock:
            return len(self._accepted)

    def nonce(self, client: Client) -> str:
        """A token for the client's portal form, so no other page can accept for it.

        Tied to the IP (the MAC may become known between showing the form and
        submitting it) and to the time window, so an old one stops working.
        """
        return self._nonce(client.ip, int(self._clock() // NONCE_WINDOW_S))

    def check_nonce(self, client: Client, nonce: str) -> bool:
        if not nonce.isascii():
            return False
        window = int(self._clock() // NONCE_WINDOW_S)
        return any(hmac.compare_digest(nonce, self._nonce(client.ip, w))
                   for w in (window, window - 1))

    def _nonce(self, ip: str, window: int) -> str:
        message = f"{ip}|{window}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]
