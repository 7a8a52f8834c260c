"""The box config file: parsing, validation and the messages people see."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning import regulatory, sitenet
from provisioning.config import (
    KEYS,
    MAX_FILE_BYTES,
    BoxConfig,
    ConfigError,
    decode_config,
    decode_with_codec,
    format_config,
    parse_config,
    set_values,
    wifi_name_for_mac,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "provisioning" / "ahoy.txt.example"
ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGXkS2Db1bP2BuRSsbZ1jaq4X4Ms8bOhhz1KzGSWTY5e "
    "me@laptop"
)


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.messages


def only_error(text: str) -> str:
    messages = errors_of(text)
    assert len(messages) == 1, messages
    return messages[0]


def test_no_settings_give_a_working_open_hotspot_named_after_the_mac() -> None:
    config = parse_config("", mac="b8:27:eb:12:3f:2a")
    assert config.wifi_name == "Ahoy-3F2A"
    assert config.is_open_network
    assert config.box_address == IPv4Address("10.42.0.1")
    assert config.dhcp_range == (IPv4Address("10.42.0.10"), IPv4Address("10.42.0.254"))
    assert (config.band, config.channel, config.interface) == ("2.4", 6, "wlan0")


def test_the_template_parses_to_the_defaults_and_every_key_in_it_is_valid() -> None:
    text = EXAMPLE.read_text()
    assert parse_config(text) == BoxConfig()
    examples = re.findall(r"^# ([a-z_]+) =(.*)$", text, flags=re.M)
    assert {key for key, _ in examples} == set(KEYS)
    # The Wi-Fi uplink's keys are for LAN mode, which the other examples are not.
    lan_only = ("uplink_wifi_name", "uplink_wifi_passphrase")
    uncommented = "\n".join(
        f"{key} ={value}" for key, value in examples
        if key not in ("ssh_authorized_key", *lan_only)
    )
    parse_config(uncommented + "\nssh_authorized_key = " + ED25519)
    parse_config("hotspot = off\n" + "\n".join(
        f"{key} ={value}" for key, value in examples if key in lan_only))


def test_windows_editing_crlf_bom_and_curly_quotes_are_understood() -> None:
    data = "\ufeffwifi_name = “Camp Kitchen ”\r\nWiFi-Passphrase = 'correct horse'\r\n"
    config = parse_config(decode_config(data.encode("utf-8")))
    assert config.wifi_name == "Camp Kitchen "
    assert config.wifi_passphrase == "correct horse"


def test_notepad_unicode_utf16_is_read() -> None:
    data = "country = DE\r\nchannel = 13\r\n".encode("utf-16")
    assert parse_config(decode_config(data)).channel == 13


def test_old_mac_line_endings_count_lines_right() -> None:
    assert only_error("box_name = a\rchannel = x\r").startswith("line 2: channel")


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    messages = errors_of(
        "wifi_passphrase = short\nchanel = 6\ncountry = UK\nnetwork = 8.8.8.0/24\n"
    )
    assert messages == [
        "line 1: wifi_passphrase must be 8 to 63 characters (it has 5); "
        "leave it empty for an open network",
        "line 2: unknown key 'chanel'; did you mean channel?",
        "line 3: country 'UK' is not an ISO 3166 code; did you mean GB?",
        "line 4: network must be a private range inside 10.0.0.0/8, 172.16.0.0/12 or "
        "192.168.0.0/16; 8.8.8.0/24 is not",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ssid = Boat", "line 1: unknown key 'ssid'; did you mean wifi_name?"),
        ("wifi_name = " + "é" * 17, "line 1: wifi_name must be 1 to 32 bytes"),
        ("wifi_passphrase = " + "x" * 64, "line 1: wifi_passphrase must be 8 to 63 characters"),
        ("wifi_passphrase = pässwörter", "line 1: wifi_passphrase may use only plain ASCII"),
        ("country = XX", "line 1: country must be a two-letter ISO 3166 code"),
        ("band = 6", "line 1: band must be 2.4 or 5"),
        ("channel = six", "line 1: channel must be a whole number such as 6"),
        ("channel = 6 # my favourite", "comments go on their own line"),
        ("country = US\nchannel = 13", "line 2: channel 13 is not allowed on 2.4 GHz in US"),
        ("channel = 12", "line 1: channel 12 is not allowed on 2.4 GHz without a country"),
        ("band = 5", "line 1: band 5 needs a country"),
        ("country = JP\nband = 5\nchannel = 149", "line 3: channel 149 is not allowed on 5 GHz"),
        ("country = CD\nband = 5", "band 5 is not available for country CD"),
        ("country = TG", "band 2.4 is not available for country TG in Ahoy's channel table"),
        ("channel = 36", "(or set band = 5)"),
        ("network = 10.42.0.0", "network needs a size after a slash"),
        ("network = 10.0.0.0/8", "network size must be between /16 and /28"),
        ("network = 100.64.0.0/24", "network must be a private range"),
        ("network = bogus", "network must be an IPv4 network"),
        ("hotspot = maybe", "hotspot must be on or off, not 'maybe'"),
        ("uplink_address = 192.168.1.20", "uplink_address must be dhcp, or the box's address"),
        ("uplink_address = 192.168.1.0/24", "is the network's own or broadcast address"),
        ("uplink_gateway = 192.168.1.1", "uplink_gateway is only used with a fixed"),
        ("uplink_address = 192.168.1.20/24\nuplink_gateway = 10.0.0.1",
         "uplink_gateway 10.0.0.1 must be inside the uplink's network 192.168.1.0/24"),
        ("uplink_interface = lo", "uplink_interface lo is the loopback interface"),
        ("uplink_wifi_name = Ship", "uplink_wifi_name is for joining an existing network: set "
         "hotspot = off too (LAN mode), or uplink = on"),
        ("hotspot = off\nuplink = off", "line 2: hotspot = off and uplink = off leave the box on "
         "no network"),
        ("uplink = on\nuplink_interface = wlan0", "line 2: uplink_interface wlan0 is also the "
         "hotspot's interface: one interface cannot make the hotspot and join the network"),
        ("uplink = on\nuplink_wifi_name = Ship", "uplink_interface wlan0 is also the hotspot's"),
        ("interface = wlan1\nuplink = on\nuplink_interface = wlan1",
         "uplink_interface wlan1 is also the hotspot's interface"),
        ("uplink = on\nuplink_address = 10.42.0.9/16", "uplink_address 10.42.0.9/16 overlaps the "
         "hotspot's network 10.42.0.0/24"),
        ("uplink = on\nsite_name = ship", "uplink = on beside the hotspot and site_name cannot"),
        ("uplink = maybe", "uplink must be on or off, not 'maybe'"),
        ("hotspot = off\nuplink_wifi_passphrase = deck two password",
         "uplink_wifi_passphrase is the password of the Wi-Fi network named by"),
        ("hotspot = off\nuplink_wifi_name = Ship\nuplink_wifi_passphrase = short",
         "line 3: uplink_wifi_passphrase must be 8 to 63 characters"),
        ("hotspot = off\nuplink_wifi_name = " + "é" * 17, "uplink_wifi_name must be 1 to 32"),
        ("backbone_interface = eth0/x", "backbone_interface must be a network interface name"),
        ("hotspot = off\nsite_name = ship", "hotspot = off (LAN mode) and site_name cannot"),
        ("dhcp_range = 10.42.1.10 - 10.42.1.20", "must lie inside network 10.42.0.0/24"),
        ("dhcp_range = 10.42.0.1 - 10.42.0.20", "must not include the box's own address"),
        ("dhcp_range = 10.42.0.50 - 10.42.0.20", "must start before it ends"),
        ("dhcp_range = 10.42.0.50 - 10.42.0.255", "broadcast address"),
        ("box_name = my boat", "box_name may use only letters a-z, digits and hyphens"),
        ("box_name = -boat", "must not start or end with a hyphen"),
        ("interface = wlan0/../x", "interface must be a network interface name"),
        ("admin_password = short", "admin_password must be at least 8 characters"),
        ("retention_days = -1", "retention_days must be a whole number"),
        ("retention_days = 4000", "retention_days must be between 0 and 3650"),
        ("retention_messages = 1e6", "retention_messages must be a whole number"),
        ("status_led_pins = 17, 40", "'40' is not a GPIO number"),
        ("status_led_pins = 17, 27, 22", "at most two pins"),
        ("button_pin = 17", "GPIO 17 is used twice"),
        ("ssh_authorized_key = hello", "ssh_authorized_key must be one public key line"),
        ("ssh_authorized_key = ssh-ed25519 AAAA!!", "bad base64"),
        ("ssh_authorized_key = ssh-rsa " + ED25519.split()[1], "does not match its type"),
        ('wifi_name = "Boat', "wifi_name starts with a quote but does not end with one"),
        ("channel: 6", "line 1: expected key = value, found 'channel: 6' (use key = value)"),
        ("box_name = a\nbox_name = b", "line 2: box_name is already set on line 1"),
        ("box_name = a\x07b", "line 1: contains control characters"),
        ("pass = secret12", "known keys are"),
        ("site_name = MV Hope", "site_name may use only letters a-z, digits and hyphens"),
        ("site_name = " + "a" * 33, "site_name must be at most 32 characters"),
        ("site_secret = too short", "site_secret must be 16 to 128 characters (it has 9)"),
        ("site_secret = sixteen chars ü ok", "site_secret may use only plain ASCII"),
        ("site_peers = 10.99.0.2:99999", "the port in '10.99.0.2:99999' must be a number"),
        ("site_peers = 10.99.0.2, bad_host!", "'bad_host!' is not an address or a host name"),
        ("site_peers = 127.0.0.1", "cannot be another box"),
        ("site_peers = " + ",".join(f"10.0.0.{i}" for i in range(1, 40)), "at most 32"),
        ("site = boat", "did you mean site_name?"),
    ],
)
def test_each_mistake_gets_a_clear_message_naming_line_and_key(text: str, expected: str) -> None:
    assert expected in only_error(text)


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("band = 5 GHz\ncountry = de", "country", "DE"),
        ("band = 5GHz\ncountry = US\nchannel = 149", "channel", 149),
        ("band = 2,4", "band", "2.4"),
        ("box_name = Boat-1", "box_name", "boat-1"),
        ("network = 192.168.7.1/24", "network", IPv4Network("192.168.7.0/24")),
        ("network = 172.16.5.0/28", "dhcp_range", (IPv4Address("172.16.5.2"),
                                                   IPv4Address("172.16.5.14"))),
        ("status_led_pins = GPIO5 GPIO6", "status_led_pins", (5, 6)),
        ("status_led_pins = none\nbutton_pin = off", "button_pin", None),
        ("retention_messages = 50_000", "retention_messages", 50000),
        ("wifi_passphrase =", "wifi_passphrase", ""),
        ("# channel = 99\n; comment\n\n   \nchannel = 11", "channel", 11),
        ("Channel = 1", "channel", 1),
        ("ssh_authorized_key = " + ED25519, "ssh_authorized_key", ED25519),
        ("site_name = MV-Hope", "site_name", "mv-hope"),
        ("site_peers = 10.99.0.2, Box-3.local:4333; [fd00::2]  10.99.0.2",
         "site_peers", ("10.99.0.2:4222", "box-3.local:4333", "[fd00::2]:4222")),
        ("site_peers =", "site_peers", ()),
        ("uplink = on", "hotspot_and_uplink", True),
        ("hotspot = off", "uplink", True),
        ("hotspot = off\nuplink = yes", "hotspot_and_uplink", False),
        ("interface = wlan1\nuplink = on\nuplink_wifi_name = Ship", "uplink_interface", "wlan0"),
    ],
)
def test_forgiving_spellings_are_accepted(text: str, field: str, value: object) -> None:
    assert getattr(parse_config(text), field) == value


def test_default_channel_follows_the_band() -> None:
    assert parse_config("band = 5\ncountry = DE").channel == 36


# --- the broken-file corpus: every one gets a clear error, none a traceback


def test_huge_file_is_refused_by_size() -> None:
    with pytest.raises(ConfigError) as caught:
        decode_config(b"# " + b"x" * MAX_FILE_BYTES)
    assert "at most 64 KiB" in caught.value.messages[0]


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 4,  # random binary
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # a picture
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",  # a zip
    ],
)
def test_binary_junk_is_refused_as_not_text(data: bytes) -> None:
    with pytest.raises(ConfigError) as caught:
        decode_config(data)
    assert "binary data" in caught.value.messages[0]


def test_latin1_text_is_refused_with_a_hint_to_save_as_utf8() -> None:
    with pytest.raises(ConfigError) as caught:
        decode_config("box_name = x\nwifi_name = Café\n".encode("latin-1"))
    assert caught.value.messages == [
        "line 2: this is not UTF-8 text; save the file as UTF-8 "
        "(in Notepad: Save as, Encoding: UTF-8)"
    ]


def test_truncated_file_reports_the_cut_line() -> None:
    whole = "country = DE\nwifi_passphrase = correct horse battery\n"
    truncated = whole[: whole.index("correct") + 4]
    assert only_error(truncated).startswith("line 2: wifi_passphrase must be 8 to 63")


def test_truncated_utf8_sequence_is_reported() -> None:
    data = "wifi_name = Café".encode()[:-1]
    with pytest.raises(ConfigError) as caught:
        decode_config(data)
    assert "not UTF-8" in caught.value.messages[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("channel = true", "channel must be a whole number"),
        ("retention_days = 30 days", "retention_days must be a whole number"),
        ("band = [2.4, 5]", "band must be 2.4 or 5"),
        ("button_pin = yes", "not a GPIO number"),
        ("network = 10.42.0.0/24/8", "network must be an IPv4 network"),
        ('{"wifi_name": "Boat"}', "expected key = value"),
        ("[wifi]\nwifi_name = x", "line 1: expected key = value"),
    ],
)
def test_wrong_types_and_other_formats_are_explained(text: str, expected: str) -> None:
    assert expected in errors_of(text)[0]


# --- writing back


def test_set_values_blanks_a_secret_and_keeps_the_rest_byte_for_byte() -> None:
    text = "# my box\r\nwifi_name = Boat\r\nAdmin_Password = \"hunter22 x\"\r\n\r\n# end\r\n"
    assert set_values(text, {"admin_password": ""}) == (
        "# my box\r\nwifi_name = Boat\r\nAdmin_Password =\r\n\r\n# end\r\n"
    )


def test_set_values_adds_missing_keys_at_the_end_with_the_files_line_ends() -> None:
    assert set_values("a_comment_free = x", {}) == "a_comment_free = x"
    out = set_values("# hi\r\nchannel = 1", {"country": "DE", "channel": "6"})
    assert out == "# hi\r\nchannel = 6\r\ncountry = DE\r\n"


def test_bom_and_utf16_survive_a_rewrite() -> None:
    for data in ("\ufeffchannel = 1\r\n".encode(), "channel = 1\r\n".encode("utf-16")):
        text, codec = decode_with_codec(data)
        again = set_values(text, {"channel": "6"}).encode(codec)
        assert again[:2] == data[:2]
        assert parse_config(decode_config(again)).channel == 6


# --- properties


wifi_names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn")),
    min_size=1,
    max_size=32,
).filter(lambda s: 1 <= len(s.encode()) <= 32 and s.isprintable())
passphrases = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=8, max_size=63)


@st.composite
def configs(draw: st.DrawFn) -> BoxConfig:
    usable = [c for c in regulatory.ISO_COUNTRIES if regulatory.allowed_channels(c, "2.4")]
    country = draw(st.sampled_from(["", *sorted(usable)]))
    bands = [b for b in regulatory.BANDS if regulatory.allowed_channels(country, b)]
    band = draw(st.sampled_from(bands))
    channel = draw(st.sampled_from(regulatory.allowed_channels(country, band)))
    site_name = draw(st.sampled_from(["", "mv-hope"]))
    # A site shares its network among the boxes: at most /24, each box one slot of it.
    prefix = draw(st.integers(16, 24 if site_name else 28))
    base = draw(st.sampled_from(["10.0.0.0", "172.16.0.0", "192.168.0.0"]))
    network = IPv4Network(f"{base}/{prefix}")
    subnet = draw(st.sampled_from(sitenet.slots(network))) if site_name else network
    uplink = draw(st.sampled_from(["dhcp", IPv4Interface("192.168.1.20/24")]))
    gateway = IPv4Address("192.168.1.1") if uplink != "dhcp" and draw(st.booleans()) else None
    pins = draw(st.lists(st.integers(2, 27), min_size=0, max_size=3, unique=True))
    hotspot = bool(site_name) or draw(st.booleans())
    # Beside a hotspot, the ship's network must not overlap the hotspot's.
    beside = not site_name and (uplink == "dhcp" or not uplink.network.overlaps(network))
    return BoxConfig(
        box_name=draw(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)),
        wifi_name=draw(wifi_names),
        wifi_passphrase=draw(st.one_of(st.just(""), passphrases)),
        country=country,
        band=band,
        channel=channel,
        hotspot=hotspot,
        uplink=not hotspot or (beside and draw(st.booleans())),
        uplink_address=uplink,
        uplink_gateway=gateway,
        network=network,
        hotspot_subnet=subnet,
        dhcp_range=(subnet[2], subnet[-2]),
        admin_password="",
        retention_days=draw(st.integers(0, 3650)),
        retention_messages=draw(st.integers(0, 1_000_000)),
        status_led_pins=tuple(pins[:2]),
        button_pin=pins[2] if len(pins) > 2 else None,
        site_name=site_name,
        site_peers=draw(st.sampled_from([(), ("10.99.0.2:4222", "[fd00::2]:4333")])),
    )


@settings(max_examples=300)
@given(configs())
def test_a_written_config_reads_back_identically(config: BoxConfig) -> None:
    assert parse_config(format_config(config)) == config


@settings(max_examples=300)
@given(configs(), st.sampled_from(["\n", "\r\n", "\r"]), st.booleans())
def test_line_ends_and_bom_never_change_the_meaning(
    config: BoxConfig, newline: str, bom: bool
) -> None:
    text = format_config(config).replace("\n", newline)
    data = ("\ufeff" if bom else "").encode() + text.encode()
    assert parse_config(decode_config(data)) == config


@settings(max_examples=500)
@given(st.binary(max_size=2000))
def test_any_bytes_give_a_config_or_readable_errors(data: bytes) -> None:
    try:
        parse_config(decode_config(data))
    except ConfigError as exc:
        assert exc.messages
        assert all(isinstance(m, str) and m and "Traceback" not in m for m in exc.messages)


@settings(max_examples=500)
@given(st.text(max_size=500))
def test_any_text_gives_a_config_or_errors_that_name_a_line(text: str) -> None:
    try:
        parse_config(text)
    except ConfigError as exc:
        for message in exc.messages:
            assert re.match(r"line \d+: ", message), message


@given(st.text(min_size=1, max_size=80))
def test_a_passphrase_is_accepted_exactly_when_it_is_8_to_63_printable_ascii(
    phrase: str,
) -> None:
    valid = 8 <= len(phrase) <= 63 and all(" " <= c <= "~" for c in phrase)
    text = "wifi_passphrase = '" + phrase + "'"
    if "\n" in phrase or "\r" in phrase:
        return
    try:
        assert parse_config(text).wifi_passphrase == phrase
        assert valid
    except ConfigError as exc:
        assert not valid or any(ord(c) < 32 for c in phrase), exc.messages


@given(st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s))
def test_any_wifi_name_value_survives_set_values(name: str) -> None:
    text = set_values("# x\nwifi_name = old\n", {"wifi_name": name})
    try:
        assert parse_config(text).wifi_name == (name or "Ahoy")  # empty: the default
    except ConfigError as exc:
        # Rejected names are rejected for their content, not mangled by quoting.
        assert all("wifi_name" in m or "control characters" in m for m in exc.messages), (
            exc.messages
        )


@given(st.sampled_from(sorted(regulatory.ISO_COUNTRIES)), st.integers(1, 200))
def test_a_channel_is_accepted_exactly_when_the_table_allows_it(
    country: str, channel: int
) -> None:
    for band in regulatory.BANDS:
        allowed = regulatory.allowed_channels(country, band)
        text = f"country = {country}\nband = {band}\nchannel = {channel}"
        if channel in allowed:
            assert parse_config(text).channel == channel
        else:
            with pytest.raises(ConfigError):
                parse_config(text)


def test_channel_table_has_the_well_known_rules() -> None:
    assert regulatory.allowed_channels("US", "2.4") == tuple(range(1, 12))
    assert regulatory.allowed_channels("DE", "2.4") == tuple(range(1, 14))
    assert regulatory.allowed_channels("CD", "2.4") == tuple(range(1, 12))  # not in regdb
    assert regulatory.allowed_channels("CD", "5") == ()
    assert regulatory.allowed_channels("DE", "5") == (36, 40, 44, 48)
    assert 149 in regulatory.allowed_channels("US", "5")
    assert regulatory.allowed_channels("", "5") == ()


def test_iso_country_list_matches_the_systems_if_present() -> None:
    tab = Path("/usr/share/zoneinfo/iso3166.tab")
    if not tab.exists():
        pytest.skip("tzdata's iso3166.tab is not installed")
    codes = {
        line.split("\t")[0] for line in tab.read_text().splitlines() if not line.startswith("#")
    }
    assert codes == regulatory.ISO_COUNTRIES


def test_wifi_name_from_mac() -> None:
    assert wifi_name_for_mac("B8-27-EB-12-3F-2A") == "Ahoy-3F2A"
    assert wifi_name_for_mac(None) == "Ahoy"
    assert wifi_name_for_mac("zz") == "Ahoy"


@pytest.mark.parametrize("name", ["Crew 👩\u200d🚀", "Deck 🏳\ufe0f\u200d🌈", "Camp\u00a0A"])
def test_emoji_joined_with_zero_width_joiners_are_a_legal_wifi_name(name: str) -> None:
    assert parse_config(f'wifi_name = "{name}"', mac="b8:27:eb:12:3f:2a").wifi_name == name


@pytest.mark.parametrize("name", ["a\tb", "Boat\u202eevil", "x\u2028y", "x\u0007y"])
def test_control_characters_and_direction_overrides_are_refused_in_the_wifi_name(
        name: str) -> None:
    assert "control characters" in only_error(f'wifi_name = "{name}"')


def test_a_site_secret_is_never_written_back_or_shown_in_a_problem() -> None:
    config = parse_config("site_name = mv-hope\nsite_secret = tern gravel copper lantern\n")
    assert config.site_secret == "tern gravel copper lantern"
    assert "tern" not in repr(config)
    assert "tern" not in format_config(config.without_secrets())
    assert "tern" not in only_error("site_secret = tern gravel \x01 copper lantern x")
