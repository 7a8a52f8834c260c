"""The captive portal over HTTP: probe answers, the portal pages, the RFC 8908 API.

Every name resolves to the box, so a request whose Host is not one of the
box's own names is a phone looking for the internet: it is sent to the portal
until the phone has tapped "Continue", and to the app afterwards. The OS
probes among them get their exact success answers once the client accepted.
The decisions are in `appliance.portal`; this module is the HTTP edge.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response as BaseResponse

from provisioning.render import CAPTIVE_PORTAL_API_PATH

from .box import box_of
from .portal import (
    ANSWERS,
    CaptivePortal,
    Client,
    Platform,
    Probe,
    classify,
    host_name,
    platform_of,
)
from .settings import Settings

blueprint = Blueprint("portal", __name__)

PORTAL_PATH = "/portal"
PROC_ARP = Path("/proc/net/arp")
CAPTIVE_JSON = "application/captive+json"
MOBILECONFIG = "application/x-apple-aspen-config"


# Every English word the portal shows, in one place. Values are plain text
# (the templates escape them); {name}, {short}, {https} are filled in.
TEXT: dict[str, str] = {
    "title": "Welcome to {name}",
    "lead": "This Wi-Fi is an Ahoy box: chat and call the people around you, "
            "with no internet and no mobile network needed.",
    "no_internet": "There is no internet on this Wi-Fi, only Ahoy.",
    "continue": "Continue",
    "continue_note": "Continue tells your device that this Wi-Fi works. If this window "
                     "then closes, open your browser and go to {short}",
    "expired": "That page was too old. Tap Continue again.",
    "connected_title": "You're connected to {name}",
    "next": "Next: open Ahoy in your browser",
    "android_open": "Open Ahoy in the browser",
    "android_hint": "Or open Chrome and go to {short}",
    "apple_steps": "Tap “Done” at the top of this window, then open Safari and go to {short}",
    "other_open": "Open Ahoy",
    "other_hint": "Or type {short} into your browser.",
    "wifi_title": "Stay on this Wi-Fi",
    "wifi_text": "Your phone may say “No internet” and switch to mobile data. "
                 "Keep Wi-Fi on, and turn mobile data off while you use Ahoy.",
    "open_network": "This Wi-Fi has no password: people nearby with the right equipment "
                    "can read what you send over the plain address {short}. Use the secure "
                    "address {https} for anything private; the box's owner can set a Wi-Fi "
                    "password on the admin page.",
    "calls_title": "For voice and video calls",
    "calls_text": "Browsers allow the camera and microphone only on a secure page. The "
                  "first time, your browser warns that it does not know the box's "
                  "certificate: the box makes its own, because it is offline.",
    "choices_title": "Two addresses, one Ahoy",
    "choice_http": "{short} (plain): chat works in every browser, calls do not.",
    "choice_https": "{https} (secure): chat and calls; the first time the browser warns "
                    "about the box's own certificate, unless you install it below.",
    "choice_same": "The app's “Open the secure address” button takes you across as "
                   "the same person, with your chats.",
    "cert_intro": "To skip that warning, install the box's certificate:",
    "cert_android_link": "Download the certificate",
    "cert_android_steps": "Then in Settings, search for “CA certificate” "
                          "(Security › Encryption & credentials › Install a certificate › "
                          "CA certificate) and pick the downloaded file.",
    "cert_apple_link": "Download the profile",
    "cert_apple_steps": "Then open Settings › Profile Downloaded › Install. Then "
                        "Settings › General › About › Certificate Trust Settings: turn on "
                        "full trust for the Ahoy box.",
    "cert_apple_safari": "If nothing happens here, do this in Safari at {short}/portal",
    "cert_other_link": "Download the certificate",
    "cert_other_steps": "Then add it to your browser's or system's trusted authorities.",
}


def texts(settings: Settings) -> dict[str, str]:
    """TEXT with the box's name and addresses filled in."""
    urls = PortalUrls.of(settings)
    # People know the network by the Wi-Fi name they just picked; the box name
    # (lower case, for <name>.local) only when there is none (development).
    values = {"name": settings.wifi_ssid or settings.box_name, "short": urls.short,
              "https": urls.https}
    return {key: value.format(**values) for key, value in TEXT.items()}


