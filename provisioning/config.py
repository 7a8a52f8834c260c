"""The box config file `ahoy.txt`: its schema, parser and validator.

The file lives on the SD card's FAT boot partition, so people edit it with
Notepad, TextEdit or a phone. Parsing is forgiving about what editors do
(CRLF or CR line ends, a byte-order mark, UTF-16 from Notepad's "Unicode",
curly quotes, upper-case keys) and strict about what matters (every value is
checked, unknown keys are reported with a "did you mean" hint). Every problem
is reported at once, each naming its line and key.

`KEYS` is the one table of the file's keys: parser, default, admin page label,
what a change restarts, whether it is secret. `BoxConfig`, the admin page,
the privileged apply step and the status lights take their facts from it, and
a test checks docs/config.md against it.

This module is pure: bytes or text in, `BoxConfig` or `ConfigError` out.
Reading the boot partition and falling back to the last good config happen in
`provisioning.configstore`.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address
from typing import Any

from provisioning import regulatory, sitenet

MAX_FILE_BYTES = 64 * 1024
FILE_NAME = "ahoy.txt"

DEFAULT_NETWORK = IPv4Network("10.42.0.0/24")
# The mesh's channel: the same on every box of a site (one of the 2.4 GHz channels
# that do not overlap, and legal everywhere).
DEFAULT_MESH_CHANNEL = 11
# batman-adv's interface over the mesh radio: the backbone when there is a mesh.
MESH_BACKBONE = "bat0"
# With a site, `network` is shared by every box's hotspot: room for 256 of /24.
SITE_NETWORK = IPv4Network("10.42.0.0/16")
# The largest site space a slot of 16 boxes still fits in (see provisioning.sitenet).
SITE_MAX_PREFIX = 24
PRIVATE_RANGES = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
)
MIN_PREFIX, MAX_PREFIX = 16, 28
# BCM GPIO numbers on the 40-pin header. 0 and 1 are reserved for the HAT ID EEPROM.
GPIO_PINS = range(2, 28)
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
# Where a box's nats-server takes the other boxes of its site (site_peers without a port).
SITE_PORT = 4222
MAX_SITE_PEERS = 32
SITE_SECRET_LENGTH = (16, 128)
# Names people reach for, and the key they mean. Only used for hints.
KEY_HINTS = {
    "ssid": "wifi_name",
    "network_name": "wifi_name",
    "wifi": "wifi_name",
    "password": "wifi_passphrase or admin_password",
    "passphrase": "wifi_passphrase",
    "psk": "wifi_passphrase",
    "wifi_password": "wifi_passphrase",
    "hostname": "box_name",
    "name": "box_name or wifi_name",
    "country_code": "country",
    "iface": "interface",
    "subnet": "network",
    "lan": "hotspot",
    "lan_mode": "hotspot",
    "lan_and_hotspot": "uplink",
    "gateway": "uplink_gateway",
    "address": "network",
    "ip": "network",
    "site": "site_name",
    "site_password": "site_secret",
    "peers": "site_peers",
}
# Straight quotes, and the curly ones word processors and phones put in.
QUOTE_PAIRS = {
    '"': '"',
    "'": "'",
    "\u201c": "\u201d",  # “...”
    "\u201d": "\u201d",  # ”...” (Swedish, Finnish)
    "\u201e": "\u201c",  # „...“ (German)
    "\u2018": "\u2019",  # ‘...’
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: its line (None: the whole file, or a form),
    the key it is about (None: no known key) and what a person reads."""

    line: int | None
    key: str | None
    text: str

    def __str__(self) -> str:
        return self.text if self.line is None else f"line {self.line}: {self.text}"


class ConfigError(Exception):
    """The config is not usable; `problems` says why, `messages` the same in words."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.messages))

    @classmethod
    def about_file(cls, text: str, line: int | None = None) -> ConfigError:
        """A problem with the file as a whole rather than with one key."""
        return cls([Problem(line, None, text)])

    @property
    def messages(self) -> list[str]:
        """One line per problem, as a person reads it ("line 3: channel ...")."""
        return [str(problem) for problem in self.problems]


class _Invalid(Exception):
    """One value is wrong; the message starts with the key's name."""


def default_dhcp_range(network: IPv4Network) -> tuple[IPv4Address, IPv4Address]:
    """Leave the first addresses for the box and fixed devices; lease the rest."""
    start = network[10] if network.num_addresses >= 64 else network[2]
    return start, network[-2]


def wifi_name_for_mac(mac: str | None) -> str:
    """A Wi-Fi name unique per box, e.g. "Ahoy-3F2A" from the last two bytes of the MAC."""
    digits = re.sub(r"[^0-9A-Fa-f]", "", mac or "")
    if len(digits) < 4:
        return "Ahoy"
    return f"Ahoy-{digits[-4:].upper()}"


# --- value parsers: raw text in, typed value out, or _Invalid with a human message.


def _box_name(raw: str) -> str:
    name = raw.strip().lower()
    if not name:
        raise _Invalid("box_name must not be empty (it is used as <box_name>.local)")
    if len(name) > 63:
        raise _Invalid(f"box_name must be at most 63 characters (it has {len(name)})")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name):
        raise _Invalid(
            "box_name may use only letters a-z, digits and hyphens, and must not start or "
            f"end with a hyphen (for example: ahoy-boat), not {raw!r}"
        )
    return name


def _wifi_name(raw: str) -> str:
    size = len(raw.encode("utf-8"))
    if size > 32:
        raise _Invalid(
            f"wifi_name must be 1 to 32 bytes; {raw!r} is {size} bytes "
            "(letters like é or emoji count as 2 to 4 bytes)"
        )
    if any(_unsafe_in_wifi_name(ch) for ch in raw):
        raise _Invalid("wifi_name must not contain control characters or tabs")
    return raw


# Text-direction overrides could make a network name read as another one.
_BIDI_CONTROLS = {*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}


