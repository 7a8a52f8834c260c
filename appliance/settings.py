"""How this service process runs: where its data lives, its ports and names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from provisioning.config import KEYS

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    dev: bool = False
    host: str = "0.0.0.0"
    http_port: int = 80
    https_port: int = 443
    box_name: str = "ahoy"
    box_address: str = "10.42.0.1"
    webclient_dir: Path = REPO_ROOT / "webclient"
    # The Ahoy config file on the boot partition (None in development).
    box_config: Path | None = None
    # The hotspot's network interface to watch (None: no hotspot, e.g. development).
    hotspot_interface: str | None = None
    led_pins: tuple[int, ...] = KEYS["status_led_pins"].default
    button_pin: int | None = KEYS["button_pin"].default
    announce_mdns: bool = True
    # Extra page origins allowed to open the WebSocket (besides the page's own).
    extra_origins: frozenset[str] = frozenset()
    # STUN/TURN on the box (coturn with use-auth-secret); empty in development.
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl_s: int = 6 * 3600
    retention_days: int = 30
    retention_messages: int = 10000
    # The room every new phone joins at first visit (config `default_room`); None: none.
    default_room: str | None = None
    wifi_ssid: str | None = None
    wifi_passphrase: str | None = None
    # The hotspot's own network ("10.42.0.0/24"): phones there have joined the
    # Wi-Fi, so they already know its passphrase. None in development.
    hotspot_network: str | None = None
    # One of a site's boxes (site_name set): the backbone's link is shown.
    in_site: bool = False
    # hotspot = off: the box serves an existing network; `hotspot_interface` is then
    # its uplink, and the mDNS announcement follows the uplink's addresses.
    lan_mode: bool = False
    # uplink = on beside the hotspot: the interface on the existing network (watched, its
    # addresses announced over mDNS and named in the ICE servers of phones there), and the
    # address it had at start (fixed, from DHCP, or `<box_name>.local` while it had none).
    # None without one; in LAN mode the uplink is `hotspot_interface`.
    uplink_interface: str | None = None
    uplink_address: str | None = None
    # Connection limits (docs/protocol.md, "Connections"); all but the hello
    # timeout apply to the production server only.
    max_connections: int = 4000
    max_connections_per_client: int = 64
    max_unfinished_per_client: int = 16
    header_timeout_s: float = 10.0
    hello_timeout_s: float = 10.0
    # A box of a site (docs/site.md): its name ("" alone), the other boxes'
    # nats-servers ("host:port") and the port of its own.
    site_name: str = ""
    site_peers: tuple[str, ...] = ()
    site_port: int = 4222
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def boot_dir(self) -> Path | None:
        return self.box_config.parent if self.box_config else None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "ahoy.db"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def web_cache_dir(self) -> Path:
        """Gzip copies of the web app's files, made once (see appliance.webfiles)."""
        return self.data_dir / "webcache"

    @property
    def dns_names(self) -> list[str]:
        names = ["ahoy.internal", f"{self.box_name}.local"]
        if self.dev:
            names.insert(0, "localhost")
        return names

    @property
    def ip_addresses(self) -> list[str]:
        return ["127.0.0.1", self.box_address] if self.dev else [self.box_address]
