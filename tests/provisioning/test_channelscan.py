"""A site box's channel chosen by scanning (provisioning.channelscan), and kept.

There is no radio on this machine: the scan output below has the shape `iw dev wlan0
scan` prints (trimmed); the real scan between simulated radios runs in
`make site-vm-test` (image/sitevm/inside.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from provisioning import channelscan, configstore

SCAN = """\
BSS 02:00:00:00:00:00(on wlan1)
\tTSF: 1791113734 usec (0d, 00:29:51)
\tfreq: 2412.0
\tbeacon interval: 100 TUs
\tsignal: -30.00 dBm
\tSSID: Ahoy-ship
\tDS Parameter set: channel 1
BSS 02:00:00:00:05:00(on wlan1)
\tfreq: 2437
\tsignal: -60.00 dBm
\tSSID: Galley printer
BSS 02:00:00:00:06:00(on wlan1)
\tfreq: 2462
\tSSID: Ahoy-ship
BSS 02:00:00:00:07:00(on wlan1)
\tfreq: 5180
\tSSID: Bridge
"""

SITE = "site_name = ship\ninterface = wlan1\ncountry = DE\n"


def test_the_scan_is_read_as_access_points_with_their_channels() -> None:
    heard = channelscan.parse_scan(SCAN)
    assert [(h.bssid, h.channel, h.ssid) for h in heard] == [
        ("02:00:00:00:00:00", 1, "Ahoy-ship"), ("02:00:00:00:05:00", 6, "Galley printer"),
        ("02:00:00:00:06:00", 11, "Ahoy-ship"), ("02:00:00:00:07:00", 36, "Bridge")]


def test_the_channel_with_no_box_of_the_site_wins_even_over_the_box_ids_choice() -> None:
    heard = channelscan.parse_scan(SCAN)
    assert channelscan.choose((1, 6, 11), heard, "Ahoy-ship", preferred=1) == 6


def test_fewer_other_networks_decide_then_the_box_ids_channel() -> None:
    heard = [channelscan.Heard("02:00:00:00:09:00", 1, "Cafe")]
    assert channelscan.choose((1, 6, 11), heard, "Ahoy-ship", preferred=1) == 6
    assert channelscan.choose((1, 6, 11), [], "Ahoy-ship", preferred=11) == 11


class Radio:
    """Stands in for `ip` and `iw` with what a radio answered (none here)."""

    def __init__(self, scan: str, code: int = 0) -> None:
        self.scan, self.code, self.calls = scan, code, []  # type: ignore[var-annotated]

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        return (self.code, self.scan) if argv[:2] == ["iw", "dev"] else (0, "")


def _config(tmp_path: Path, text: str = SITE) -> tuple[Path, Path]:
    boot = tmp_path / "ahoy.txt"
    boot.write_text(text)
    return boot, tmp_path / "data"


def test_a_site_box_keeps_the_scanned_channel_and_its_config_uses_it(tmp_path: Path) -> None:
    boot, data = _config(tmp_path)
    config = configstore.read_config(boot, data, mac="02:00:00:00:01:00",
                                     interface_problem=lambda _: None).config
    radio = Radio(SCAN)
    said = channelscan.scan_and_choose(config, data, configstore.channel_pinned(boot), run=radio,
                                       own_mac="02:00:00:00:01:00")
    assert said is not None and "channel 6" in said
    assert ["iw", "dev", "wlan1", "scan"] in radio.calls
    assert (data / "site" / "channel").read_text() == "6\n"
    again = configstore.read_config(boot, data, mac="02:00:00:00:01:00",
                                    interface_problem=lambda _: None).config
    assert again.channel == 6


def test_a_channel_in_ahoy_txt_is_never_scanned_nor_replaced(tmp_path: Path) -> None:
    boot, data = _config(tmp_path, SITE + "channel = 11\n")
    (data / "site").mkdir(parents=True)
    (data / "site" / "channel").write_text("6\n")
    config = configstore.read_config(boot, data, mac="02:00:00:00:01:00",
                                     interface_problem=lambda _: None).config
    assert config.channel == 11
    radio = Radio(SCAN)
    assert channelscan.scan_and_choose(config, data, configstore.channel_pinned(boot),
                                       run=radio) is None
    assert radio.calls == []


def test_a_box_alone_does_not_scan(tmp_path: Path) -> None:
    boot, data = _config(tmp_path, "interface = wlan1\n")
    config = configstore.read_config(boot, data, mac="02:00:00:00:01:00",
                                     interface_problem=lambda _: None).config
    radio = Radio(SCAN)
    assert channelscan.scan_and_choose(config, data, False, run=radio) is None
    assert radio.calls == []


def test_a_scan_that_cannot_run_keeps_the_last_choice(tmp_path: Path) -> None:
    boot, data = _config(tmp_path)
    (data / "site").mkdir(parents=True)
    (data / "site" / "channel").write_text("11\n")
    config = configstore.read_config(boot, data, mac="02:00:00:00:01:00",
                                     interface_problem=lambda _: None).config
    said = channelscan.scan_and_choose(config, data, False,
                                       run=Radio("command failed: Operation not supported", 161))
    assert said is not None and "kept" in said
    assert config.channel == 11 and (data / "site" / "channel").read_text() == "11\n"
