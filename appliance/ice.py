"""ICE servers for phones: the box's STUN, and TURN with short-lived credentials.

coturn's `use-auth-secret` (the TURN REST API scheme) accepts a username
`<expiry>:<user>` with the password base64(HMAC-SHA1(secret, username)), so
the service can mint credentials without talking to coturn.
"""

from __future__ import annotations

import ipaddress
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


def on_the_uplink(urls: tuple[str, ...], hotspot_address: str, uplink_address: str,
                  addresses: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Beside the hotspot: the box's STUN/TURN URLs (made at the hotspot's address) for a
    phone on the existing network, at the uplink's address now (the hotspot's address is
    no use there: nothing routes the network to it)."""
    moved = tuple(u.replace(f":{hotspot_address}:", f":{uplink_address}:", 1) for u in urls)
    return at_current_address(moved, uplink_address, addresses)


def on_the_hotspot(address: str, hotspot_network: str | None) -> bool:
    """Whether a phone at `address` came over the hotspot (or the box itself, or unknown)
    rather than over the existing network beside it."""
    if not address or hotspot_network is None:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip in ipaddress.ip_network(hotspot_network)


def at_current_address(urls: tuple[str, ...], started_at: str,
                       addresses: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """LAN mode: the box's STUN/TURN URLs at the uplink's address now.

    The URLs name the address the uplink had when the service started (or
    `<box_name>.local` if it had none yet); DHCP may have given another since
    (the network watcher keeps `addresses` current). Unchanged while that first
    address is still there, or while the uplink has no IPv4 address.
    """
    ipv4 = [a.split("/")[0] for a in addresses if ":" not in a]
    if not ipv4 or started_at in ipv4:
        return urls
    return tuple(u.replace(f":{started_at}:", f":{ipv4[0]}:", 1) for u in urls)