def _unsafe_in_wifi_name(ch: str) -> bool:
    """Control characters, line breaks and unassigned code points are refused;
    format characters that join emoji (zero-width joiner, tags for flags) are
    legal UTF-8 in an SSID and allowed."""
    if ch == " ":
        return False
    if ch == "\u00a0" or (ch not in _BIDI_CONTROLS and unicodedata.category(ch) == "Cf"):
        return False
    return ch in _BIDI_CONTROLS or unicodedata.category(ch) in (
        "Cc", "Zl", "Zp", "Zs", "Cs", "Co", "Cn")


def _wpa_passphrase(key: str) -> Callable[[str], str]:
    """A WPA2 passphrase (8 to 63 printable ASCII characters), or empty: an open network."""

    def parse(raw: str) -> str:
        if raw == "":
            return ""
        if not 8 <= len(raw) <= 63:
            raise _Invalid(
                f"{key} must be 8 to 63 characters (it has {len(raw)}); "
                "leave it empty for an open network"
            )
        bad = sorted({ch for ch in raw if not (" " <= ch <= "~")})
        if bad:
            shown = ", ".join(repr(ch) for ch in bad[:3])
            raise _Invalid(
                f"{key} may use only plain ASCII letters, digits, spaces and "
                f"punctuation; it contains {shown}"
            )
        return raw

    return parse


_passphrase = _wpa_passphrase("wifi_passphrase")


