"""The admin overview's network cards: LAN mode's addresses and a site's link."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from admintest import Admin
from flask import Flask

from appliance.box import box_of


def test_lan_mode_shows_the_addresses_to_open_with_qr_codes_instead_of_a_wifi(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(dev=True, lan_mode=True, box_name="deckbox", http_port=80)
    box_of(app).status["hotspot"] = {"interface": "eth0", "up": True,
                                     "addresses": ["192.168.77.120", "fe80::1"]}
    admin = Admin(app)
    assert admin.login().status_code == 200
    data = admin.get("/admin/api/dashboard").json
    assert data["wifi"] is None
    urls = [link["url"] for link in data["lan"]["links"]]
    assert urls == ["http://deckbox.local/", "http://192.168.77.120/"]
    assert unquote(data["lan"]["links"][1]["qr_url"]).endswith("text=http://192.168.77.120/")


def test_a_box_alone_shows_no_lan_card_and_no_site(admin: Admin) -> None:
    data = admin.get("/admin/api/dashboard").json
    assert data["lan"] is None and data["site_link"] is None and data["wifi"]


def test_a_box_of_a_site_shows_the_link_and_keeps_it_out_of_the_hotspot_facts(
    box_admin: tuple[Flask, Admin],
) -> None:
    app, admin = box_admin
    link: dict[str, Any] = {"boxes": 1, "alone": False, "text": "connected to 1 other box",
                            "peers": [{"name": "deck-4"}], "problems": [], "mesh": None}
    box_of(app).status["site_link"] = link
    data = admin.get("/admin/api/dashboard").json
    assert data["site_link"] == link
    assert "site_link" not in data["hotspot"]


def test_beside_the_hotspot_the_overview_shows_the_wifi_and_the_networks_addresses(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(dev=True, box_name="deckbox", http_port=80, uplink_interface="eth0",
                   uplink_address="192.168.77.120", wifi_ssid="Deck", wifi_passphrase="")
    admin = Admin(app)
    assert admin.login().status_code == 200
    data = admin.get("/admin/api/dashboard").json
    assert data["wifi"]["ssid"] == "Deck"  # the hotspot, with its QR code
    assert data["lan"]["beside_hotspot"] and data["lan"]["interface"] == "eth0"
    assert data["lan"]["addresses"] == []  # no lease yet: the card says so
    box_of(app).status["uplink"] = {"interface": "eth0", "up": True,
                                    "addresses": ["192.168.77.120", "fe80::1"]}
    data = admin.get("/admin/api/dashboard").json
    urls = [link["url"] for link in data["lan"]["links"]]
    assert urls == ["http://deckbox.local/", "http://192.168.77.120/"]
    assert unquote(data["lan"]["links"][1]["qr_url"]).endswith("text=http://192.168.77.120/")
