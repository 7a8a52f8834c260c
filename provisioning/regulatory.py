"""Which countries exist and which Wi-Fi channels an Ahoy box may use there.

A compact, deliberately conservative table: it lists only channels that need
no radar detection (DFS), because a hotspot that goes silent for a minute to
listen for radar is worse than one on a slightly busier channel, and 149-165
only where they may be used at full power.
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

# The sets below were derived from wireless-regdb 2026.05.30 (Debian bookworm's
# /lib/firmware/regulatory.db, which the kernel enforces): a channel is listed
# only where its whole 20 MHz lies in a rule without the DFS or NO-IR flag.
# tests/provisioning/test_regulatory_table.py checks them against the
# installed database. Countries missing from the database get the world
# rules: 2.4 GHz channels 1 to 11, no 5 GHz.

# Where 2.4 GHz channels 12 and 13 may be used too.
_24GHZ_1_TO_13 = frozenset(
    """
    AD AE AF AI AL AM AR AT AU AW AZ BA BB BD BE BF BG BH BL BN BO BR BS BT BW BY BZ
    CA CF CH CI CL CN CO CR CU CX CY CZ DE DK DZ EC EE EG ES ET FI FO FR GB GE GF GH
    GI GL GP GR GT GY HK HN HR HU ID IE IL IM IN IR IS IT JM JO JP KE KH KN KP KR KW
    KY KZ LB LC LI LK LS LT LU LV MA MC MD ME MF MK MN MO MQ MR MT MU MV MW MX MY NA
    NG NL NO NP NZ OM PA PE PF PG PH PK PL PM PT PY QA RE RO RS RU RW SA SE SG SI SK
    SM SN SR SV SX SY TC TD TH TN TR TT TW TZ UA UG UY UZ VA VC VE VN VU WF WS YE YT
    ZA ZW
    """.split()
)
# The database marks all of 2.4 GHz as radar-detection-only here: no hotspot.
_24GHZ_NONE = frozenset({"TG"})

# Where 5 GHz channels 36-48 (UNII-1) may be used.
_5GHZ_LOW = frozenset(
    """
    AD AE AF AI AL AR AS AT AU AW AZ BA BB BE BF BG BL BM BN BR BS BT BW BY CA CF CH
    CI CL CN CO CR CX CY CZ DE DK DM DO DZ EE EG ES ET FI FM FO FR GB GD GE GF GH GI
    GL GP GR GT GU GY HK HN HR HT HU ID IE IL IM IN IR IS IT JM JO JP KE KH KN KP KR
    KW KY KZ LB LC LI LK LS LT LU LV MA MC MD ME MF MH MK MN MO MP MQ MR MT MU MV MW
    MX MY NA NI NL NO NP NZ OM PA PE PF PG PH PL PM PR PT PW PY QA RE RO RS RU RW SA
    SE SG SI SK SM SN SR SV SX SY TC TD TH TN TR TT TW TZ UA UG US UY UZ VA VC VE VI
    VN VU WF WS YT ZA ZW
    """.split()
)

# Where 5 GHz channels 149-165 (UNII-3) may also be used at 20 dBm or more.
# (Most of Europe allows them at only 14 dBm, too weak for a hotspot.)
_5GHZ_HIGH = frozenset(
    """
    AE AR AS AU BB BF BM BN BR BS CA CF CI CL CN CO CR CX DM DO FM GB GD GH GT GU GY
    HK HN HT IN JM JO KR KY KZ LB MH MN MO MP MU MV MX MY NI NP NZ PA PE PG PH PR PW
    PY RU RW SG SN SV TC TH TT TW UA UG US UY VE VI VN VU
    """.split()
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
        if country in _24GHZ_NONE:
            return ()
        if country in _24GHZ_1_TO_13:
            return tuple(range(1, 14))
        return CHANNELS_24_WORLD
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