def _uplink_wifi_name(raw: str) -> str:
    """The name of the existing Wi-Fi network the box joins in LAN mode ('' for a cable)."""
    size = len(raw.encode("utf-8"))
    if size > 32:
        raise _Invalid(
            f"uplink_wifi_name must be 1 to 32 bytes; {raw!r} is {size} bytes "
            "(letters like é or emoji count as 2 to 4 bytes)"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise _Invalid("uplink_wifi_name must not contain control characters or tabs")
    return raw


def _derived_uplink(values: Mapping[str, Any], mac: str | None) -> bool:
    """LAN mode (`hotspot = off`) always joins the network; a hotspot does only when asked."""
    return values.get("hotspot") is False


def _derived_uplink_interface(values: Mapping[str, Any], mac: str | None) -> str:
    """A cable (eth0) unless the box joins a Wi-Fi network: then the Pi's own radio."""
    return "wlan0" if values.get("uplink_wifi_name") else "eth0"


def _country(raw: str) -> str:
    code = raw.strip().upper()
    if code == "":
        return ""
    if code in regulatory.COUNTRY_ALIASES:
        hint = regulatory.COUNTRY_ALIASES[code]
        raise _Invalid(f"country {raw!r} is not an ISO 3166 code; did you mean {hint}?")
    if not regulatory.is_country(code):
        raise _Invalid(
            f"country must be a two-letter ISO 3166 code such as DE, US or KE, not {raw!r}"
        )
    return code


OPEN_NETWORK_ENCRYPTION = ("auto", "owe", "off")


def _open_network_encryption(raw: str) -> str:
    text = raw.strip().lower()
    words = {"auto": "auto", "owe": "owe", "enhanced open": "owe", "on": "owe", "yes": "owe",
             "off": "off", "no": "off", "none": "off"}
    if text not in words:
        raise _Invalid(f"open_network_encryption must be auto, owe or off, not {raw!r}")
    return words[text]


def _band(raw: str) -> str:
    text = re.sub(r"\s+", "", raw.lower()).removesuffix("ghz").replace(",", ".")
    if text in ("2.4", "2", "2.45"):
        return "2.4"
    if text == "5":
        return "5"
    raise _Invalid(f"band must be 2.4 or 5 (GHz), not {raw!r}")


def _integer(key: str, low: int, high: int, example: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        text = raw.strip().replace("_", "")
        if not re.fullmatch(r"[0-9]+", text):
            raise _Invalid(
                f"{key} must be a whole number such as {example}, not {raw!r}"
                + (" (comments go on their own line, starting with #)" if "#" in raw else "")
            )
        value = int(text)
        if not low <= value <= high:
            raise _Invalid(f"{key} must be between {low} and {high}, not {value}")
        return value

    return parse


def _interface(raw: str) -> str:
    name = raw.strip()
    if not 1 <= len(name) <= 15 or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise _Invalid(
            "interface must be a network interface name of 1 to 15 letters and digits "
            f"such as wlan0 or wlan1, not {raw!r}"
        )
    if name == "lo":
        raise _Invalid(
            "interface lo is the loopback interface, not Wi-Fi; the hotspot needs a Wi-Fi "
            "adapter: wlan0 is the Pi's own, wlan1 a USB one"
        )
    return name


def _ipv4_network(key: str, example: str) -> Callable[[str], IPv4Network]:
    def parse(raw: str) -> IPv4Network:
        text = raw.strip()
        try:
            network = IPv4Network(text, strict=False)
        except ValueError:
            raise _Invalid(
                f"{key} must be an IPv4 network such as {example}, not {raw!r}"
            ) from None
        if "/" not in text:
            raise _Invalid(f"{key} needs a size after a slash, for example {text}/24")
        if not MIN_PREFIX <= network.prefixlen <= MAX_PREFIX:
            raise _Invalid(
                f"{key} size must be between /{MIN_PREFIX} and /{MAX_PREFIX}, "
                f"not /{network.prefixlen}"
            )
        if not any(network.subnet_of(r) for r in PRIVATE_RANGES):
            raise _Invalid(
                f"{key} must be a private range inside 10.0.0.0/8, 172.16.0.0/12 or "
                f"192.168.0.0/16; {network} is not"
            )
        return network

    return parse


_network = _ipv4_network("network", "10.42.0.0/24")


def _wired_interface(key: str, example: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        name = raw.strip()
        if not 1 <= len(name) <= 15 or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise _Invalid(
                f"{key} must be a network interface name of 1 to 15 letters and digits "
                f"such as {example}, not {raw!r}"
            )
        if name == "lo":
            raise _Invalid(f"{key} lo is the loopback interface; it links to nothing")
        return name

    return parse


def _on_off(key: str) -> Callable[[str], bool]:
    def parse(raw: str) -> bool:
        text = raw.strip().lower()
        if text in ("on", "yes", "true", "1"):
            return True
        if text in ("off", "no", "false", "0"):
            return False
        raise _Invalid(f"{key} must be on or off, not {raw!r}")

    return parse


def _uplink_address(raw: str) -> str | IPv4Interface:
    text = raw.strip()
    if text.lower() == "dhcp":
        return "dhcp"
    try:
        address = IPv4Interface(text)
    except ValueError:
        address = None
    if address is None or "/" not in text:
        raise _Invalid(
            "uplink_address must be dhcp, or the box's address with its network size such "
            f"as 192.168.1.20/24, not {raw!r}"
        )
    if address.ip in (address.network.network_address, address.network.broadcast_address):
        raise _Invalid(f"uplink_address {address} is the network's own or broadcast address")
    return address


def _uplink_gateway(raw: str) -> IPv4Address | None:
    text = raw.strip()
    if text.lower() in ("", "none"):
        return None
    try:
        return IPv4Address(text)
    except ValueError:
        raise _Invalid(f"uplink_gateway must be an address such as 192.168.1.1, not {raw!r}") \
            from None


def _mesh_interface(raw: str) -> str:
    name = raw.strip()
    if name.lower() in ("", "none", "off"):
        return ""
    return _wired_interface("mesh_interface", "wlan1")(name)


def _in_site(values: Mapping[str, Any]) -> bool:
    """Whether the box is one of a site's (`site_name` set)."""
    return bool(values.get("site_name"))


def _derived_wifi_name(values: Mapping[str, Any], mac: str | None) -> str:
    """Alone: unique per box. In a site: the same on every box, so phones roam."""
    if _in_site(values):
        return f"Ahoy-{values['site_name']}"[:32]
    return wifi_name_for_mac(mac)


def _derived_channel(values: Mapping[str, Any], mac: str | None) -> int:
    """Alone: the band's usual channel. In a site: one of the channels that do not overlap,
    picked by the hotspot adapter's MAC, so boxes within reach of each other mostly differ."""
    band = values["band"]
    if not _in_site(values):
        return regulatory.DEFAULT_CHANNEL[band]
    allowed = regulatory.allowed_channels(values.get("country", ""), band)
    spread = [c for c in (1, 6, 11) if c in allowed] if band == "2.4" else list(allowed)
    if not spread:
        return regulatory.DEFAULT_CHANNEL[band]
    return spread[sitenet.mac_seed(mac) % len(spread)]


def _derived_network(values: Mapping[str, Any], mac: str | None) -> IPv4Network:
    return SITE_NETWORK if _in_site(values) else DEFAULT_NETWORK


def _derived_hotspot_subnet(values: Mapping[str, Any], mac: str | None) -> IPv4Network:
    network: IPv4Network = values["network"]
    if not _in_site(values) or network.prefixlen > SITE_MAX_PREFIX:
        return network
    return sitenet.default_hotspot_subnet(network, mac)


def _dhcp_range(raw: str) -> tuple[IPv4Address, IPv4Address]:
    parts = re.split(r"\s*(?:-|,|\bto\b)\s*", raw.strip())
    try:
        if len(parts) != 2:
            raise ValueError
        start, end = IPv4Address(parts[0]), IPv4Address(parts[1])
    except ValueError:
        raise _Invalid(
            f"dhcp_range must be two addresses such as 10.42.0.10 - 10.42.0.250, not {raw!r}"
        ) from None
    if start > end:
        raise _Invalid(f"dhcp_range must start before it ends ({start} is after {end})")
    return start, end


def _pins(raw: str) -> tuple[int, ...]:
    text = raw.strip()
    if text.lower() in ("", "none", "off"):
        return ()
    items = [p for p in re.split(r"[\s,]+", text) if p]
    pins = tuple(_pin_number("status_led_pins", p) for p in items)
    if len(pins) > 2:
        raise _Invalid("status_led_pins takes at most two pins: green, then red")
    return pins


def _pin_number(key: str, raw: str) -> int:
    text = raw.strip().upper().removeprefix("GPIO").removeprefix("BCM")
    if not text.isdigit() or int(text) not in GPIO_PINS:
        raise _Invalid(
            f"{key}: {raw.strip()!r} is not a GPIO number; use BCM numbers "
            f"{GPIO_PINS.start} to {GPIO_PINS.stop - 1} (GPIO17 is header pin 11)"
        )
    return int(text)


def _button_pin(raw: str) -> int | None:
    text = raw.strip()
    if text.lower() in ("", "none", "off"):
        return None
    return _pin_number("button_pin", text)


MAX_ROOM_NAME = 48  # as appliance.protocol.MAX_ROOM_NAME (the service checks they agree)


def _default_room(raw: str) -> str | None:
    """The room everyone joins at first visit; none (or empty) for no such room."""
    name = " ".join(raw.split())
    if name.lower() in ("", "none", "off"):
        return None
    if len(name) > MAX_ROOM_NAME:
        raise _Invalid(
            f"default_room must be at most {MAX_ROOM_NAME} characters (it has {len(name)}), "
            "or none for no default room")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise _Invalid("default_room must not contain control characters")
    return name


def _admin_password(raw: str) -> str:
    if raw == "":
        return ""
    if len(raw) < 8:
        raise _Invalid(f"admin_password must be at least 8 characters (it has {len(raw)})")
    if len(raw) > 128:
        raise _Invalid("admin_password must be at most 128 characters")
    if any(not ch.isprintable() for ch in raw):
        raise _Invalid("admin_password must not contain control characters or tabs")
    return raw


def admin_password_problem(password: str) -> str | None:
    """Why `password` cannot be the admin password, or None if it can."""
    try:
        _admin_password(password)
    except _Invalid as exc:
        return str(exc)
    return None if password else "admin_password must not be empty"


def _ssh_key(raw: str) -> str:
    text = raw.strip()
    if not text:
        return ""
    parts = text.split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise _Invalid(
            "ssh_authorized_key must be one public key line such as "
            "'ssh-ed25519 AAAA... you@laptop' (the contents of your .pub file)"
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid("ssh_authorized_key looks cut off or damaged (bad base64)") from None
    kind = parts[0].encode()
    if blob[4 : 4 + len(kind)] != kind:
        raise _Invalid(f"ssh_authorized_key: the key data does not match its type {parts[0]}")
    return " ".join(parts)


def _site_name(raw: str) -> str:
    name = raw.strip().lower()
    if name == "":
        return ""
    if len(name) > 32:
        raise _Invalid(f"site_name must be at most 32 characters (it has {len(name)})")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name):
        raise _Invalid(
            "site_name may use only letters a-z, digits and hyphens, and must not start or "
            f"end with a hyphen (for example: mv-hope), not {raw!r}"
        )
    return name


def _site_secret(raw: str) -> str:
    # Never quote the value back: messages about a secret say what is wrong, not what it is.
    if raw == "":
        return ""
    low, high = SITE_SECRET_LENGTH
    if not low <= len(raw) <= high:
        raise _Invalid(
            f"site_secret must be {low} to {high} characters (it has {len(raw)}); use the "
            "same one on every box of the site, for example four random words"
        )
    if any(not (" " <= ch <= "~") for ch in raw):
        raise _Invalid(
            "site_secret may use only plain ASCII letters, digits, spaces and punctuation "
            "(it is typed on every box of the site)"
        )
    return raw


_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


def _site_peer(raw: str) -> str:
    """One peer as `host:port` ([addr]:port for IPv6), the port defaulting to SITE_PORT."""
    text, port_text = raw, ""
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(.*))?", raw)
    if bracketed:
        text, port_text = bracketed.group(1), bracketed.group(2) or ""
    elif raw.count(":") == 1:
        text, port_text = raw.split(":")
    port = SITE_PORT
    if port_text or raw.endswith(":"):
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise _Invalid(f"site_peers: the port in {raw!r} must be a number 1 to 65535")
        port = int(port_text)
    try:
        address = ip_address(text)
    except ValueError:
        if not _HOST_NAME.fullmatch(text) or text.replace(".", "").isdigit():
            raise _Invalid(
                f"site_peers: {raw!r} is not an address or a host name; write addresses such "
                "as 10.99.0.2 or box-2.local, optionally with a port (10.99.0.2:4222), "
                "separated by commas"
            ) from None
        return f"{text.lower()}:{port}"
    if address.is_multicast or address.is_unspecified or address.is_loopback:
        raise _Invalid(f"site_peers: {text} cannot be another box (a multicast, loopback "
                       "or unspecified address)")
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _site_peers(raw: str) -> tuple[str, ...]:
    items = [p for p in re.split(r"[\s,;]+", raw.strip()) if p]
    if len(items) > MAX_SITE_PEERS:
        raise _Invalid(f"site_peers takes at most {MAX_SITE_PEERS} addresses, not {len(items)}")
    peers: list[str] = []
    for item in items:
        peer = _site_peer(item)
        if peer not in peers:
            peers.append(peer)
    return tuple(peers)


def site_secret_problem(secret: str) -> str | None:
    """Why `secret` cannot be the site secret, or None if it can."""
    try:
        _site_secret(secret)
    except _Invalid as exc:
        return str(exc)
    return None if secret else "site_secret must not be empty"


# --- the keys: one row each, the only place a key's facts are written down


class Service(Enum):
    """What changing a key restarts."""

    HOTSPOT = "the access point"  # hostapd: every phone drops off the Wi-Fi
    CHAT = "the chat service"  # ahoy.service reads the key at start


# A default that depends on other keys (all earlier in KEYS) or on the MAC
# of the hotspot's Wi-Fi adapter.
Derived = Callable[[Mapping[str, Any], str | None], Any]


@dataclass(frozen=True)
class Key:
    """One key of `ahoy.txt` and everything Ahoy knows about it."""

    name: str
    parse: Callable[[str], Any]  # the value as written -> typed value, or _Invalid
    default: Any  # when the file does not set it (and the others are defaults)
    # Its name on the admin page's Settings, which may change it; None: only in ahoy.txt.
    label: str | None = None
    restarts: frozenset[Service] = frozenset()
    # Moved out of the file at start, never kept in a saved config, never restored.
    secret: bool = False
    # `key =` with nothing after it means the default, as if the line were not
    # there; here it means "none" instead: a pin left empty on purpose must not
    # be driven because the default happens to be wired to something else.
    empty_means_none: bool = False
    derived: Derived | None = None  # the default, worked out from the others

    @property
    def admin_page(self) -> bool:
        """Whether the admin page may change it (Settings, and Restore)."""
        return self.label is not None


_HOTSPOT, _CHAT = frozenset({Service.HOTSPOT}), frozenset({Service.CHAT})

# In the order of docs/config.md; a derived default comes after the keys it uses.
KEYS: dict[str, Key] = {
    k.name: k
    for k in [
        Key("box_name", _box_name, "ahoy", "Box name", _CHAT),
        Key("wifi_name", _wifi_name, wifi_name_for_mac(None), "Wi-Fi name", _HOTSPOT | _CHAT,
            derived=_derived_wifi_name),
        Key("wifi_passphrase", _passphrase, "", "Wi-Fi password", _HOTSPOT | _CHAT),
        Key("open_network_encryption", _open_network_encryption, "auto", None,
            _HOTSPOT | _CHAT),
        Key("country", _country, "", "Country", _HOTSPOT),
        Key("band", _band, "2.4", "Band", _HOTSPOT),
        Key("channel", _integer("channel", 1, 196, 6), regulatory.DEFAULT_CHANNEL["2.4"],
            "Channel", _HOTSPOT, derived=_derived_channel),
        Key("hotspot", _on_off("hotspot"), True, None, _HOTSPOT | _CHAT),
        Key("interface", _interface, "wlan0", None, _HOTSPOT | _CHAT),
        Key("uplink", _on_off("uplink"), False, None, _CHAT, derived=_derived_uplink),
        Key("uplink_wifi_name", _uplink_wifi_name, "", None, _CHAT),
        Key("uplink_wifi_passphrase", _wpa_passphrase("uplink_wifi_passphrase"), "", None,
            _CHAT),
        Key("uplink_interface", _wired_interface("uplink_interface", "eth0"), "eth0", None,
            _CHAT, derived=_derived_uplink_interface),
        Key("uplink_address", _uplink_address, "dhcp", None, _CHAT),
        Key("uplink_gateway", _uplink_gateway, None, None, _CHAT),
        Key("network", _network, DEFAULT_NETWORK, None, _CHAT, derived=_derived_network),
        Key("hotspot_subnet", _ipv4_network("hotspot_subnet", "10.42.7.0/24"), DEFAULT_NETWORK,
            None, _HOTSPOT | _CHAT, derived=_derived_hotspot_subnet),
        Key("dhcp_range", _dhcp_range, default_dhcp_range(DEFAULT_NETWORK),
            derived=lambda values, mac: default_dhcp_range(values["hotspot_subnet"])),
        Key("mesh_interface", _mesh_interface, "", None, _CHAT),
        Key("mesh_channel", _integer("mesh_channel", 1, 196, 11), DEFAULT_MESH_CHANNEL, None,
            _CHAT),
        Key("backbone_interface", _wired_interface("backbone_interface", "eth0"), "eth0",
            None, _CHAT,
            derived=lambda values, mac: MESH_BACKBONE if values.get("mesh_interface") else "eth0"),
        Key("admin_password", _admin_password, "", secret=True),
        Key("retention_days", _integer("retention_days", 0, 3650, 30), 30,
            "Keep messages for (days)", _CHAT),
        Key("retention_messages", _integer("retention_messages", 0, 1_000_000, 10000), 10000,
            "Keep at most (messages per chat)", _CHAT),
        Key("default_room", _default_room, "Everyone", "Room everyone joins", _CHAT,
            empty_means_none=True),
        Key("status_led_pins", _pins, (17, 27), None, _CHAT, empty_means_none=True),
        Key("button_pin", _button_pin, 22, None, _CHAT, empty_means_none=True),
        Key("ssh_authorized_key", _ssh_key, ""),
        Key("site_name", _site_name, "", None, _CHAT),
        Key("site_secret", _site_secret, "", None, _CHAT, secret=True),
        Key("site_peers", _site_peers, (), None, _CHAT),
    ]
}
SECRET_KEYS = tuple(k.name for k in KEYS.values() if k.secret)
EMPTY_MEANS_NONE = tuple(k.name for k in KEYS.values() if k.empty_means_none)
# What the admin page's Settings shows and may change, in the order it shows them.
ADMIN_KEYS = tuple(k.name for k in KEYS.values() if k.admin_page)


def restarted_by(service: Service) -> tuple[str, ...]:
    """The keys whose change restarts `service`."""
    return tuple(k.name for k in KEYS.values() if service in k.restarts)


def _default(name: str) -> Any:
    return KEYS[name].default


@dataclass(frozen=True)
class BoxConfig:
    """Everything the box owner can set: one field per key of KEYS, with its default.

    The defaults give a working open hotspot.
    """

    box_name: str = _default("box_name")
    wifi_name: str = _default("wifi_name")
    wifi_passphrase: str = _default("wifi_passphrase")
    open_network_encryption: str = _default("open_network_encryption")
    country: str = _default("country")
    band: str = _default("band")
    channel: int = _default("channel")
    hotspot: bool = _default("hotspot")
    interface: str = _default("interface")
    uplink: bool = _default("uplink")
    uplink_wifi_name: str = _default("uplink_wifi_name")
    uplink_wifi_passphrase: str = field(default=_default("uplink_wifi_passphrase"), repr=False)
    uplink_interface: str = _default("uplink_interface")
    uplink_address: str | IPv4Interface = field(default=_default("uplink_address"))
    uplink_gateway: IPv4Address | None = field(default=_default("uplink_gateway"))
    network: IPv4Network = field(default=_default("network"))
    hotspot_subnet: IPv4Network = field(default=_default("hotspot_subnet"))
    dhcp_range: tuple[IPv4Address, IPv4Address] = _default("dhcp_range")
    mesh_interface: str = _default("mesh_interface")
    mesh_channel: int = _default("mesh_channel")
    backbone_interface: str = _default("backbone_interface")
    admin_password: str = _default("admin_password")
    retention_days: int = _default("retention_days")
    retention_messages: int = _default("retention_messages")
    default_room: str | None = _default("default_room")
    status_led_pins: tuple[int, ...] = _default("status_led_pins")
    button_pin: int | None = _default("button_pin")
    ssh_authorized_key: str = _default("ssh_authorized_key")
    site_name: str = _default("site_name")
    site_secret: str = field(default=_default("site_secret"), repr=False)
    site_peers: tuple[str, ...] = _default("site_peers")

    @property
    def box_address(self) -> IPv4Address:
        """The box's own address: the first one in its hotspot subnet; in LAN mode its
        fixed uplink address (with DHCP it is only known at run time)."""
        if not self.hotspot and isinstance(self.uplink_address, IPv4Interface):
            return self.uplink_address.ip
        return self.hotspot_subnet[1]

    @property
    def fixed_addresses(self) -> list[str]:
        """The box's addresses known before it runs (for its certificate): none in LAN
        mode with DHCP."""
        if self.lan_mode and not isinstance(self.uplink_address, IPv4Interface):
            return []
        if self.hotspot_and_uplink and isinstance(self.uplink_address, IPv4Interface):
            # Beside the hotspot, the uplink's fixed address too.
            return [str(self.box_address), str(self.uplink_address.ip)]
        return [str(self.box_address)]

    @property
    def lan_mode(self) -> bool:
        """The box serves an existing network (`hotspot = off`) instead of making its own."""
        return not self.hotspot

    @property
    def hotspot_and_uplink(self) -> bool:
        """The box makes its hotspot and also serves an existing network on
        `uplink_interface` (`uplink = on`): two interfaces, nothing routed between them."""
        return self.hotspot and self.uplink

    @property
    def in_site(self) -> bool:
        """Whether this box is one of several sharing a site (see docs/site.md)."""
        return bool(self.site_name)

    @property
    def is_open_network(self) -> bool:
        return not self.wifi_passphrase

    @property
    def dns_names(self) -> list[str]:
        """Names the box answers to, for its TLS certificate."""
        return ["ahoy.internal", f"{self.box_name}.local"]

    def without_secrets(self) -> BoxConfig:
        """A copy safe to keep around: the admin password is not in it."""
        return replace(self, **{name: _default(name) for name in SECRET_KEYS})


# --- the file format


@dataclass(frozen=True)
class Entry:
    """One `key = value` line as written."""

    line: int
    key: str
    value: str


def decode_config(data: bytes) -> str:
    """Turn the file's bytes into text, or explain why they are not a config file.

    A file nobody can have meant is refused, so the box keeps its last good
    config: too big, not text, or empty (a save or a copy cut short; the file
    from the image is all notes, so it is never empty).
    """
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError.about_file(
            f"the file is {len(data) // 1024} KiB; a config file is at most "
            f"{MAX_FILE_BYTES // 1024} KiB (is this the right file?)"
        )
    text = decode_with_codec(data)[0]
    if not text.strip():
        what = "empty (0 bytes)" if not data else "blank (only spaces and line ends)"
        raise ConfigError.about_file(
            f"the file is {what}; was it saved or copied completely? Write your "
            "settings into it; for the defaults, use the ahoy.txt from the image "
            "(every line a # note)"
        )
    return text


def decode_with_codec(data: bytes) -> tuple[str, str]:
    """Text and the codec that writes it back as it was (keeping any byte-order mark).

    Unlike `decode_config` there is no size limit: used to edit a file in place.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise ConfigError.about_file(
                "the file claims to be UTF-16 text but is damaged"
            ) from None
    codec = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    if b"\x00" in data:
        raise ConfigError.about_file(
            "the file contains binary data, not text (is this the right file?)"
        )
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError.about_file(
            "this is not UTF-8 text; save the file as UTF-8 (in Notepad: Save as, "
            "Encoding: UTF-8)",
            line,
        ) from None


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _unquote(value: str) -> str | None:
    """The value inside matching quotes, None if it is not quoted."""
    if len(value) >= 2 and value[0] in QUOTE_PAIRS and value[-1] == QUOTE_PAIRS[value[0]]:
        return value[1:-1]
    return None


def read_entries(text: str) -> tuple[list[Entry], list[Problem]]:
    """Split text into entries; also return problems with the file's shape."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(_LINE_BREAK.split(text.removeprefix("\ufeff")), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if any(ord(ch) < 32 and ch != "\t" for ch in line):
            problems.append(
                Problem(number, None, "contains control characters; is this a text file?")
            )
            continue
        if "=" not in line:
            hint = " (use key = value)" if ":" in line else ""
            problems.append(
                Problem(number, None, f"expected key = value, found {stripped[:40]!r}{hint}")
            )
            continue
        raw_key, raw_value = line.split("=", 1)
        key = re.sub(r"[\s-]+", "_", raw_key.strip().lower())
        if key not in KEYS:
            problems.append(
                Problem(number, None, f"unknown key {raw_key.strip()!r}{_did_you_mean(key)}")
            )
            continue
        if key in seen:
            problems.append(Problem(number, key, f"{key} is already set on line {seen[key]}"))
            continue
        seen[key] = number
        value = raw_value.strip()
        inner = _unquote(value)
        if inner is not None:
            value = inner
        elif value[:1] in QUOTE_PAIRS:
            problems.append(
                Problem(number, key, f"{key} starts with a quote but does not end with one")
            )
            continue
        entries.append(Entry(number, key, value))
    return entries, problems


def _did_you_mean(key: str) -> str:
    if key in KEY_HINTS:
        return f"; did you mean {KEY_HINTS[key]}?"
    close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]}?"
    return f"; known keys are {', '.join(KEYS)}"


