"""Which countries exist and which Wi-Fi channels an Ahoy box may use there.

A compact, deliberately conservative table: it lists only channels that need
no radar detection (DFS), because a hotspot that goes silent for a minute to
listen for radar is worse than one on a slightly busier channel. Countries not
listed for 5 GHz can still run the hotspot on 2.4 GHz.
"""

from __future__ import annotations

# ISO 3166-1 alpha-2, every officially assigned code.
ISO_COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL
    BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV
    CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD
    GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM
    IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK
    LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW
    MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR
    PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS
    ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY
    UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()
)

# Codes people write that are not ISO codes, and the code they mean.
COUNTRY_ALIASES = {"UK": "GB", "EL": "GR", "EN": "GB", "USA": "US"}

_US_TERRITORIES = {"AS", "GU", "MP", "PR", "UM", "VI"}

# Where 2.4 GHz channels 12 and 13 are not allowed (FCC rules and their followers).
_24GHZ_ONLY_1_TO_11 = frozenset({"US", "CA", "TW", "CO", "DO", "GT", "PA", "SV"} | _US_TERRITORIES)

_EU_EEA = {
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
}  # fmt: skip

# Countries where 5 GHz channels 36-48 (UNII-1, no radar detection) may be used.
_5GHZ_LOW = frozenset(
    _EU_EEA
    | _US_TERRITORIES
    | {"CH", "GB", "US", "CA", "AU", "NZ", "JP", "CN", "IN", "SG", "TW", "HK", "KR", "BR"}
    | {"MX", "MY", "PH", "TH", "ZA", "IL", "TR", "AR", "CL", "AE", "SA"}
)

# Countries where 5 GHz channels 149-165 (UNII-3) may also be used at full power.
_5GHZ_HIGH = frozenset(
    _US_TERRITORIES
    | {"US", "CA", "AU", "NZ", "CN", "IN", "SG", "TW", "HK", "BR", "MX", "MY", "PH"}
)

CHANNELS_24_WORLD = tuple(range(1, 12))  # legal everywhere, used when no country is set
CHANNELS_5_LOW = (36, 40, 44, 48)
CHANNELS_5_HIGH = (149, 153, 157, 161, 165)

BANDS = ("2.4", "5")
DEFAULT_CHANNEL = {"2.4": 6, "5": 36}


def is_country(code: str) -> bool:
    """True for an assigned ISO 3166-1 alpha-2 code (upper case)."""
    return code in ISO_COUNTRIES


def allowed_channels(country: str, band: str) -> tuple[int, ...]:
    """Channels the box may use in `country` ("" = unknown) on `band` ("2.4" or "5").

    An empty tuple means the band is not available there (or not without a country).
    """
    if band == "2.4":
        if not country or country in _24GHZ_ONLY_1_TO_11:
            return CHANNELS_24_WORLD
        return tuple(range(1, 14))
    if band == "5":
        if country not in _5GHZ_LOW:
            return ()
        if country in _5GHZ_HIGH:
            return CHANNELS_5_LOW + CHANNELS_5_HIGH
        return CHANNELS_5_LOW
    raise ValueError(f"unknown band {band!r}")


def describe_channels(channels: tuple[int, ...]) -> str:
    """A short human list such as "1 to 13" or "36, 40, 44, 48, 149, 153, 157, 161, 165"."""
    if channels and list(channels) == list(range(channels[0], channels[-1] + 1)):
        return f"{channels[0]} to {channels[-1]}"
    return ", ".join(str(c) for c in channels)


def channel_frequency_mhz(channel: int) -> int:
    """Centre frequency of a 20 MHz Wi-Fi channel."""
    if 1 <= channel <= 13:
        return 2407 + 5 * channel
    if channel == 14:
        return 2484
    return 5000 + 5 * channel
