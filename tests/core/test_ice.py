from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from appliance.ice import at_current_address, ice_servers


def test_no_ice_servers_in_development() -> None:
    assert ice_servers((), (), None, "u_1", 1000, 3600) == []


def test_turn_credentials_follow_coturn_use_auth_secret() -> None:
    servers = ice_servers(("stun:10.42.0.1:3478",), ("turn:10.42.0.1:3478?transport=udp",),
                          "s3cret", "u_1", 1000, 3600)
    assert servers[0] == {"urls": ["stun:10.42.0.1:3478"]}
    turn = servers[1]
    assert turn["username"] == "4600:u_1"
    expected = base64.b64encode(hmac.new(b"s3cret", b"4600:u_1", hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected


def test_in_lan_mode_the_ice_servers_follow_the_uplinks_address_after_a_new_dhcp_lease(
    tmp_path: Path
) -> None:
    from appliance.app import create_app
    from appliance.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", lan_mode=True, box_address="192.168.1.20",
                        stun_urls=("stun:192.168.1.20:3478",),
                        turn_urls=("turn:192.168.1.20:3478?transport=udp",
                                   "turn:192.168.1.20:3478?transport=tcp"),
                        turn_secret="s3cret")
    box = create_app(settings).extensions["ahoy"]

    def urls() -> list[str]:
        return [u for server in box.hub.ice_servers("u_1") for u in server["urls"]]

    assert urls()[0] == "stun:192.168.1.20:3478"
    # What the network watcher writes when the router's DHCP hands out another address.
    box.status["hotspot"] = {"interface": "eth0", "up": True,
                             "addresses": ["fe80::1", "192.168.1.57"]}
    assert urls() == ["stun:192.168.1.57:3478", "turn:192.168.1.57:3478?transport=udp",
                      "turn:192.168.1.57:3478?transport=tcp"]
    box.status["hotspot"]["addresses"] = []  # cable out: the last known URLs stay
    assert urls()[0] == "stun:192.168.1.20:3478"


def test_on_the_hotspot_the_ice_servers_stay_at_the_box_address(tmp_path: Path) -> None:
    from appliance.app import create_app
    from appliance.settings import Settings

    box = create_app(Settings(data_dir=tmp_path / "data", stun_urls=("stun:10.42.0.1:3478",),
                              )).extensions["ahoy"]
    box.status["hotspot"] = {"interface": "wlan0", "up": True, "addresses": ["10.99.0.5"]}
    assert box.hub.ice_servers("u_1") == [{"urls": ["stun:10.42.0.1:3478"]}]


def test_a_name_at_the_start_is_replaced_by_the_address_the_uplink_got() -> None:
    assert at_current_address(("stun:deck.local:3478",), "deck.local", ["10.0.0.9/24"]) == (
        "stun:10.0.0.9:3478",)


def test_beside_the_hotspot_each_phone_is_told_the_box_address_on_its_own_side(
    tmp_path: Path
) -> None:
    from appliance.app import create_app
    from appliance.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", box_address="10.42.0.1",
                        hotspot_network="10.42.0.0/24", uplink_interface="eth0",
                        uplink_address="192.168.77.120",
                        stun_urls=("stun:10.42.0.1:3478",),
                        turn_urls=("turn:10.42.0.1:3478?transport=udp",),
                        turn_secret="s3cret")
    box = create_app(settings).extensions["ahoy"]

    def urls(address: str) -> list[str]:
        return [u for server in box.hub.ice_servers("u_1", address) for u in server["urls"]]

    assert urls("10.42.0.57") == ["stun:10.42.0.1:3478", "turn:10.42.0.1:3478?transport=udp"]
    assert urls("127.0.0.1") == urls("") == urls("10.42.0.57")  # the box itself, unknown
    on_the_ship = ["stun:192.168.77.120:3478", "turn:192.168.77.120:3478?transport=udp"]
    assert urls("192.168.77.50") == on_the_ship
    assert urls("::ffff:192.168.77.50") == on_the_ship
    # The ship's DHCP server hands the box another address: phones there follow it, the
    # hotspot's do not.
    box.status["uplink"] = {"interface": "eth0", "up": True, "addresses": ["192.168.77.133"]}
    assert urls("192.168.77.50")[0] == "stun:192.168.77.133:3478"
    assert urls("10.42.0.57")[0] == "stun:10.42.0.1:3478"


def test_the_welcome_names_the_ice_servers_for_the_connections_address(
    tmp_path: Path
) -> None:
    import json

    from appliance.app import create_app
    from appliance.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", box_address="10.42.0.1",
                        hotspot_network="10.42.0.0/24", uplink_interface="eth0",
                        uplink_address="192.168.77.120", stun_urls=("stun:10.42.0.1:3478",))
    hub = create_app(settings).extensions["ahoy"].hub
    sent: dict[str, list[dict[str, object]]] = {}
    for name, address in (("Ana", "10.42.0.57"), ("Ben", "192.168.77.50")):
        peer = type("Peer", (), {"send": lambda self, m, n=name: sent.setdefault(n, []).append(
            json.loads(json.dumps(m))), "close": lambda self, code, reason: None})()
        hub.connect(peer, address)
        hub.handle(peer, json.dumps({"type": "hello", "name": name}))
        hub.handle(peer, json.dumps({"type": "ice"}))
    for name, where in (("Ana", "10.42.0.1"), ("Ben", "192.168.77.120")):
        welcome = next(m for m in sent[name] if m["type"] == "welcome")
        ice = next(m for m in sent[name] if m["type"] == "ice")
        assert welcome["ice_servers"] == ice["ice_servers"] == [
            {"urls": [f"stun:{where}:3478"]}]


def test_beside_the_hotspot_an_uplink_without_an_address_at_start_is_named_until_it_has_one(
) -> None:
    from appliance.ice import on_the_uplink

    urls = ("stun:10.42.0.1:3478", "turn:10.42.0.1:3478?transport=tcp")
    assert on_the_uplink(urls, "10.42.0.1", "deck.local", []) == (
        "stun:deck.local:3478", "turn:deck.local:3478?transport=tcp")
    assert on_the_uplink(urls, "10.42.0.1", "deck.local", ["192.168.77.9/24"]) == (
        "stun:192.168.77.9:3478", "turn:192.168.77.9:3478?transport=tcp")