@dataclass(frozen=True)
class ParsedFile:
    """A valid `ahoy.txt`: the values it sets; every other key takes its default."""

    values: Mapping[str, Any]  # the keys given a value, parsed
    lines: Mapping[str, int]  # every key written (also with an empty value): its line

    @property
    def interface(self) -> str:
        """The hotspot's interface, whose MAC the default Wi-Fi name needs."""
        interface: str = self.values.get("interface", _default("interface"))
        return interface

    def config(self, mac: str | None = None) -> BoxConfig:
        """The whole config; `mac` (of `interface`) makes the default Wi-Fi name unique."""
        values = dict(self.values)
        for key in KEYS.values():
            if key.name not in values:
                values[key.name] = key.derived(values, mac) if key.derived else key.default
        return BoxConfig(**values)


def parse_file(text: str) -> ParsedFile:
    """Validate the text of `ahoy.txt` once, before the MAC for its Wi-Fi name is known.

    Raises ConfigError listing every problem found, each naming its line and key.
    """
    entries, problems = read_entries(text)
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    failed: set[str] = set()
    for entry in entries:
        lines[entry.key] = entry.line
        key = KEYS[entry.key]
        if entry.value == "" and not key.empty_means_none:
            continue  # the default, as if the line were not there
        try:
            values[entry.key] = key.parse(entry.value)
        except _Invalid as exc:
            failed.add(entry.key)
            problems.append(Problem(entry.line, entry.key, str(exc)))
    problems += _check_together(values, lines, failed)
    if problems:
        raise ConfigError(sorted(problems, key=lambda problem: problem.line or 0))
    return ParsedFile(values, lines)


