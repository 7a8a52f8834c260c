"""Command line: `python -m provisioning check|render|apply|scan-channel`.

Exit codes: 0 all good; 1 the config file has errors or a step failed (apply
still brings up the hotspot with the last good config or the defaults);
2 wrong usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from provisioning import channelscan, configstore, credentials, render, tls, wireless
from provisioning.apply import HostSystem, apply_config
from provisioning.config import ConfigError, decode_config, parse_config
from provisioning.datadir import DEFAULT_BOOT_CONFIG, DEFAULT_DATA_DIR, DataDir, write_file

OK, FAILED, USAGE = 0, 1, 2


def _read_config_file(path: Path) -> str:
    try:
        return decode_config(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError.about_file(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError.about_file(f"{path} is a folder, not a config file") from None
    except PermissionError:
        raise ConfigError.about_file(f"{path} cannot be read (permission denied)") from None


def _print_errors(path: Path, error: ConfigError) -> None:
    print(f"{path} has {len(error.messages)} problem(s):", file=sys.stderr)
    for message in error.messages:
        print(f"  {message}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    try:
        config = parse_config(_read_config_file(args.config))
    except ConfigError as exc:
        _print_errors(args.config, exc)
        return FAILED
    if config.lan_mode:
        print(f"{args.config} is fine: LAN mode (no hotspot), box {config.box_name}.local on "
              f"{config.uplink_interface} ({config.uplink_address})")
        return OK
    security = "open network" if config.is_open_network else "WPA2 passphrase"
    country = config.country or "no country set"
    print(
        f"{args.config} is fine: Wi-Fi {config.wifi_name!r} ({security}), "
        f"{config.band} GHz channel {config.channel} ({country}), "
        f"box at {config.box_address} on {config.interface}"
        + (f"; also on the network on {config.uplink_interface} ({config.uplink_address}), "
           "nothing routed between them" if config.hotspot_and_uplink else "")
    )
    return OK


def cmd_render(args: argparse.Namespace) -> int:
    try:
        config = parse_config(_read_config_file(args.config))
    except ConfigError as exc:
        _print_errors(args.config, exc)
        return FAILED
    out: Path = args.out
    data_dir: Path = args.data_dir or out / "data"
    secret = credentials.turn_secret(data_dir)
    tls.ensure_certificates(
        DataDir(data_dir).tls, config.box_name, config.dns_names, config.fixed_addresses
    )
    # `auto` asks this machine's radio, as apply does on the box.
    files = render.render_all(config, secret, lease_file=data_dir / "dnsmasq.leases",
                              enhanced_open=wireless.offers_enhanced_open(config))
    for name, text in files.items():
        changed = write_file(out / name, text.encode("utf-8"), mode=0o600)
        print(f"{'wrote' if changed else 'unchanged'} {out / name}")
    print(f"secrets and certificates in {data_dir}")
    return OK


def cmd_apply(args: argparse.Namespace) -> int:
    for_real = not args.files_only
    if for_real and os.geteuid() != 0:
        print(
            "apply changes the network and system services and needs root: run it with "
            "sudo, or use --files-only (or `render`) to only write files",
            file=sys.stderr,
        )
        return FAILED
    if for_real:
        # A box of a site picks its channel by listening first (before hostapd starts).
        _scan_channel(args.config, args.data_dir)
    try:
        loaded = configstore.load_config(args.config, args.data_dir)
    except OSError as exc:
        # A data partition that cannot be written must not keep the hotspot down.
        loaded = configstore.read_config(args.config, args.data_dir)
        problem = f"cannot write to {args.data_dir}: {exc.strerror}"
        loaded = dataclasses.replace(loaded, errors=(*loaded.errors, problem))
    if loaded.errors:
        fallback = {"last-good": "the last good config", "defaults": "the safe defaults"}
        print(
            f"{args.config} has problems; using {fallback.get(loaded.source, loaded.source)}:",
            file=sys.stderr,
        )
        for message in loaded.errors:
            print(f"  {message}", file=sys.stderr)
    for notice in loaded.notices:
        print(notice)
    if loaded.generated_admin_password:
        # Printed where a serial console or the journal shows it at first boot.
        print("*" * 60)
        print(f"*  Ahoy admin password: {loaded.generated_admin_password}")
        print("*" * 60)
    report = apply_config(
        loaded.config,
        args.data_dir,
        root=args.root,
        system=HostSystem() if for_real else None,
        service_user=args.service_user,
    )
    for path in report.changed_files:
        print(f"wrote {path}")
    for action in report.actions:
        print(action)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in report.problems:
        print(f"error: {problem}", file=sys.stderr)
    if not report.changed:
        print("nothing to change")
    if report.warnings:
        # Shown on the admin page beside the config's notices (e.g. a remade CA).
        try:
            configstore.write_status(args.data_dir, dataclasses.replace(
                loaded, notices=(*loaded.notices, *report.warnings)))
        except OSError:
            pass
    return FAILED if loaded.errors or report.problems else OK


def _scan_channel(config_file: Path, data_dir: Path) -> None:
    loaded = configstore.read_config(config_file, data_dir)
    if loaded.source != "file":
        return
    mac = configstore.interface_mac(loaded.config.interface)
    done = channelscan.scan_and_choose(loaded.config, data_dir,
                                       configstore.channel_pinned(config_file), own_mac=mac)
    if done:
        print(done)


def cmd_scan_channel(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("scan-channel scans with the radio and needs root", file=sys.stderr)
        return FAILED
    _scan_channel(args.config, args.data_dir)
    return OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m provisioning",
        description="Turn the box config file (ahoy.txt) into system state. See docs/config.md.",
        epilog="Exit codes: 0 fine, 1 config errors or a failed step, 2 wrong usage.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="validate a config file and print its problems")
    check.add_argument(
        "--config", type=Path, default=DEFAULT_BOOT_CONFIG, metavar="FILE",
        help=f"the config file (default: {DEFAULT_BOOT_CONFIG})",
    )
    check.set_defaults(run=cmd_check)

    rend = sub.add_parser(
        "render", help="write every generated file into a folder, without touching the machine"
    )
    rend.add_argument("--config", type=Path, required=True, metavar="FILE",
                      help="the config file to render")
    rend.add_argument("--out", type=Path, required=True, metavar="DIR",
                      help="where to write the generated files")
    rend.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the TURN secret and certificates are kept (default: DIR/data)",
    )
    rend.set_defaults(run=cmd_render)

    app = sub.add_parser(
        "apply", help="apply the config to this machine (root): files, address, services"
    )
    app.add_argument(
        "--config", type=Path, default=DEFAULT_BOOT_CONFIG, metavar="FILE",
        help=f"the config file on the boot partition (default: {DEFAULT_BOOT_CONFIG})",
    )
    app.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR",
        help=f"the data partition's Ahoy folder (default: {DEFAULT_DATA_DIR})",
    )
    app.add_argument(
        "--root", type=Path, default=Path("/"), metavar="DIR", help="write system files under DIR"
    )
    app.add_argument(
        "--service-user",
        default="ahoy",
        metavar="USER",
        help="the user the Ahoy service runs as; gets the data dir's secrets and "
        "certificates (default: ahoy, skipped if there is no such user)",
    )
    app.add_argument(
        "--files-only",
        action="store_true",
        help="write files (and secrets) only; change no interface, radio or service",
    )
    app.set_defaults(run=cmd_apply)

    scan = sub.add_parser(
        "scan-channel", help="a box of a site: scan for the neighbours and keep the hotspot "
        "channel to use (apply does this first; see docs/site.md)"
    )
    scan.add_argument("--config", type=Path, default=DEFAULT_BOOT_CONFIG, metavar="FILE")
    scan.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR")
    scan.set_defaults(run=cmd_scan_channel)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        return int(args.run(args))
    except PermissionError as exc:
        print(f"permission denied: {exc.filename}", file=sys.stderr)
        return FAILED
    except OSError as exc:
        print(f"{exc.filename or 'error'}: {exc.strerror}", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
