"""The channel table against the kernel's own rules (wireless-regdb's regulatory.db)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from provisioning import regulatory

REGDB = Path("/lib/firmware/regulatory.db")
FLAG_DFS, FLAG_NO_IR = 1 << 2, 1 << 3
Rule = tuple[int, int, int, int]  # start MHz, end MHz, flags, max EIRP in mBm


def read_regdb(data: bytes) -> dict[str, list[Rule]]:
    """Country -> rules, from the binary format the kernel loads (net/wireless/reg.c)."""
    magic, version = struct.unpack(">II", data[:8])
    assert magic == 0x52474442, "not a regulatory.db"
    assert version == 20, f"unknown regulatory.db version {version}"
    countries: dict[str, list[Rule]] = {}
    offset = 8
    while True:
        alpha2, pointer = struct.unpack(">2sH", data[offset : offset + 4])
        if pointer == 0:
            return countries
        collection = pointer << 2
        header_len, n_rules = data[collection], data[collection + 1]
        first = collection + ((header_len + 1) & ~1)
        rules = []
        for i in range(n_rules):
            (rule_pointer,) = struct.unpack(">H", data[first + 2 * i : first + 2 * i + 2])
            at = rule_pointer << 2
            _, flags, eirp, start, end = struct.unpack(">BBHII", data[at : at + 12])
            rules.append((start // 1000, end // 1000, flags, eirp))
        countries[alpha2.decode()] = rules
        offset += 4


@pytest.fixture(scope="module")
def regdb() -> dict[str, list[Rule]]:
    if not REGDB.exists():
        pytest.skip("wireless-regdb is not installed (apt-get install wireless-regdb)")
    return read_regdb(REGDB.read_bytes())


def usable(rules: list[Rule], channel: int, min_eirp: int = 0) -> bool:
    """The channel's whole 20 MHz lies in one rule an access point may use."""
    centre = regulatory.channel_frequency_mhz(channel)
    return any(
        start <= centre - 10 and centre + 10 <= end
        and not flags & (FLAG_DFS | FLAG_NO_IR) and eirp >= min_eirp
        for start, end, flags, eirp in rules
    )


def test_every_channel_ahoy_offers_is_allowed_by_the_kernel(
    regdb: dict[str, list[Rule]],
) -> None:
    wrong = []
    for country in sorted(regulatory.ISO_COUNTRIES):
        rules = regdb.get(country, regdb["00"])
        for band in regulatory.BANDS:
            for channel in regulatory.allowed_channels(country, band):
                minimum = 2000 if channel in regulatory.CHANNELS_5_HIGH else 0
                if not usable(rules, channel, minimum):
                    wrong.append(f"{country} {band} GHz channel {channel}")
    assert wrong == []


def test_channels_without_a_country_are_allowed_everywhere(
    regdb: dict[str, list[Rule]],
) -> None:
    for channel in regulatory.allowed_channels("", "2.4"):
        assert usable(regdb["00"], channel)
    assert regulatory.allowed_channels("", "5") == ()


def test_most_countries_get_their_5ghz_channels(regdb: dict[str, list[Rule]]) -> None:
    # The table may lag a newer regdb, but not by much: it should still cover
    # nearly every country that allows 36-48 without radar detection.
    allowing = {c for c, rules in regdb.items() if all(usable(rules, ch) for ch in (36, 48))}
    offered = {c for c in regulatory.ISO_COUNTRIES if regulatory.allowed_channels(c, "5")}
    assert len(allowing & regulatory.ISO_COUNTRIES - offered) <= 10