def parse_config(text: str, *, mac: str | None = None) -> BoxConfig:
    """Validate the text of `ahoy.txt`; `mac` makes the default Wi-Fi name unique.

    Raises ConfigError listing every problem found, each naming its line and key.
    """
    return parse_file(text).config(mac)


def _check_together(
    values: Mapping[str, Any], lines: Mapping[str, int], failed: set[str]
) -> list[Problem]:
    """Rules that involve more than one key; skipped where a key already failed alone."""
    problems: list[Problem] = []

    def problem(text: str, key: str, *also: str) -> None:
        line = next((lines[k] for k in (key, *also) if k in lines), None)
        problems.append(Problem(line, key, text))

    def value(name: str) -> Any:
        return values.get(name, _default(name))

    def _derived_or_set(values: Mapping[str, Any], name: str) -> Any:
        key = KEYS[name]
        if name in values:
            return values[name]
        return key.derived(values, None) if key.derived else key.default

    if not failed & {"band", "country", "channel"}:
        band, country = value("band"), value("country")
        allowed = regulatory.allowed_channels(country, band)
        if band == "5" and not country:
            problem(
                "band 5 needs a country (for example country = DE); "
                "the legal 5 GHz channels depend on it",
                "band",
            )
        elif not allowed:
            fix = "use band = 2.4" if band == "5" else "leave country empty"
            problem(
                f"band {band} is not available for country {country} in Ahoy's channel "
                f"table; {fix}",
                "band", "country",
            )
        elif "channel" in values and values["channel"] not in allowed:
            place = f" in {country}" if country else " without a country set"
            five = regulatory.CHANNELS_5_LOW + regulatory.CHANNELS_5_HIGH
            hint = " (or set band = 5)" if band == "2.4" and values["channel"] in five else ""
            problem(
                f"channel {values['channel']} is not allowed on {band} GHz{place}; "
                f"use one of {regulatory.describe_channels(allowed)}{hint}",
                "channel",
            )
    if not failed & {"network", "hotspot_subnet"}:
        network, subnet = _derived_or_set(values, "network"), value("hotspot_subnet")
        if _in_site(values) and network.prefixlen > SITE_MAX_PREFIX:
            problem(
                f"network {network} is too small for a site: each box needs its own part "
                f"of it; use /{SITE_MAX_PREFIX} or larger (for example {SITE_NETWORK}), "
                "or leave network out",
                "network", "site_name",
            )
        elif "hotspot_subnet" in values and not subnet.subnet_of(network):
            problem(f"hotspot_subnet {subnet} must lie inside network {network}",
                    "hotspot_subnet")
    if "dhcp_range" in values and not failed & {"network", "hotspot_subnet"}:
        where = "hotspot_subnet" if "hotspot_subnet" in values else "network"
        network = values.get("hotspot_subnet") or _derived_or_set(values, "network")
        start, end = values["dhcp_range"]
        box = network[1]
        if _in_site(values) and "hotspot_subnet" not in values:
            problem(
                "dhcp_range needs hotspot_subnet in a site: each box picks its own part of "
                "network, so a fixed range only fits a fixed hotspot_subnet; leave "
                "dhcp_range out or set both",
                "dhcp_range",
            )
        elif start not in network or end not in network:
            problem(f"dhcp_range {start} - {end} must lie inside {where} {network}",
                    "dhcp_range")
        elif start <= box <= end:
            problem(
                f"dhcp_range must not include the box's own address {box}; "
                f"start it at {box + 1} or later",
                "dhcp_range",
            )
        elif end == network.broadcast_address or start == network.network_address:
            problem(
                "dhcp_range must not include the network address or the broadcast "
                f"address of {network}",
                "dhcp_range",
            )
    if "uplink_gateway" in values and not failed & {"uplink_address", "uplink_gateway"}:
        address = value("uplink_address")
        if not isinstance(address, IPv4Interface):
            problem("uplink_gateway is only used with a fixed uplink_address (DHCP gives the "
                    "gateway); set uplink_address or leave uplink_gateway out", "uplink_gateway")
        elif values["uplink_gateway"] not in address.network:
            problem(f"uplink_gateway {values['uplink_gateway']} must be inside the uplink's "
                    f"network {address.network}", "uplink_gateway")
    uplink = _derived_or_set(values, "uplink") if "hotspot" not in failed else None
    if uplink is False and value("hotspot") is False and "uplink" not in failed:
        problem("hotspot = off and uplink = off leave the box on no network at all; set "
                "uplink = on (LAN mode) or hotspot = on", "uplink", "hotspot")
    if values.get("uplink_wifi_name") and uplink is False and "uplink" not in failed:
        problem("uplink_wifi_name is for joining an existing network: set hotspot = off too "
                "(LAN mode), or uplink = on to join it beside the hotspot (on a second radio), "
                "or leave uplink_wifi_name out", "uplink_wifi_name", "hotspot", "uplink")
    if uplink and value("hotspot") is True and not failed & {"interface", "uplink_interface"}:
        here, there = value("interface"), _derived_or_set(values, "uplink_interface")
        if here == there:
            problem(f"uplink_interface {there} is also the hotspot's interface: one interface "
                    "cannot make the hotspot and join the network; use a cable "
                    "(uplink_interface = eth0) or a second Wi-Fi radio (uplink_interface = "
                    "wlan1, a USB adapter)", "uplink_interface", "uplink", "interface")
        address = value("uplink_address")
        if (isinstance(address, IPv4Interface) and not failed & {"network", "uplink_address"}
                and address.network.overlaps(_derived_or_set(values, "network"))):
            problem(f"uplink_address {address} overlaps the hotspot's network "
                    f"{_derived_or_set(values, 'network')}: the box could not tell its two "
                    "sides apart; set network to a range the ship's network does not use",
                    "uplink_address", "network")
        if _in_site(values):
            problem("uplink = on beside the hotspot and site_name cannot be used together yet: "
                    "a site's backbone and a ship's network on one box are not done",
                    "uplink", "site_name")
    if values.get("uplink_wifi_passphrase") and not values.get("uplink_wifi_name"):
        problem("uplink_wifi_passphrase is the password of the Wi-Fi network named by "
                "uplink_wifi_name; set that too, or leave the passphrase out",
                "uplink_wifi_passphrase")
    if value("hotspot") is False and _in_site(values):
        problem("hotspot = off (LAN mode) and site_name cannot be used together yet: a site "
                "links boxes that each make a hotspot", "hotspot", "site_name")
    if values.get("mesh_interface") and "mesh_interface" not in failed:
        mesh = values["mesh_interface"]
        if not _in_site(values):
            problem("mesh_interface needs site_name (and site_secret): the mesh links the "
                    "boxes of a site, and its key comes from the site's secret",
                    "mesh_interface")
        elif mesh == value("interface"):
            problem(f"mesh_interface {mesh} is the hotspot's own radio; the mesh needs a second "
                    "one (a USB Wi-Fi adapter, usually wlan1)", "mesh_interface")
    if "mesh_channel" in values and not failed & {"mesh_channel", "country"}:
        country = value("country")
        legal = set(regulatory.allowed_channels(country, "2.4"))
        if country:
            legal |= set(regulatory.allowed_channels(country, "5"))
        if values["mesh_channel"] not in legal:
            problem(f"mesh_channel {values['mesh_channel']} is not allowed"
                    + (f" in {country}" if country else " without a country set")
                    + f"; use one of {regulatory.describe_channels(tuple(sorted(legal)))}",
                    "mesh_channel")
    if not failed & {"status_led_pins", "button_pin"}:
        pins = list(value("status_led_pins"))
        button = value("button_pin")
        if button is not None:
            pins.append(button)
        duplicates = sorted({p for p in pins if pins.count(p) > 1})
        if duplicates:
            problem(
                f"GPIO {duplicates[0]} is used twice; each LED and the button need their "
                "own pin",
                "button_pin", "status_led_pins",
            )
    return problems


