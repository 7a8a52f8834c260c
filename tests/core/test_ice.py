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
