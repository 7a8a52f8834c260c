"""A config file nobody meant keeps the last good config; empty values mean what the docs say.

An empty `ahoy.txt` (a save or a copy cut short, a power cut on FAT) used to
give an open network and replace the last good config. (A 0-byte one is now put back
from the copy the box keeps on its data partition; here there is no copy.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from provisioning import configstore
from provisioning.config import (
    EMPTY_MEANS_NONE,
    KEYS,
    BoxConfig,
    ConfigError,
    decode_config,
    format_config,
    parse_config,
)
from provisioning.datadir import DataDir

REPO = Path(__file__).resolve().parents[2]
GOOD = b"wifi_name = Good Boat\r\nwifi_passphrase = correct horse\r\nchannel = 11\r\n"
UNMEANT = {
    "empty": (b"", "the file is empty (0 bytes)"),
    "blank": (b"  \r\n\t\r\n", "the file is blank"),
    "only a byte-order mark": (b"\xef\xbb\xbf", "the file is blank"),
    "only a UTF-16 byte-order mark": (b"\xff\xfe", "the file is blank"),
    "zeros after a power cut": (GOOD[:20] + b"\x00" * 492, "binary data"),
    "cut inside a letter": ("wifi_name = Café".encode()[:-1], "not UTF-8 text"),
    "cut inside a quoted value": (b'wifi_passphrase = "correct hor', "does not end with one"),
    "not text": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
}


@pytest.mark.parametrize("case", sorted(UNMEANT))
def test_a_file_nobody_meant_keeps_the_last_good_config_and_shows_why(
    boot: Path, data: Path, case: str
) -> None:
    content, reason = UNMEANT[case]
    boot.write_bytes(GOOD)
    good = configstore.load_config(boot, data, mac="b8:27:eb:12:3f:2a")
    assert good.ok and good.config.wifi_passphrase == "correct horse"
    remembered = DataDir(data).last_good_config.read_bytes()
    # Without the copy on the data partition: a 0-byte file is otherwise put back
    # from it (test_config_store.py), the other cases never are.
    DataDir(data).boot_file_copy.unlink()

    boot.write_bytes(content)
    loaded = configstore.load_config(boot, data, mac="b8:27:eb:12:3f:2a")

    assert loaded.source == "last-good"
    assert loaded.config.wifi_passphrase == "correct horse"  # not an open network
    assert (loaded.config.wifi_name, loaded.config.channel) == ("Good Boat", 11)
    assert DataDir(data).last_good_config.read_bytes() == remembered
    assert len(loaded.errors) == 1 and reason in loaded.errors[0], loaded.errors
    # Shown where config problems are shown: the admin page reads the status,
    # the service (and its red LED) reads the same errors.
    assert configstore.read_status(data)["errors"] == list(loaded.errors)
    assert configstore.read_config(boot, data).errors == loaded.errors


def test_an_empty_file_at_the_first_start_gives_the_safe_defaults_and_says_why(
    boot: Path, data: Path
) -> None:
    boot.write_bytes(b"")
    loaded = configstore.load_config(boot, data, mac="b8:27:eb:12:3f:2a")
    assert loaded.source == "defaults"
    assert loaded.config == BoxConfig(wifi_name="Ahoy-3F2A")
    assert "the file is empty (0 bytes)" in loaded.errors[0]
    assert not DataDir(data).last_good_config.exists()


def test_an_emptied_last_good_config_is_not_taken_for_the_defaults(
    boot: Path, data: Path
) -> None:
    boot.write_bytes(b"channel = 99\n")
    DataDir(data).last_good_config.parent.mkdir(parents=True)
    DataDir(data).last_good_config.write_bytes(b"")
    loaded = configstore.read_config(boot, data, mac="b8:27:eb:12:3f:2a")
    assert loaded.source == "defaults"
    assert loaded.config.wifi_name == "Ahoy-3F2A"


def test_admin_page_changes_to_an_emptied_file_go_on_top_of_the_last_good_config(
    boot: Path, data: Path
) -> None:
    boot.write_bytes(GOOD)
    configstore.load_config(boot, data)
    boot.write_bytes(b"")
    configstore.request_changes(data, {"channel": "1"})
    loaded = configstore.load_config(boot, data)
    assert loaded.ok, loaded.errors
    assert (loaded.config.wifi_name, loaded.config.channel) == ("Good Boat", 1)
    assert loaded.config.wifi_passphrase == "correct horse"


def test_check_refuses_an_empty_file_in_words(tmp_path: Path) -> None:
    path = tmp_path / "ahoy.txt"
    path.write_bytes(b"")
    done = subprocess.run([sys.executable, "-m", "provisioning", "check", "--config", str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert done.returncode == 1
    assert "the file is empty (0 bytes)" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_of_only_notes_is_meant_and_gives_the_defaults() -> None:
    text = decode_config(b"# my box: all defaults\r\n")
    assert parse_config(text) == BoxConfig()


# --- empty values, key by key


def _empty(key: str, quoted: bool = False) -> BoxConfig:
    return parse_config(f'{key} = ""\n' if quoted else f"{key} =\n",
                        mac="b8:27:eb:12:3f:2a")


DEFAULTS = parse_config("", mac="b8:27:eb:12:3f:2a")
NONE = {"status_led_pins": (), "button_pin": None, "default_room": None}


@pytest.mark.parametrize("key", sorted(set(KEYS) - set(EMPTY_MEANS_NONE)))
@pytest.mark.parametrize("quoted", [False, True])
def test_an_empty_value_means_the_keys_default(key: str, quoted: bool) -> None:
    assert _empty(key, quoted) == DEFAULTS


@pytest.mark.parametrize("key", sorted(EMPTY_MEANS_NONE))
@pytest.mark.parametrize("quoted", [False, True])
def test_an_empty_pin_means_no_pin_like_none(key: str, quoted: bool) -> None:
    assert getattr(_empty(key, quoted), key) == NONE[key]
    assert getattr(parse_config(f"{key} = none\n"), key) == NONE[key]
    assert getattr(DEFAULTS, key) != NONE[key]


def test_the_empty_channel_follows_the_band_and_the_empty_range_the_network() -> None:
    config = parse_config("band = 5\ncountry = DE\nchannel =\nnetwork = 192.168.50.0/24\n"
                          "dhcp_range =\n")
    assert config.channel == 36
    assert str(config.dhcp_range[0]) == "192.168.50.10"


def test_no_pins_survive_the_last_good_config() -> None:
    config = parse_config("status_led_pins = none\nbutton_pin = none\n")
    assert parse_config(format_config(config)) == config
    assert "status_led_pins = none" in format_config(config)


def test_the_docs_name_exactly_the_keys_whose_empty_value_is_not_the_default() -> None:
    text = (REPO / "docs" / "config.md").read_text()
    bullet = re.search(r"^- An empty value.*?(?=^- )", text, flags=re.M | re.S)
    assert bullet is not None, "docs/config.md lost its rule for empty values"
    exceptions = bullet.group(0).split("except", 1)[1]
    named = {k for k in re.findall(r"`([a-z_]+)`", exceptions) if k in KEYS}
    differ = set()
    for key in KEYS:
        try:
            if _empty(key) != DEFAULTS:
                differ.add(key)
        except ConfigError:
            differ.add(key)
    assert named == differ == set(EMPTY_MEANS_NONE)