# --- writing values back, keeping the rest of the file as it is


def quote_value(value: str) -> str:
    """How a value is written so that reading it back gives exactly `value`."""
    if value == "":
        return ""
    if value != value.strip() or value[0] in QUOTE_PAIRS or _unquote(value) is not None:
        return "'" + value + "'" if "'" not in value else '"' + value + '"'
    return value


def set_values(text: str, values: Mapping[str, str]) -> str:
    """Change some keys' values in the file text, keeping comments, order and line ends.

    Keys not present are added at the end. Values are written as given (already
    valid); use `format_value` to turn typed values into text.
    """
    pending = dict(values)
    pieces = re.split(r"(\r\n|\r|\n)", text)
    for index in range(0, len(pieces), 2):
        line = pieces[index]
        if line.lstrip().startswith(("#", ";")) or "=" not in line:
            continue
        raw_key, _ = line.split("=", 1)
        key = re.sub(r"[\s-]+", "_", raw_key.strip().lower().lstrip("\ufeff"))
        if key in pending:
            value = quote_value(pending.pop(key))
            pieces[index] = f"{raw_key.rstrip()} = {value}".rstrip()
    result = "".join(pieces)
    if pending:
        newline = "\r\n" if "\r\n" in text else "\n"
        if result and not result.endswith(("\n", "\r")):
            result += newline
        for key, value in pending.items():
            result += f"{key} = {quote_value(value)}".rstrip() + newline
    return result


