"""`python -m appliance`: the Ahoy service's command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


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
    serve.add_argument("--box-name", default=None, help="the box's name (default: ahoy)")
    serve.add_argument("--stun", action="append", default=[], metavar="URL",
                       help="a STUN URL handed to phones, e.g. stun:10.42.0.1:3478 (repeatable)")
    serve.add_argument("--turn", action="append", default=[], metavar="URL",
                       help="a TURN URL handed to phones (repeatable; needs --turn-secret-file)")
    serve.add_argument("--turn-secret-file", type=Path, default=None,
                       help="file holding coturn's static-auth-secret")
    serve.add_argument("--log-level", default="INFO",
                       choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _port(value: int | None, default: int) -> int:
    port = default if value is None else value
    if not 0 < port < 65536:
        raise SystemExit(f"error: port {port} is not between 1 and 65535")
    return port


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

    from .settings import Settings

    turn_secret = None
    if args.turn_secret_file is not None:
        try:
            turn_secret = args.turn_secret_file.read_text().strip()
        except OSError as e:
            print(f"error: cannot read the TURN secret: {e}", file=sys.stderr)
            return 2
    settings = Settings(
        data_dir=(args.data_dir or (Path("var") if dev else Path("/data/ahoy"))).resolve(),
        dev=dev,
        host=args.host or ("127.0.0.1" if dev else "0.0.0.0"),
        http_port=_port(args.port, 8080 if dev else 80),
        https_port=_port(args.https_port, 8443 if dev else 443),
        box_name=args.box_name or "ahoy",
        stun_urls=tuple(args.stun),
        turn_urls=tuple(args.turn),
        turn_secret=turn_secret,
    )
    from . import create_app
    from .server import serve_dev, serve_production

    try:
        app = create_app(settings)
    except OSError as e:
        print(f"error: cannot use the data folder {settings.data_dir}: {e}", file=sys.stderr)
        return 2
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
