"""`python -m appliance`: the Ahoy service's command line."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

DEFAULT_BOX_CONFIG = Path("/boot/firmware/ahoy.txt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m appliance",
        description="Ahoy: offline chat and calls from a Raspberry Pi hotspot.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the service (HTTP, HTTPS and the WebSocket hub)")
    serve.add_argument("--dev", action="store_true",
                       help="development mode: Werkzeug server, loopback ports 8080/8443, "
                            "mock GPIO, no changes to the machine's network")
    serve.add_argument("--data-dir", type=Path, default=None,
                       help="where the database, certificates and secrets live "
                            "(default: ./var in --dev, /data/ahoy on the box)")
    serve.add_argument("--host", default=None,
                       help="address to listen on (default: 127.0.0.1 in --dev, else 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None,
                       help="HTTP port (default: 8080 in --dev, else 80)")
    serve.add_argument("--https-port", type=int, default=None,
                       help="HTTPS port (default: 8443 in --dev, else 443)")
    serve.add_argument("--config", type=Path, default=None,
                       help="the box config file (default: /boot/firmware/ahoy.txt on the box, "
                            "none in --dev); see docs/config.md")
    serve.add_argument("--box-name", default=None,
                       help="the box's name (default: from the config file, else ahoy)")
    serve.add_argument("--default-room", type=_room_name, default=None, metavar="NAME",
                       help="the room every new phone joins at first visit, instead of the "
                            "config file's default_room; an empty NAME for none")
    serve.add_argument("--mdns", action=argparse.BooleanOptionalAction, default=None,
                       help="announce the box with mDNS (default: on, off in --dev)")
    serve.add_argument("--stun", action="append", default=[], metavar="URL",
                       help="a STUN URL handed to phones, e.g. stun:10.42.0.1:3478 (repeatable)")
    serve.add_argument("--turn", action="append", default=[], metavar="URL",
                       help="a TURN URL handed to phones (repeatable; needs --turn-secret-file)")
    serve.add_argument("--turn-secret-file", type=Path, default=None,
                       help="file holding coturn's static-auth-secret")
    limits = serve.add_argument_group(
        "connection limits", "what one device, and all of them, may hold open (docs/protocol.md)")
    limits.add_argument("--max-connections", type=_positive_int, default=4000, metavar="N",
                        help="connections open at once in all (default 4000; at most half "
                             "the open-files limit; production server)")
    limits.add_argument("--max-connections-per-client", type=_positive_int, default=64,
                        metavar="N", help="connections open at once from one address "
                                          "(default 64; production server)")
    limits.add_argument("--max-unfinished-per-client", type=_positive_int, default=16,
                        metavar="N", help="connections from one address whose request has "
                                          "not arrived yet (default 16; production server)")
    limits.add_argument("--header-timeout", type=_positive_seconds, default=10.0,
                        metavar="SECONDS", help="time for the TLS handshake and a request's "
                                                "headers (default 10; production server)")
    limits.add_argument("--hello-timeout", type=_positive_seconds, default=10.0,
                        metavar="SECONDS",
                        help="time for a new WebSocket's first frame, its hello (default 10)")
    site = serve.add_argument_group(
        "site", "several boxes as one (docs/site.md); on the box these come from ahoy.txt")
    site.add_argument("--site-name", default=None,
                      help="the site's name (default: site_name from the config file)")
    site.add_argument("--site-peer", action="append", default=[], metavar="HOST:PORT",
                      help="another box's nats-server (repeatable; default: site_peers)")
    site.add_argument("--site-port", type=int, default=None, metavar="PORT",
                      help="this box's own nats-server port (default 4222)")
    serve.add_argument("--webclient-dir", type=Path, default=None, metavar="DIR",
                       help="serve the web app and admin pages from DIR/app and DIR/admin "
                            "(default: the webclient folder next to this program)")
    serve.add_argument("--log-level", default="INFO",
                       choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _room_name(text: str) -> str:
    """--default-room: the config key's own rules; "" (none) stays "" here."""
    from provisioning.config import KEYS

    try:
        return KEYS["default_room"].parse(text) or ""
    except Exception as e:  # the config parser's own "value is wrong" error
        raise argparse.ArgumentTypeError(str(e).replace("default_room", "--default-room")) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{value:g} is not between 0 and 3600 seconds")
    return value


def _accept_any_interface(interface: str) -> None:
    return None


def _site_peers(values: list[str]) -> tuple[str, ...]:
    """--site-peer values: host:port (loopback allowed, unlike site_peers: tests and tools)."""
    import re

    for value in values:
        if not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):[0-9]{1,5}", value):
            raise SystemExit(f"error: --site-peer {value!r} is not host:port")
    return tuple(values)


def _current_address(interface: str) -> str | None:
    """The interface's first IPv4 address now, None if it has none (or cannot be asked)."""
    try:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            for msg in ipr.get_addr(family=socket.AF_INET, label=interface):
                found: str = msg.get("IFA_ADDRESS")
                return found
    except Exception as e:  # no netlink here
        logging.getLogger(__name__).warning("cannot read the address of %s: %s", interface, e)
    return None


def _hotspot_link(config: Any) -> str:
    """Where the hotspot's phones are: the Wi-Fi interface, or with Enhanced Open the bridge
    over it and its OWE network (the same decision as the apply step's)."""
    from provisioning.render import hotspot_link
    from provisioning.wireless import offers_enhanced_open

    return hotspot_link(config, offers_enhanced_open(config))


def _port(value: int | None, default: int) -> int:
    port = default if value is None else value
    if not 0 < port < 65536:
        raise SystemExit(f"error: port {port} is not between 1 and 65535")
    return port


