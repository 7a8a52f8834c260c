"""The captive portal over HTTP, with Flask's test client: probes, pages, the RFC 8908 API."""

from __future__ import annotations

import plistlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.app import create_app
from appliance.portal import KINDLE_PAGE
from appliance.portalweb import PortalState, is_local_address, neighbour_mac, portal_of
from appliance.settings import Settings
from provisioning import render
from provisioning.config import parse_config
from provisioning.tls import ensure_certificates

PHONE = "10.42.0.50"
PORTAL = "http://10.42.0.1/portal"
ANDROID_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 Chrome/120 Mobile"
IPHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
APPLE_SUCCESS = b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"

PROBES = [
    pytest.param("connectivitycheck.gstatic.com", "/generate_204", 204, b"", None, id="android"),
    pytest.param("clients3.google.com", "/generate_204", 204, b"", None, id="android-clients3"),
    pytest.param("www.google.com", "/gen_204", 204, b"", None, id="android-gen204"),
    pytest.param("captive.apple.com", "/hotspot-detect.html", 200, APPLE_SUCCESS, "text/html",
                 id="apple"),
    pytest.param("captive.apple.com", "/library/test/success.html", 200, APPLE_SUCCESS,
                 "text/html", id="apple-library"),
    pytest.param("www.msftconnecttest.com", "/connecttest.txt", 200, b"Microsoft Connect Test",
                 "text/plain", id="windows"),
    pytest.param("www.msftncsi.com", "/ncsi.txt", 200, b"Microsoft NCSI", "text/plain",
                 id="windows-ncsi"),
    pytest.param("detectportal.firefox.com", "/canonical.html", 200,
                 b'<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>',
                 "text/html", id="firefox"),
    pytest.param("detectportal.firefox.com", "/success.txt", 200, b"success\n", "text/plain",
                 id="firefox-success"),
    pytest.param("nmcheck.gnome.org", "/check_network_status.txt", 200,
                 b"NetworkManager is online\n", "text/plain", id="networkmanager"),
    pytest.param("ping.archlinux.org", "/nm-check.txt", 200, b"NetworkManager is online\n",
                 "text/plain", id="networkmanager-arch"),
    pytest.param("fedoraproject.org", "/static/hotspot.txt", 200, b"OK\n", "text/plain",
                 id="networkmanager-fedora"),
    pytest.param("connectivity-check.ubuntu.com", "/", 204, b"", None, id="ubuntu"),
    pytest.param("spectrum.s3.amazonaws.com", "/kindle-wifi/wifistub.html", 200, KINDLE_PAGE,
                 "text/html", id="kindle"),
]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(Settings(data_dir=tmp_path / "data", box_name="deck"))
    macs: dict[str, str] = {}
    app.extensions["ahoy.portal"] = PortalState(mac_of=macs.get,
                                                is_local_address=lambda _: False)
    app.config["macs"] = macs
    yield app
    app.extensions["ahoy"].hub.store.close()


def phone(app: Flask, ip: str = PHONE, agent: str = ANDROID_UA) -> FlaskClient:
    client = app.test_client()
    client.environ_base.update(REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)
    return client


def get(client: FlaskClient, url: str, **kwargs: Any) -> Any:
    parts = urlsplit(url)
    return client.get(parts.path or "/", headers={"Host": parts.netloc, **kwargs})


def tap_continue(client: FlaskClient, origin: str | None = "http://10.42.0.1",
                 portal: str = PORTAL) -> Any:
    page = get(client, portal)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce, page.text
    headers = {"Host": urlsplit(portal).netloc}
    if origin is not None:
        headers["Origin"] = origin
    return client.post("/portal/continue", data={"nonce": nonce.group(1)}, headers=headers)


@pytest.mark.parametrize(("host", "path", "status", "body", "content_type"), PROBES)
def test_probe_is_redirected_to_the_portal_before_continue(
    app: Flask, host: str, path: str, status: int, body: bytes, content_type: str | None
) -> None:
    answer = get(phone(app), f"http://{host}{path}")
    assert answer.status_code == 302
    assert answer.headers["Location"] == PORTAL
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("host", "path", "status", "body", "content_type"), PROBES)
def test_probe_gets_its_exact_success_answer_after_continue(
    app: Flask, host: str, path: str, status: int, body: bytes, content_type: str | None
) -> None:
    client = phone(app)
    assert tap_continue(client).status_code == 303
    answer = get(client, f"http://{host}{path}")
    assert answer.status_code == status
    assert answer.data == body
    assert answer.headers.get("Content-Type") == content_type
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Location" not in answer.headers