def format_value(config: BoxConfig, key: str) -> str:
    """A key's value as it would be written in `ahoy.txt`."""
    value = getattr(config, key)
    if key == "dhcp_range":
        return f"{value[0]} - {value[1]}"
    if key == "status_led_pins":
        return ", ".join(str(p) for p in value) or "none"
    if key == "site_peers":
        return ", ".join(value)
    if key in ("hotspot", "uplink"):
        return "on" if value else "off"
    if value is None:
        return "none" if KEYS[key].empty_means_none else ""
    return str(value)


def format_config(config: BoxConfig) -> str:
    """The whole config as `ahoy.txt` text; parsing it gives `config` back."""
    lines = ["# Written by Ahoy: the last config that worked.", ""]
    for key in KEYS:
        lines.append(f"{key} = {quote_value(format_value(config, key))}".rstrip())
    return "\n".join(lines) + "\n"


def change_config(
    config: BoxConfig, changes: Mapping[str, str], *, mac: str | None = None
) -> BoxConfig:
    """`config` with some keys set to new values (as they would be written in ahoy.txt).

    The admin page's path: the same validation as the file. Messages name the
    key but no line, since the person typed into a form, not the file. `mac`
    makes the default Wi-Fi name, for a Wi-Fi name set back to empty.
    """
    problems = [
        Problem(None, None, f"unknown key {key!r}{_did_you_mean(key)}")
        for key in changes
        if key not in KEYS
    ]
    problems += [
        Problem(None, key, f"{key} is not changed this way; set the admin password on its own"
                if key == "admin_password" else f"{key} is set only in ahoy.txt on the SD card")
        for key in changes
        if key in KEYS and KEYS[key].secret
    ]
    if problems:
        raise ConfigError(problems)
    text = set_values(format_config(config), changes)
    try:
        return parse_config(text, mac=mac)
    except ConfigError as exc:
        raise ConfigError([replace(p, line=None) for p in exc.problems]) from None