def build_settings(args: argparse.Namespace) -> tuple[Any, tuple[str, ...]]:
    """Settings from the command line and the box config file (which provisioning
    has already checked and applied at boot; a bad file means the last good one)."""
    from provisioning.config import BoxConfig
    from provisioning.configstore import read_config
    from provisioning.wireless import access_point_problem

    from .settings import Settings

    dev: bool = args.dev
    data_dir = (args.data_dir or (Path("var") if dev else Path("/data/ahoy"))).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path: Path | None = args.config or (None if dev else DEFAULT_BOX_CONFIG)
    errors: tuple[str, ...] = ()
    if config_path is not None:
        # On the box, the same choice as the apply step: a config whose interface
        # cannot carry the hotspot is not used. Development manages no hotspot.
        check = _accept_any_interface if dev else access_point_problem
        loaded = read_config(config_path, data_dir, interface_problem=check)
        config, errors = loaded.config, loaded.errors
    else:
        config = BoxConfig()
    address = str(config.box_address)
    if config.lan_mode and not dev and not isinstance(config.uplink_address, IPv4Interface):
        # The network's DHCP server gives the address; mDNS follows it as it changes.
        address = _current_address(config.uplink_interface) or f"{config.box_name}.local"
    uplink_interface: str | None = None
    uplink_address: str | None = None
    if config.hotspot_and_uplink and not dev and config_path is not None:
        # Beside the hotspot: phones on the existing network are told the uplink's address.
        uplink_interface = config.uplink_interface
        uplink_address = (str(config.uplink_address.ip)
                          if isinstance(config.uplink_address, IPv4Interface) else
                          _current_address(config.uplink_interface) or f"{config.box_name}.local")
    if dev and config_path is None:
        # Without a hotspot the box is wherever it listens (the captive portal
        # sends strangers there).
        address = "127.0.0.1" if args.host in (None, "0.0.0.0", "::") else args.host
    stun, turn = tuple(args.stun), tuple(args.turn)
    turn_secret = None
    if args.turn_secret_file is not None:
        try:
            turn_secret = args.turn_secret_file.read_text().strip()
        except OSError as e:
            raise OSError(f"cannot read the TURN secret: {e}") from e
    if not dev and not stun and not turn:
        # coturn on the box answers STUN and TURN on 3478 (see provisioning).
        from provisioning.credentials import read_turn_secret

        stun = (f"stun:{address}:3478",)
        turn_secret = read_turn_secret(data_dir)
        if turn_secret is not None:
            turn = (f"turn:{address}:3478?transport=udp", f"turn:{address}:3478?transport=tcp")
    pins = tuple(config.status_led_pins)
    settings = Settings(
        data_dir=data_dir,
        dev=dev,
        host=args.host or ("127.0.0.1" if dev else "0.0.0.0"),
        http_port=_port(args.port, 8080 if dev else 80),
        https_port=_port(args.https_port, 8443 if dev else 443),
        box_name=args.box_name or config.box_name,
        box_address=address,
        box_config=config_path,
        hotspot_interface=None if dev else (
            config.uplink_interface if config.lan_mode else _hotspot_link(config)),
        lan_mode=config.lan_mode and config_path is not None,
        uplink_interface=uplink_interface,
        uplink_address=uplink_address,
        led_pins=pins,
        button_pin=config.button_pin,
        announce_mdns=(not dev) if args.mdns is None else args.mdns,
        stun_urls=stun,
        turn_urls=turn,
        turn_secret=turn_secret,
        retention_days=config.retention_days,
        retention_messages=config.retention_messages,
        default_room=(config.default_room if args.default_room is None
                      else args.default_room or None),
        wifi_ssid=config.wifi_name if config_path is not None and config.hotspot else None,
        wifi_passphrase=(config.wifi_passphrase or None) if config_path is not None else None,
        hotspot_network=str(config.network) if config_path is not None else None,
        in_site=config.in_site and config_path is not None,
        max_connections=args.max_connections,
        max_connections_per_client=args.max_connections_per_client,
        max_unfinished_per_client=args.max_unfinished_per_client,
        header_timeout_s=args.header_timeout,
        hello_timeout_s=args.hello_timeout,
        site_name=args.site_name if args.site_name is not None else config.site_name,
        site_peers=_site_peers(args.site_peer) if args.site_peer else config.site_peers,
        site_port=_port(args.site_port, 4222),
        **({"webclient_dir": args.webclient_dir} if args.webclient_dir else {}),
    )
    return settings, errors


def announce_admin_password(settings: Any) -> None:
    """Development boxes get an admin password at first start, printed once."""
    from provisioning.datadir import ADMIN_PASSWORD_NOTE

    from .admin import ensure_admin_password

    password = ensure_admin_password(settings.data_dir)
    if password is None:
        return
    note = settings.data_dir / ADMIN_PASSWORD_NOTE
    print(f"Admin password for /admin: {password}  (also in {note})", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dev: bool = args.dev
    if not dev:
        # gevent must patch the standard library before anything else opens sockets.
        from gevent import monkey

        monkey.patch_all()
    if dev:
        os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        settings, config_errors = build_settings(args)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for problem in config_errors:
        print(f"config problem: {problem}", file=sys.stderr)
    from .app import create_app
    from .box import box_of
    from .server import serve_dev, serve_production

    try:
        app = create_app(settings)
    except OSError as e:
        print(f"error: cannot use the data folder {settings.data_dir}: {e}", file=sys.stderr)
        return 2
    box_of(app).status["config_errors"] = list(config_errors)
    if dev:
        announce_admin_password(settings)
    try:
        if dev:
            serve_dev(app, settings)
        else:
            serve_production(app, settings)
    except OSError as e:
        print(f"error: cannot listen on {settings.host}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
