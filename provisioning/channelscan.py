"""A site box's hotspot channel, chosen by listening for its neighbours first.

Every box of a site broadcasts the same Wi-Fi name; boxes within reach of each other
should not share a channel. Before hostapd starts (ahoy-provision at boot), a box of a
site whose ahoy.txt sets no `channel` scans (`iw dev <interface> scan`) and takes, of the
channels that do not overlap (1, 6 and 11 on 2.4 GHz; every allowed channel on 5 GHz),
the one with the fewest access points of its own site's Wi-Fi name, then the fewest
other networks; a tie goes to the channel its box id points at (the choice without a
scan). The choice is kept in `<data_dir>/site/channel` and used from then on (the
config's `channel` in a site, see configstore); a scan that cannot run (the radio is
already an access point, no `iw`) keeps the last choice. A box alone, or a `channel`
in ahoy.txt, is never changed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from provisioning import regulatory
from provisioning.config import BoxConfig
from provisioning.datadir import DataDir

Runner = Callable[[Sequence[str]], tuple[int, str]]


@dataclass(frozen=True)
class Heard:
    """One access point a scan heard."""

    bssid: str
    channel: int
    ssid: str


def _channel_of(mhz: int) -> int | None:
    if mhz == 2484:
        return 14
    if 2412 <= mhz <= 2472:
        return (mhz - 2407) // 5
    if 5000 <= mhz <= 5900:
        return (mhz - 5000) // 5
    return None


def parse_scan(text: str) -> list[Heard]:
    """The access points in `iw dev <interface> scan` output."""
    heard: list[Heard] = []
    for block in re.split(r"(?m)^BSS ", text)[1:]:
        bssid = block[:17].lower()
        freq = re.search(r"(?m)^\s*freq:\s*(\d+)", block)
        ssid = re.search(r"(?m)^\s*SSID: ?(.*)$", block)
        channel = _channel_of(int(float(freq.group(1)))) if freq else None
        if channel is not None:
            heard.append(Heard(bssid, channel, ssid.group(1).strip() if ssid else ""))
    return heard


def candidates(config: BoxConfig) -> tuple[int, ...]:
    """The channels a site box picks from (the ones that do not overlap)."""
    allowed = regulatory.allowed_channels(config.country, config.band)
    if config.band == "2.4":
        return tuple(c for c in (1, 6, 11) if c in allowed)
    return tuple(allowed)


def choose(options: Sequence[int], heard: Sequence[Heard], own_ssid: str,
           preferred: int) -> int:
    """The channel with the fewest boxes of this site on it, then the fewest networks;
    `preferred` (the box id's channel) wins a tie."""
    def crowd(channel: int) -> tuple[int, int, int]:
        ours = sum(1 for h in heard if h.channel == channel and h.ssid == own_ssid)
        others = sum(1 for h in heard if h.channel == channel and h.ssid != own_ssid)
        return ours, others, 0 if channel == preferred else 1

    return min(options, key=crowd) if options else preferred


def chosen_channel_path(data_dir: Path) -> Path:
    return DataDir(data_dir).chosen_channel


def _run(argv: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return done.returncode, done.stdout + done.stderr


def scan_and_choose(config: BoxConfig, data_dir: Path, channel_pinned: bool,
                    run: Runner = _run, own_mac: str | None = None) -> str | None:
    """Scan and keep the choice; what was done, in words (None: nothing to do)."""
    if not config.in_site or config.lan_mode or channel_pinned:
        return None
    options = candidates(config)
    if not options:
        return None
    run(["ip", "link", "set", config.interface, "up"])
    code, out = run(["iw", "dev", config.interface, "scan"])
    if code != 0:
        return f"no scan on {config.interface} ({out.strip()[-120:]}); channel kept"
    heard = [h for h in parse_scan(out) if own_mac is None or h.bssid != own_mac.lower()]
    preferred = config.channel if config.channel in options else options[0]
    chosen = choose(options, heard, config.wifi_name, preferred)
    path = chosen_channel_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text().strip() != str(chosen):
        path.write_text(f"{chosen}\n")
    neighbours = sorted({h.channel for h in heard if h.ssid == config.wifi_name})
    return (f"channel {chosen} chosen after a scan on {config.interface} (this site's other "
            f"boxes heard on {neighbours or 'no channel'}, {len(heard)} networks in all)")
