from __future__ import annotations

import base64
import hashlib
import hmac

from appliance.ice import ice_servers


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