def test_probes_answer_head_requests_too(app: Flask) -> None:
    client = phone(app)
    tap_continue(client)
    answer = client.head("/hotspot-detect.html", headers={"Host": "captive.apple.com"})
    assert answer.status_code == 200 and answer.data == b""


def test_continue_counts_for_that_phone_only(app: Flask) -> None:
    tap_continue(phone(app, "10.42.0.50"))
    other = get(phone(app, "10.42.0.51"), "http://connectivitycheck.gstatic.com/generate_204")
    assert other.status_code == 302


def test_a_phone_known_by_mac_keeps_its_acceptance_with_a_new_address(app: Flask) -> None:
    app.config["macs"].update({"10.42.0.50": "02:aa:bb:cc:dd:ee", "10.42.0.99": "02:aa:bb:cc:dd:ee"})
    tap_continue(phone(app, "10.42.0.50"))
    renewed = get(phone(app, "10.42.0.99"), "http://connectivitycheck.gstatic.com/generate_204")
    assert renewed.status_code == 204


@pytest.mark.parametrize("url", ["http://example.org/", "http://example.org/news?id=3",
                                 "http://203.0.113.7/", "http://www.msftconnecttest.com/redirect"])
def test_a_foreign_site_leads_to_the_portal_before_and_the_app_after(app: Flask, url: str) -> None:
    client = phone(app)
    assert get(client, url).headers["Location"] == PORTAL
    tap_continue(client)
    after = get(client, url)
    assert after.status_code == 302 and after.headers["Location"] == "http://10.42.0.1/"


@pytest.mark.parametrize("host", ["10.42.0.1", "10.42.0.1:80", "ahoy.internal", "AHOY.INTERNAL.",
                                  "deck.local", "localhost:8080", "127.0.0.1:8080"])
def test_the_box_own_names_reach_the_app_without_continue(app: Flask, host: str) -> None:
    answer = phone(app).get("/", headers={"Host": host})
    assert answer.status_code == 200
    assert b"<html" in answer.data.lower()


def test_another_address_of_the_box_itself_is_not_redirected(app: Flask) -> None:
    portal_of(app).is_local_address = lambda address: address == "192.168.1.20"
    assert phone(app).get("/", headers={"Host": "192.168.1.20"}).status_code == 200
    assert phone(app).get("/", headers={"Host": "192.168.1.21"}).status_code == 302


def test_continue_goes_to_the_connected_page_with_a_full_page_navigation(app: Flask) -> None:
    client = phone(app)
    accepted = tap_continue(client)
    assert accepted.status_code == 303
    assert accepted.headers["Location"] == "/portal/connected"
    page = get(client, "http://10.42.0.1/portal/connected")
    assert page.status_code == 200
    assert "You&#39;re connected to deck" in page.text
    # Once in, the portal address shows the same help page.
    assert "You&#39;re connected" in get(client, PORTAL).text


def test_the_connected_page_needs_continue_first(app: Flask) -> None:
    answer = get(phone(app), "http://10.42.0.1/portal/connected")
    assert answer.status_code == 302 and answer.headers["Location"] == "/portal"


def test_continue_without_the_form_nonce_is_refused(app: Flask) -> None:
    client = phone(app)
    refused = client.post("/portal/continue", data={}, headers={"Host": "10.42.0.1",
                                                                "Origin": "http://10.42.0.1"})
    assert refused.status_code == 403
    assert "Tap Continue again" in refused.text
    assert 'name="nonce"' in refused.text  # a fresh form to try again with
    assert get(client, "http://captive.apple.com/hotspot-detect.html").status_code == 302


def test_a_nonce_from_another_phone_does_not_accept(app: Flask) -> None:
    page = get(phone(app, "10.42.0.60"), PORTAL)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce
    client = phone(app)
    refused = client.post("/portal/continue", data={"nonce": nonce.group(1)},
                          headers={"Host": "10.42.0.1", "Origin": "http://10.42.0.1"})
    assert refused.status_code == 403
    assert get(client, "http://captive.apple.com/hotspot-detect.html").status_code == 302


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://10.42.0.1.evil.example",
                                    "ftp://10.42.0.1"])
def test_continue_from_another_origin_is_refused(app: Flask, origin: str) -> None:
    client = phone(app)
    assert tap_continue(client, origin=origin).status_code == 403
    assert get(client, "http://captive.apple.com/hotspot-detect.html").status_code == 302


@pytest.mark.parametrize("origin", [None, "http://10.42.0.1", "https://10.42.0.1",
                                    "http://ahoy.internal", "http://localhost:8080"])
def test_continue_from_the_box_or_without_origin_is_accepted(app: Flask, origin: str | None) -> None:
    assert tap_continue(phone(app), origin=origin).status_code == 303