@dataclass(frozen=True)
class PortalUrls:
    """The box's own addresses as phones should use them."""

    http: str  # http://10.42.0.1 (port only when not 80)
    https: str
    short: str  # what a person types: 10.42.0.1
    intent: str  # Android: open the http address in the default browser

    @classmethod
    def of(cls, settings: Settings) -> PortalUrls:
        host = settings.box_address
        http_host = host if settings.http_port == 80 else f"{host}:{settings.http_port}"
        https_host = host if settings.https_port == 443 else f"{host}:{settings.https_port}"
        return cls(
            http=f"http://{http_host}",
            https=f"https://{https_host}",
            short=http_host,
            intent=f"intent://{http_host}/#Intent;scheme=http;end",
        )

    @property
    def portal(self) -> str:
        return self.http + PORTAL_PATH


def neighbour_mac(ip: str, arp_table: Path = PROC_ARP) -> str | None:
    """The MAC the kernel's neighbour table holds for an IPv4 address, if any."""
    try:
        lines = arp_table.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # IP address, HW type, Flags (0x0: incomplete), HW address, Mask, Device
        if len(fields) >= 4 and fields[0] == ip and fields[2] != "0x0":
            mac = fields[3].lower()
            return None if mac == "00:00:00:00:00:00" else mac
    return None


def lease_mac(ip: str) -> str | None:
    """The MAC of dnsmasq's lease for an address, if any."""
    from provisioning.render import DEFAULT_LEASE_FILE

    from .netwatch import read_leases

    for lease in read_leases(DEFAULT_LEASE_FILE):
        if lease.ip == ip:
            return lease.mac
    return None


def mac_of(ip: str) -> str | None:
    """The client's MAC: the neighbour table first (the client just talked to us)."""
    return neighbour_mac(ip) or lease_mac(ip)


def is_local_address(address: str) -> bool:
    """Whether an IP literal is one of this machine's own addresses (e.g. its wired LAN)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    # Binding succeeds only for an address configured on this host.
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(ip), 0))
        except OSError:
            return False
    return True


@dataclass
class PortalState:
    """The portal's parts, in `app.extensions["ahoy.portal"]`; tests swap the edges."""

    portal: CaptivePortal = field(default_factory=CaptivePortal)
    mac_of: Callable[[str], str | None] = mac_of
    is_local_address: Callable[[str], bool] = is_local_address


def portal_of(app: Flask) -> PortalState:
    state: PortalState = app.extensions["ahoy.portal"]
    return state


@blueprint.record_once
def _install(setup: BlueprintSetupState) -> None:
    setup.app.extensions.setdefault("ahoy.portal", PortalState())


def box_names(settings: Settings) -> frozenset[str]:
    """The host names that mean the box itself."""
    names = {settings.box_address, "ahoy.internal", f"{settings.box_name}.local",
             "localhost", "127.0.0.1", "::1", *settings.dns_names}
    if settings.host not in ("0.0.0.0", "::", ""):
        names.add(settings.host)
    return frozenset(name.lower() for name in names)


def _is_box_host(host: str) -> bool:
    name = host_name(host)
    if name in box_names(box_of(current_app).settings):
        return True
    return portal_of(current_app).is_local_address(name)


def _client() -> Client:
    ip = request.remote_addr or "0.0.0.0"
    return Client(ip, portal_of(current_app).mac_of(ip))


def _urls() -> PortalUrls:
    return PortalUrls.of(box_of(current_app).settings)


R = TypeVar("R", bound=BaseResponse)


def _no_store(response: R) -> R:
    response.headers["Cache-Control"] = "no-store"
    return response


def _redirect(location: str) -> BaseResponse:
    return _no_store(redirect(location, 302))


