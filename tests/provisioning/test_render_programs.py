"""Rendered configs, checked by the real programs that will read them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from provisioning_programs import need, run, write

from provisioning import render
from provisioning.config import BoxConfig, parse_config

SECRET = "s3cr3t-turn-secret-for-tests-0123456789"

CONFIGS = {
    "defaults": BoxConfig(),
    "wpa2-5ghz": parse_config(
        "wifi_name = Camp Kitchen\nwifi_passphrase = correct horse battery\n"
        "country = DE\nband = 5\nchannel = 44\n"
    ),
    "odd-values": parse_config(
        "box_name = boat-7\nwifi_name = “Ré # Boot 🚢 ”\n"
        "wifi_passphrase = '  pa#ss \"quoted\" = x'\ncountry = US\nchannel = 11\n"
        "interface = wlan1\nnetwork = 192.168.77.0/26\n"
        "dhcp_range = 192.168.77.20 - 192.168.77.40\n"
        "ssh_authorized_key = ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIGXkS2Db1bP2BuRSsbZ1jaq4X4Ms8bOhhz1KzGSWTY5e me@x\n"
    ),
    "hotspot-and-lan": parse_config("uplink = on\nuplink_interface = eth1\n"),
}


@pytest.fixture(params=sorted(CONFIGS))
def config(request: pytest.FixtureRequest) -> BoxConfig:
    return CONFIGS[request.param]


def test_rendering_is_deterministic(config: BoxConfig) -> None:
    assert render.render_all(config, SECRET) == render.render_all(config, SECRET)


def test_hostapd_keeps_clients_visible_to_each_other_and_sets_the_country() -> None:
    text = render.render_hostapd(CONFIGS["wpa2-5ghz"])
    lines = set(text.splitlines())
    assert {"ap_isolate=0", "country_code=DE", "ieee80211d=1", "hw_mode=a", "channel=44"} <= lines
    assert {"wpa=2", "wpa_key_mgmt=WPA-PSK", "rsn_pairwise=CCMP"} <= lines
    assert f"ssid2={b'Camp Kitchen'.hex()}" in lines
    assert "correct horse" not in text


def test_open_network_has_no_wpa_and_no_country_without_one() -> None:
    lines = render.render_hostapd(BoxConfig()).splitlines()
    assert "wpa=0" in lines
    assert not any(line.startswith(("wpa_psk", "country_code", "ieee80211d")) for line in lines)


def test_wpa_psk_matches_the_ieee_802_11i_test_vector() -> None:
    expected = "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
    assert render.wpa_psk("password", "IEEE") == expected


def test_dnsmasq_answers_every_name_with_the_box_and_sends_option_114() -> None:
    lines = render.render_dnsmasq(CONFIGS["odd-values"]).splitlines()
    assert "address=/#/192.168.77.1" in lines
    assert "interface=wlan1" in lines
    assert "dhcp-range=192.168.77.20,192.168.77.40,255.255.255.192,12h" in lines
    assert 'dhcp-option=114,"https://192.168.77.1/captive-portal/api"' in lines
    assert render.CAPTIVE_PORTAL_API_PATH == "/captive-portal/api"


def test_coturn_uses_the_shared_secret_and_relays_only_inside_the_hotspot() -> None:
    lines = render.render_turnserver(CONFIGS["odd-values"], SECRET).splitlines()
    assert "use-auth-secret" in lines
    assert f"static-auth-secret={SECRET}" in lines
    assert "listening-ip=192.168.77.1" in lines
    assert "denied-peer-ip=0.0.0.0-255.255.255.255" in lines
    assert "allowed-peer-ip=192.168.77.0-192.168.77.63" in lines
    low, high = render.TURN_RELAY_PORTS
    assert f"min-port={low}" in lines and f"max-port={high}" in lines
    assert high - low < 1024


def test_ssh_port_is_open_only_with_a_key() -> None:
    assert "22," not in render.render_nftables(BoxConfig())
    assert "{ 22, 53, 80, 443, 3478 }" in render.render_nftables(CONFIGS["odd-values"])
    assert render.AUTHORIZED_KEYS in render.render_all(CONFIGS["odd-values"], SECRET)
    assert render.AUTHORIZED_KEYS not in render.render_all(BoxConfig(), SECRET)


# --- the real programs


def test_dnsmasq_accepts_the_config(config: BoxConfig, tmp_path: Path) -> None:
    dnsmasq = need("dnsmasq")
    conf = write(tmp_path, "dnsmasq.conf", render.render_dnsmasq(config, tmp_path / "leases"))
    result = run([dnsmasq, "--test", f"--conf-file={conf}"])
    assert result.returncode == 0, result.stderr
    assert "syntax check OK" in result.stderr


def test_dnsmasq_check_does_catch_mistakes(tmp_path: Path) -> None:
    dnsmasq = need("dnsmasq")
    conf = write(tmp_path, "bad.conf", render.render_dnsmasq(BoxConfig()) + "dhcp-rnage=1\n")
    assert run([dnsmasq, "--test", f"--conf-file={conf}"]).returncode != 0


def _nft_check(path: Path) -> subprocess.CompletedProcess[str]:
    nft = need("nft")
    result = run([nft, "-c", "-f", str(path)])
    if "Operation not permitted" in result.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN (run the tests as root)")
    return result


def test_nft_accepts_the_ruleset(config: BoxConfig, tmp_path: Path) -> None:
    result = _nft_check(write(tmp_path, "ahoy.nft", render.render_nftables(config)))
    assert result.returncode == 0, result.stderr


def test_nft_check_does_catch_mistakes(tmp_path: Path) -> None:
    broken = render.render_nftables(BoxConfig()).replace("redirect to", "redirekt to")
    assert _nft_check(write(tmp_path, "bad.nft", broken)).returncode != 0


def _start_hostapd(conf: Path) -> str:
    """hostapd has no check mode: start it and collect what it says until it gives up.

    On a machine without a Wi-Fi radio (CI) it fails at the driver or the
    interface, which comes after the whole file was parsed.
    """
    hostapd = need("hostapd")
    try:
        result = run([hostapd, "-d", str(conf)], timeout=5)
        return result.stdout + result.stderr
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        return out.decode() if isinstance(out, bytes) else out


def test_hostapd_parses_the_config_and_stops_only_at_the_missing_radio(
    config: BoxConfig, tmp_path: Path
) -> None:
    if Path("/sys/class/net", config.interface, "wireless").exists():
        pytest.skip(f"{config.interface} is a real radio here; not starting an AP on it")
    output = _start_hostapd(write(tmp_path, "hostapd.conf", render.render_hostapd(config)))
    assert "errors found in configuration file" not in output, output
    assert not re.search(r"^Line \d+:", output, flags=re.M), output
    assert re.search(r"nl80211|Could not read interface|interface", output), output
    if config.country:
        assert f"country_code={config.country}" in render.render_hostapd(config)


def test_hostapd_does_report_a_bad_line(tmp_path: Path) -> None:
    text = render.render_hostapd(BoxConfig()) + "chanel=6\n"
    output = _start_hostapd(write(tmp_path, "bad.conf", text))
    assert "unknown configuration item 'chanel'" in output


def test_render_cli_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    source = write(tmp_path, "ahoy.txt", "wifi_passphrase = correct horse\ncountry = DE\n")
    repo = Path(__file__).resolve().parents[2]
    argv = [
        sys.executable, "-m", "provisioning", "render", "--config", str(source),
        "--out", str(tmp_path / "out"),
    ]
    first = subprocess.run(argv, cwd=repo, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    snapshot = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    second = subprocess.run(argv, cwd=repo, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    assert "wrote" not in second.stdout
    assert {p: p.read_bytes() for p in snapshot} == snapshot
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"hostapd.conf", "dnsmasq.conf", "nftables.nft", "turnserver.conf"} <= names


WIFI_UPLINKS = {
    "wpa2": "hotspot = off\nuplink_wifi_name = Ship's Wi-Fi \"deck\" #2 }\n"
            "uplink_wifi_passphrase = pa#ss \"quoted\" = } x\ncountry = NO\n",
    "open": "hotspot = off\nuplink_wifi_name = Crew 🚢\nuplink_interface = wlan1\n",
}


def _wpa_supplicant_reads(path: Path) -> subprocess.CompletedProcess[str]:
    """wpa_supplicant parsing `path` (the interface does not exist, so it goes no further)."""
    wpa_supplicant = need("wpa_supplicant")
    return run([wpa_supplicant, "-D", "wired", "-i", "ahoy-no-such0", "-c", str(path)],
               timeout=20)


@pytest.mark.parametrize("name", sorted(WIFI_UPLINKS))
def test_wpa_supplicant_reads_the_wifi_uplink(name: str, tmp_path: Path) -> None:
    config = parse_config(WIFI_UPLINKS[name])
    text = render.render_wpa_supplicant(config)
    # The name in hex and the passphrase as its key: nothing typed reaches the file.
    assert config.uplink_wifi_name.encode().hex() in text
    assert "quoted" not in text and "Ship" not in text
    result = _wpa_supplicant_reads(write(tmp_path, "wpa.conf", text))
    output = result.stdout + result.stderr
    assert "Successfully initialized wpa_supplicant" in output, output
    assert "Failed to read or parse configuration" not in output, output


def test_the_wpa_supplicant_check_does_catch_mistakes(tmp_path: Path) -> None:
    config = parse_config(WIFI_UPLINKS["wpa2"])
    broken = render.render_wpa_supplicant(config).replace("psk=", "psk=X")
    result = _wpa_supplicant_reads(write(tmp_path, "bad.conf", broken))
    assert "Failed to read or parse configuration" in result.stdout + result.stderr


# --- Wi-Fi Enhanced Open (docs/config.md, "Private over the air")

OWE = parse_config("wifi_name = Harbour\ninterface = wlx00c0ca123456\nnetwork = 10.9.0.0/24\n")


def test_enhanced_open_adds_a_hidden_owe_network_and_bridges_both() -> None:
    text = render.render_hostapd(OWE, enhanced_open=True)
    main, owe = text.split("\nbss=", 1)
    owe_name = "wlx00c0ca12_owe"
    assert len(owe_name) <= 15 and owe.startswith(owe_name + "\n")
    assert {"wpa=0", f"owe_transition_ifname={owe_name}", "bridge=br-ahoy",
            "ignore_broadcast_ssid=0"} <= set(main.splitlines())
    assert {"wpa=2", "wpa_key_mgmt=OWE", "rsn_pairwise=CCMP", "ieee80211w=2",
            "ignore_broadcast_ssid=1", "ap_isolate=0", "bridge=br-ahoy",
            "owe_transition_ifname=wlx00c0ca123456"} <= set(owe.splitlines())


def test_with_enhanced_open_every_service_is_on_the_bridge() -> None:
    files = render.render_all(OWE, SECRET, enhanced_open=True)
    assert "interface=br-ahoy" in files["dnsmasq.conf"].splitlines()
    assert "Name=br-ahoy" in files["ahoy-hotspot.network"].splitlines()
    nft = files["nftables.nft"]
    assert 'iifname != "br-ahoy" accept' in nft and 'iifname "br-ahoy" drop' in nft
    assert "wlx00c0ca123456" not in nft
    plain = render.render_all(OWE, SECRET)
    assert "bridge=" not in plain["hostapd.conf"] and "OWE" not in plain["hostapd.conf"]
    assert "interface=wlx00c0ca123456" in plain["dnsmasq.conf"].splitlines()


def test_a_wifi_password_means_wpa2_and_no_bridge() -> None:
    config = parse_config("wifi_passphrase = correct horse battery\n"
                          "open_network_encryption = owe\n")
    files = render.render_all(config, SECRET, enhanced_open=True)
    assert "OWE" not in files["hostapd.conf"] and "wpa_key_mgmt=WPA-PSK" in files["hostapd.conf"]
    assert "br-ahoy" not in "".join(files.values())


def test_dnsmasq_and_nft_accept_the_bridged_configs(tmp_path: Path) -> None:
    dnsmasq = need("dnsmasq")
    conf = write(tmp_path, "dnsmasq.conf", render.render_dnsmasq(OWE, tmp_path / "leases", True))
    result = run([dnsmasq, "--test", f"--conf-file={conf}"])
    assert result.returncode == 0 and "syntax check OK" in result.stderr, result.stderr
    result = _nft_check(write(tmp_path, "ahoy.nft", render.render_nftables(OWE, True)))
    assert result.returncode == 0, result.stderr


def test_hostapd_parses_both_networks_of_enhanced_open(tmp_path: Path) -> None:
    output = _start_hostapd(write(tmp_path, "hostapd.conf",
                                  render.render_hostapd(OWE, enhanced_open=True)))
    assert "errors found in configuration file" not in output, output
    assert not re.search(r"^Line \d+:", output, flags=re.M), output
    assert "num_bss=2" in output, output  # both networks were read
    assert re.search(r"nl80211|Could not read interface|interface", output), output