def test_the_portal_page_is_small_escaped_and_script_free(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", box_name='<script>alert("x")</script>'))
    app.extensions["ahoy.portal"] = PortalState(mac_of=lambda _: None,
                                                is_local_address=lambda _: False)
    client = phone(app)
    welcome = get(client, PORTAL)
    tap_continue(client)
    for agent in (ANDROID_UA, IPHONE_UA, "curl/8"):
        connected = client.get("/portal/connected", headers={"Host": "10.42.0.1",
                                                             "User-Agent": agent})
        for page in (welcome, connected):
            assert page.status_code == 200
            assert "<script" not in page.text
            assert "&lt;script&gt;" in page.text
            assert len(page.data) < 8000
            assert "prefers-color-scheme:dark" in page.text
            assert 'name="viewport"' in page.text
            # The Continue form's POST must carry a real Origin, not "null".
            assert page.headers["Referrer-Policy"] == "same-origin"
            assert page.headers["Cache-Control"] == "no-store"
    app.extensions["ahoy"].hub.store.close()


def test_android_gets_an_intent_link_and_the_ca_file(app: Flask) -> None:
    client = phone(app, agent=ANDROID_UA)
    tap_continue(client)
    page = get(client, "http://10.42.0.1/portal/connected").text
    assert 'href="intent://10.42.0.1/#Intent;scheme=http;end"' in page
    assert 'href="/ca.crt"' in page
    assert "https://10.42.0.1" in page
    assert "mobile data" in page and "Wi-Fi" in page
    assert "camera and microphone" in page


def test_iphone_is_told_to_tap_done_and_open_safari_and_gets_the_profile(app: Flask) -> None:
    client = phone(app, agent=IPHONE_UA)
    tap_continue(client)
    page = get(client, "http://10.42.0.1/portal/connected").text
    assert "Done" in page and "Safari" in page and "10.42.0.1" in page
    assert 'href="/ahoy.mobileconfig"' in page
    assert "full trust" in page
    assert "https://10.42.0.1" in page
    assert "mobile data" in page
    assert "intent://" not in page


def test_addresses_on_the_page_follow_the_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", box_address="10.77.0.1", http_port=8080,
                        https_port=8443)
    app = create_app(settings)
    app.extensions["ahoy.portal"] = PortalState(mac_of=lambda _: None,
                                                is_local_address=lambda _: False)
    client = phone(app)
    probe = get(client, "http://connectivitycheck.gstatic.com/generate_204")
    assert probe.headers["Location"] == "http://10.77.0.1:8080/portal"
    assert tap_continue(client, origin="http://10.77.0.1:8080",
                        portal="http://10.77.0.1:8080/portal").status_code == 303
    page = client.get("/portal/connected", headers={"Host": "10.77.0.1:8080"}).text
    assert "intent://10.77.0.1:8080/#Intent;scheme=http;end" in page
    assert "https://10.77.0.1:8443" in page
    app.extensions["ahoy"].hub.store.close()


def test_captive_portal_api_says_whether_this_phone_is_held(app: Flask) -> None:
    api = urlsplit(render.captive_portal_api_url(parse_config(""))).path
    client = phone(app)
    before = client.get(api, headers={"Host": "10.42.0.1"})
    assert before.status_code == 200
    assert before.headers["Content-Type"] == "application/captive+json"
    assert before.headers["Cache-Control"] == "no-store"
    assert before.get_json() == {"captive": True, "user-portal-url": "https://10.42.0.1/portal"}
    tap_continue(client)
    after = client.get(api, headers={"Host": "10.42.0.1"}).get_json()
    assert after["captive"] is False
    assert 0 < after["seconds-remaining"] <= 24 * 3600


