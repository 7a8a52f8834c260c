"""When the hotspot offers Wi-Fi Enhanced Open: the setting, and what the radio says about
itself (docs/config.md, "Private over the air"). The hotspot itself is tested in the VM
test (image/vmtest: an OWE phone and an old open phone on simulated radios)."""

from __future__ import annotations

import pytest

from provisioning.config import ConfigError, parse_config
from provisioning.wireless import access_points_at_once, offers_enhanced_open, radio_owe_problem

# Shaped like `iw phy <phy> info` of a mac80211 radio (mac80211_hwsim, trimmed).
MAC80211 = """Wiphy phy0
\twiphy index: 0
\tDevice supports AP-side u-APSD.
\tSupported Ciphers:
\t\t* WEP40 (00-0f-ac:1)
\t\t* CCMP-128 (00-0f-ac:4)
\t\t* CMAC (00-0f-ac:6)
\tSupported interface modes:
\t\t * managed
\t\t * AP
\t\t * AP/VLAN
\t\t * mesh point
\tvalid interface combinations:
\t\t * #{ managed } <= 1, #{ AP, mesh point } <= 2048, #{ P2P-client, P2P-GO } <= 1,
\t\t   total <= 2048, #channels <= 1, STA/AP BI must match
\tHT Capability overrides:
\t\t * MCS: ff ff ff ff ff ff ff ff ff ff
"""
NO_PMF = MAC80211.replace("\t\t* CMAC (00-0f-ac:6)\n", "")
ONE_AT_A_TIME = MAC80211.split("\tvalid interface combinations:")[0]
STATION_AND_ONE_AP = MAC80211.replace("#{ AP, mesh point } <= 2048", "#{ AP } <= 1").replace(
    "total <= 2048", "total <= 2")
NO_AP = MAC80211.replace("\t\t * AP\n", "")


def test_a_mac80211_radio_with_pmf_and_two_access_points_can() -> None:
    assert radio_owe_problem("wlan1", ap_sme=False, iw_info=MAC80211) is None
    assert access_points_at_once(MAC80211) == 2048


@pytest.mark.parametrize(("ap_sme", "info", "words"), [
    (True, MAC80211, "associates phones in its own firmware"),  # brcmfmac, the Pi's own
    (False, NO_PMF, "cannot protect management frames"),
    (False, ONE_AT_A_TIME, "one network at a time"),
    (False, STATION_AND_ONE_AP, "one network at a time"),
    (False, NO_AP, "cannot be an access point"),
])
def test_radios_that_cannot_say_why(ap_sme: bool, info: str, words: str) -> None:
    problem = radio_owe_problem("wlan0", ap_sme=ap_sme, iw_info=info)
    assert problem is not None and words in problem and "wlan0" in problem


@pytest.mark.parametrize(("text", "radio_can", "offered"), [
    ("", True, True),  # auto, and the radio can
    ("", False, False),  # auto, and it cannot (or nobody knows)
    ("open_network_encryption = owe\n", False, True),
    ("open_network_encryption = off\n", True, False),
    ("wifi_passphrase = correct horse battery\n", True, False),  # WPA2 instead
    ("wifi_passphrase = correct horse battery\nopen_network_encryption = owe\n", True, False),
    ("hotspot = off\n", True, False),  # LAN mode: no hotspot of ours
])
def test_the_setting_and_the_radio_decide(text: str, radio_can: bool, offered: bool) -> None:
    config = parse_config(text)
    assert offers_enhanced_open(config, lambda _: None if radio_can else "no") is offered


@pytest.mark.parametrize(("written", "value"), [
    ("auto", "auto"), ("OWE", "owe"), ("on", "owe"), ("Enhanced Open", "owe"),
    ("off", "off"), ("none", "off"), ("", "auto"),
])
def test_the_values_of_open_network_encryption(written: str, value: str) -> None:
    assert parse_config(f"open_network_encryption = {written}\n").open_network_encryption == value


def test_a_wrong_value_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("open_network_encryption = wpa3\n")
    assert "open_network_encryption must be auto, owe or off, not 'wpa3'" in str(caught.value)


def test_the_service_watches_and_lists_phones_on_the_bridge_with_enhanced_open() -> None:
    from appliance.__main__ import _hotspot_link

    assert _hotspot_link(parse_config("open_network_encryption = owe\n")) == "br-ahoy"
    assert _hotspot_link(parse_config("open_network_encryption = off\n")) == "wlan0"
    assert _hotspot_link(parse_config("interface = wlan1\nwifi_passphrase = abcdefgh\n")) == "wlan1"
