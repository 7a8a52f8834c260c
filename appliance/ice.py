"""ICE servers for phones: the box's STUN, and TURN with short-lived credentials.

coturn's `use-auth-secret` (the TURN REST API scheme) accepts a username
`<expiry>:<user>` with the password base64(HMAC-SHA1(secret, username)), so
the service can mint credentials without talking to coturn.
"""

from __future__ import annotations

from typing import Any

from provisioning.credentials import turn_credentials


def ice_servers(
    stun_urls: tuple[str, ...],
    turn_urls: tuple[str, ...],
    turn_secret: str | None,
    user_id: str,
    now_s: int,
    ttl_s: int,
) -> list[dict[str, Any]]:
    """The list for `new RTCPeerConnection({iceServers})`."""
    servers: list[dict[str, Any]] = []
    if stun_urls:
        servers.append({"urls": list(stun_urls)})
    if turn_urls and turn_secret:
        username, credential = turn_credentials(turn_secret, user_id, ttl_s, now=now_s)
        servers.append({"urls": list(turn_urls), "username": username, "credential": credential})
    return servers