def _probe_answer(probe: Probe) -> Response:
    answer = ANSWERS[probe]
    response = Response(answer.body, status=answer.status)
    if answer.content_type is None:
        del response.headers["Content-Type"]
    else:
        response.headers["Content-Type"] = answer.content_type
    return _no_store(response)


@blueprint.before_app_request
def captive() -> BaseResponse | None:
    """Answer probes and requests for foreign sites; let the box's own pages through."""
    probe = classify(request.host, request.path)
    if probe is None and _is_box_host(request.host):
        return None
    accepted = portal_of(current_app).portal.is_accepted(_client())
    if probe is not None:
        return _probe_answer(probe) if accepted else _redirect(_urls().portal)
    # Someone typed a web address: the app once they are in, the portal before.
    return _redirect(_urls().http + "/" if accepted else _urls().portal)


def _page(template: str, status: int = 200, **context: Any) -> Response:
    settings = box_of(current_app).settings
    html = render_template(
        template, t=texts(settings), urls=_urls(),
        platform=platform_of(request.headers.get("User-Agent", "")), Platform=Platform,
        # A hotspot without a password (development has no hotspot: nothing to say).
        open_network=bool(settings.wifi_ssid) and not settings.wifi_passphrase,
        **context,
    )
    response = Response(html, status=status, mimetype="text/html")
    # Same-origin, so the Continue form's POST carries a real Origin to check.
    response.headers["Referrer-Policy"] = "same-origin"
    return _no_store(response)


def _welcome(status: int = 200, expired: bool = False) -> Response:
    nonce = portal_of(current_app).portal.nonce(_client())
    return _page("portal/welcome.html", status, nonce=nonce, expired=expired)


@blueprint.get(PORTAL_PATH)
def portal_page() -> Response:
    if portal_of(current_app).portal.is_accepted(_client()):
        return _page("portal/connected.html")
    return _welcome()


def _origin_is_the_box() -> bool:
    """A missing Origin is allowed (older mini-browsers); the nonce still protects."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and _is_box_host(parts.netloc)


@blueprint.post(PORTAL_PATH + "/continue")
def portal_continue() -> BaseResponse:
    state = portal_of(current_app)
    client = _client()
    if not _origin_is_the_box():
        abort(403, "This form can only be sent from the Ahoy portal page.")
    if not state.portal.check_nonce(client, request.form.get("nonce", "")):
        return _welcome(403, expired=True)
    state.portal.accept(client)
    # A full-page navigation: iOS then turns the portal window's "Cancel" into "Done".
    return _no_store(redirect(PORTAL_PATH + "/connected", 303))


@blueprint.get(PORTAL_PATH + "/connected")
def portal_connected() -> BaseResponse:
    if not portal_of(current_app).portal.is_accepted(_client()):
        return _redirect(PORTAL_PATH)
    return _page("portal/connected.html")


@blueprint.get(CAPTIVE_PORTAL_API_PATH)
def captive_api() -> Response:
    """RFC 8908: whether this client is still held by the portal, and where it is."""
    seconds = portal_of(current_app).portal.seconds_left(_client())
    urls = _urls()
    body: dict[str, Any] = {"captive": seconds <= 0, "user-portal-url": urls.https + PORTAL_PATH}
    if seconds > 0:
        body["seconds-remaining"] = int(seconds)
    response = jsonify(body)
    response.mimetype = CAPTIVE_JSON
    return _no_store(response)


@blueprint.get("/ahoy.mobileconfig")
def ios_profile() -> Response:
    """The box CA as an iOS configuration profile."""
    from provisioning.tls import ios_profile as make_profile

    settings = box_of(current_app).settings
    path = settings.tls_dir / "ahoy-ca.crt"
    if not path.exists():
        abort(404, "This box has no certificate authority yet.")
    response = Response(make_profile(path.read_bytes(), settings.box_name), mimetype=MOBILECONFIG)
    response.headers["Content-Disposition"] = "attachment; filename=ahoy.mobileconfig"
    return response
