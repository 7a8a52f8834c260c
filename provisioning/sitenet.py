"""Addresses of a site's boxes: each box's hotspot subnet, its backbone address, its routes.

Pure: a box id, the site's address space and what the other boxes claim in,
addresses and route plans out. Discovery and netlink live in
`provisioning.backbone`.

- The box id is the site's one id for the box (`provisioning.site.box_id`: 8 hex
  digits made once on the data partition); here it is a number
  (`box_number`). It orders boxes (who keeps a subnet) and picks the first
  backbone address.
- The MAC of the hotspot's Wi-Fi adapter gives a seed (`mac_seed`), known
  before anything is written: the first hotspot subnet and the channel.
- Hotspot subnets: the site's `network` is cut into equal slots (/24 when that
  gives at least 16 of them, else 16 slots); a box starts at the slot its MAC
  seed points at. Two boxes that point at the same slot are told apart by the
  claims the boxes announce on the backbone: the lower box id keeps the slot,
  the other takes the next free one (see `choose_hotspot_subnet`).
- Backbone addresses: IPv4 link-local (169.254.1.0 - 169.254.254.255, RFC
  3927), so a bare switch or one cable between two boxes needs no DHCP server.
  The first candidate comes from the box id, and a candidate that answers an
  ARP probe (RFC 5227) is skipped (see `backbone_candidates`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

LINK_LOCAL = IPv4Network("169.254.0.0/16")
# RFC 3927 2.1: the first and last 256 addresses are reserved.
_LINK_LOCAL_FIRST = int(IPv4Address("169.254.1.0"))
_LINK_LOCAL_COUNT = 254 * 256
BACKBONE_PREFIX = 16
MIN_SLOTS = 16
SLOT_PREFIX = 24


def box_number(box: str) -> int:
    """The box id (8 hex digits, `provisioning.site.box_id`) as a number, to order boxes."""
    return int(box, 16)


def mac_seed(mac: str | None) -> int:
    """A stable 64-bit number from the MAC of the hotspot adapter; 0 without one.

    Not the box's id (that is made on the data partition, so that a factory
    reset makes a new box): only where its first subnet and channel are.
    """
    digits = re.sub(r"[^0-9a-f]", "", (mac or "").lower())
    if not digits:
        return 0
    return int.from_bytes(hashlib.sha256(bytes.fromhex(digits.zfill(12))).digest()[:8], "big")


def slot_prefix(space: IPv4Network) -> int:
    """The size of one box's hotspot subnet inside the site's `network` space."""
    return max(SLOT_PREFIX, space.prefixlen + 4)


def slots(space: IPv4Network) -> list[IPv4Network]:
    """Every hotspot subnet a box of the site may take, in order."""
    return list(space.subnets(new_prefix=slot_prefix(space)))


def default_hotspot_subnet(space: IPv4Network, mac: str | None) -> IPv4Network:
    """The slot a box starts from: chosen by its MAC alone, before it hears other boxes."""
    every = slots(space)
    return every[mac_seed(mac) % len(every)]


def choose_hotspot_subnet(
    space: IPv4Network,
    me: int,
    current: IPv4Network | None,
    claims: Mapping[IPv4Network, int],
) -> IPv4Network:
    """The hotspot subnet this box should use, given the subnets other boxes claim.

    `claims` maps a subnet to the id of a box that announces it (not this one).
    The box keeps `current` unless a box with a lower id claims an overlapping
    subnet; then it walks on from its own starting slot to the first slot no
    other box claims. Both sides see the same claims, so exactly one moves.
    """
    every = slots(space)
    others = {net: owner for net, owner in claims.items() if owner != me}

    def overlapping(net: IPv4Network) -> list[int]:
        return [owner for claimed, owner in others.items() if claimed.overlaps(net)]

    if current is not None and current in every and all(o > me for o in overlapping(current)):
        return current
    start = me % len(every)
    for step in range(len(every)):
        candidate = every[(start + step) % len(every)]
        if not overlapping(candidate):
            return candidate
    # A full site: no free slot is left. Keep what we have; the admin page says so.
    return current if current is not None else every[start]


def backbone_candidates(me: int) -> Iterator[IPv4Address]:
    """Link-local addresses to try for the backbone, the box id's own first.

    The walk is deterministic (a step coprime to the range), so a box that
    restarts tries the same addresses in the same order and usually keeps its
    address.
    """
    start = me % _LINK_LOCAL_COUNT
    step = 7919  # prime, and not a factor of 254 * 256
    for n in range(_LINK_LOCAL_COUNT):
        yield IPv4Address(_LINK_LOCAL_FIRST + (start + n * step) % _LINK_LOCAL_COUNT)


@dataclass(frozen=True)
class Peer:
    """Another box of the same site, as discovery heard it on the backbone."""

    box_id: int
    name: str
    backbone: IPv4Address  # where its hotspot subnet is routed
    hotspot: IPv4Network  # its phones' subnet
    wifi: str = ""  # a tag of its Wi-Fi name and passphrase: the same on boxes phones roam between


@dataclass(frozen=True)
class RoutePlan:
    """The routes to add and to remove so that each peer's hotspot is reached over it."""

    add: dict[IPv4Network, IPv4Address]
    remove: list[IPv4Network]


def plan_routes(
    own_hotspot: IPv4Network,
    space: IPv4Network,
    peers: list[Peer],
    current: Mapping[IPv4Network, IPv4Address],
) -> RoutePlan:
    """Turn the peers heard and the routes in place into what to change.

    `current` holds the routes this box has now towards subnets inside the
    site's space (over the backbone). A peer whose subnet is outside the site's
    space or overlaps this box's own hotspot is not routed: such a claim cannot
    be honoured (it is a misconfigured box, or the collision `choose_hotspot_subnet`
    is about to resolve).
    """
    wanted: dict[IPv4Network, IPv4Address] = {}
    for peer in sorted(peers, key=lambda p: p.box_id):
        net = peer.hotspot
        if not net.subnet_of(space) or net.overlaps(own_hotspot):
            continue
        if any(net.overlaps(other) for other in wanted):
            continue  # two peers claim it: the lower id (first) wins, as in choose
        wanted[net] = peer.backbone
    add = {net: via for net, via in wanted.items() if current.get(net) != via}
    remove = [net for net in current if net not in wanted]
    return RoutePlan(add, sorted(remove))