def test_ios_profile_holds_the_box_ca(app: Flask) -> None:
    settings = app.extensions["ahoy"].settings
    assert phone(app).get("/ahoy.mobileconfig", headers={"Host": "10.42.0.1"}).status_code == 404
    paths = ensure_certificates(settings.tls_dir, "deck", ["ahoy.internal"], ["10.42.0.1"])
    answer = phone(app).get("/ahoy.mobileconfig", headers={"Host": "10.42.0.1"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/x-apple-aspen-config"
    profile = plistlib.loads(answer.data)
    assert profile["PayloadContent"][0]["PayloadType"] == "com.apple.security.root"
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    assert profile["PayloadContent"][0]["PayloadContent"] == ca.public_bytes(
        serialization.Encoding.DER)


def test_websocket_and_api_on_the_box_are_untouched(app: Flask) -> None:
    assert phone(app).get("/healthz", headers={"Host": "10.42.0.1"}).status_code == 200
    assert phone(app).get("/api/info", headers={"Host": "ahoy.internal"}).status_code == 200


def test_neighbour_table_gives_the_mac_of_complete_entries(tmp_path: Path) -> None:
    table = tmp_path / "arp"
    table.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "10.42.0.50       0x1         0x2         02:AA:bb:cc:dd:ee     *        wlan0\n"
        "10.42.0.51       0x1         0x0         00:00:00:00:00:00     *        wlan0\n"
    )
    assert neighbour_mac("10.42.0.50", table) == "02:aa:bb:cc:dd:ee"
    assert neighbour_mac("10.42.0.51", table) is None
    assert neighbour_mac("10.42.0.52", table) is None
    assert neighbour_mac("10.42.0.50", tmp_path / "missing") is None


@pytest.mark.parametrize(("address", "local"), [("127.0.0.1", True), ("203.0.113.7", False),
                                                ("example.org", False), ("::1", True)])
def test_local_address_check(address: str, local: bool, skip_without_ipv6: Callable[[], None]) -> None:
    if address == "::1":
        skip_without_ipv6()
    assert is_local_address(address) is local


@pytest.fixture
def skip_without_ipv6() -> Callable[[], None]:
    def check() -> None:
        import socket

        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
                s.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")

    return check


def test_all_portal_words_live_in_one_place() -> None:
    """Templates hold markup only; every English word is in portalweb.TEXT."""
    folder = Path(__file__).resolve().parents[2] / "appliance" / "templates" / "portal"
    for template in folder.glob("*.html"):
        source = template.read_text()
        for pattern in (r"<style>.*?</style>", r"\{\{.*?\}\}", r"\{%.*?%\}", r"<[^>]*>"):
            source = re.sub(pattern, " ", source, flags=re.S)
        assert not re.search(r"[A-Za-z]", source), (template.name, source.strip())


def test_wifi_passphrase_is_shown_only_to_phones_on_the_hotspot(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", box_name="ahoy", wifi_ssid="Harbour",
                        wifi_passphrase="seagull-42", hotspot_network="10.42.0.0/24")
    app = create_app(settings)

    def wifi_seen_from(address: str) -> dict[str, Any]:
        client = app.test_client()
        reply = client.get("/api/info", environ_base={"REMOTE_ADDR": address})
        assert reply.status_code == 200
        wifi: dict[str, Any] = reply.get_json()["wifi"]
        return wifi

    assert wifi_seen_from("10.42.0.57") == {"ssid": "Harbour", "passphrase": "seagull-42",
                                            "open": False}
    assert wifi_seen_from("127.0.0.1")["passphrase"] == "seagull-42"
    assert wifi_seen_from("192.168.1.20") == {"ssid": "Harbour", "passphrase": None,
                                              "open": False}
    assert wifi_seen_from("10.43.0.5")["passphrase"] is None


def test_the_connected_page_says_what_each_address_means_in_one_line(app: Flask) -> None:
    client = phone(app)
    tap_continue(client)
    page = get(client, "http://10.42.0.1/portal/connected").text
    http_line = re.search(r'<p data-choice="http">([^<]*)</p>', page)
    https_line = re.search(r'<p data-choice="https">([^<]*)</p>', page)
    assert http_line and https_line
    assert http_line.group(1).startswith("10.42.0.1 (plain)") and "calls do not" in http_line.group(1)
    assert https_line.group(1).startswith("https://10.42.0.1 (secure)")
    assert "chat and calls" in https_line.group(1)
    assert "same person" in page


def test_the_portal_greets_with_the_wifi_name_people_just_picked(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", box_name="ahoy",
                              wifi_ssid="Camp Kitchen ⛺"))
    client = phone(app)
    page = get(client, "http://10.42.0.1/portal").text
    assert "<title>Welcome to Camp Kitchen ⛺</title>" in page
    assert "<h1>Welcome to Camp Kitchen ⛺</h1>" in page
    assert "Welcome to ahoy" not in page
    tap_continue(client)
    assert "connected to Camp Kitchen ⛺" in get(client, "http://10.42.0.1/portal/connected").text


@pytest.mark.parametrize(("passphrase", "said"), [(None, True), ("seagull-42", False)])
def test_the_portal_says_plainly_what_an_open_network_means(
        tmp_path: Path, passphrase: str | None, said: bool) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", wifi_ssid="Harbour",
                              wifi_passphrase=passphrase))
    client = phone(app)
    tap_continue(client)
    page = get(client, "http://10.42.0.1/portal/connected").text
    assert ("This Wi-Fi has no password" in page) is said
    if said:
        assert "can read what you send over the plain address 10.42.0.1" in page
        assert "set a Wi-Fi password on the admin page" in page
