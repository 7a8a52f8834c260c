"""The site's addresses without a network: subnets per box, backbone addresses, route plans,
the config keys that carry them, and the signed announcements."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from provisioning import sitenet
from provisioning.backbone import (
    announcement_properties,
    peer_from_properties,
    site_key,
    site_link,
)
from provisioning.config import BoxConfig, ConfigError, parse_config
from provisioning.configstore import hotspot_subnet_pinned, read_config
from provisioning.render import render_nftables, render_turnserver

SPACE = IPv4Network("10.42.0.0/16")


def test_a_box_alone_keeps_its_whole_network_as_before() -> None:
    config = parse_config("", mac="b8:27:eb:12:34:56")
    assert config.hotspot_subnet == config.network == IPv4Network("10.42.0.0/24")
    assert str(config.box_address) == "10.42.0.1"


def test_in_a_site_each_box_takes_a_24_of_a_16_chosen_by_its_mac() -> None:
    one = parse_config("site_name = ship\n", mac="b8:27:eb:12:34:56")
    two = parse_config("site_name = ship\n", mac="b8:27:eb:65:43:21")
    assert one.network == SPACE
    assert one.hotspot_subnet.prefixlen == 24 and one.hotspot_subnet.subnet_of(SPACE)
    assert one.hotspot_subnet != two.hotspot_subnet
    assert one.box_address == one.hotspot_subnet[1]
    assert one.dhcp_range[0] in one.hotspot_subnet and one.dhcp_range[1] in one.hotspot_subnet
    # Same MAC, same subnet, at every start.
    assert parse_config("site_name = ship\n", mac="B8-27-EB-12-34-56") == one


@pytest.mark.parametrize("space, size, count", [
    ("10.42.0.0/16", 24, 256), ("10.42.0.0/20", 24, 16), ("10.42.0.0/24", 28, 16),
])
def test_the_space_is_cut_into_at_least_16_slots(space: str, size: int, count: int) -> None:
    every = sitenet.slots(IPv4Network(space))
    assert len(every) == count and every[0].prefixlen == size


def test_a_site_network_smaller_than_24_is_refused_in_words() -> None:
    with pytest.raises(ConfigError, match="too small for a site"):
        parse_config("site_name = ship\nnetwork = 10.42.0.0/26\n")


def test_a_fixed_dhcp_range_in_a_site_needs_a_fixed_subnet() -> None:
    with pytest.raises(ConfigError, match="dhcp_range needs hotspot_subnet in a site"):
        parse_config("site_name = ship\ndhcp_range = 10.42.0.10 - 10.42.0.20\n")
    pinned = parse_config("site_name = ship\nhotspot_subnet = 10.42.9.0/24\n"
                          "dhcp_range = 10.42.9.10 - 10.42.9.20\n")
    assert str(pinned.box_address) == "10.42.9.1"
    with pytest.raises(ConfigError, match=r"hotspot_subnet 10\.43\.0\.0/24 must lie inside"):
        parse_config("site_name = ship\nhotspot_subnet = 10.43.0.0/24\n")


def test_the_lower_box_id_keeps_a_shared_subnet_and_the_other_moves() -> None:
    net = IPv4Network("10.42.5.0/24")
    assert sitenet.choose_hotspot_subnet(SPACE, 5, net, {net: 9}) == net
    moved = sitenet.choose_hotspot_subnet(SPACE, 9, net, {net: 5})
    assert moved != net and moved.subnet_of(SPACE)
    # The move skips every slot another box claims.
    taken = {IPv4Network(f"10.42.{n}.0/24"): 1 for n in range(256) if n != 200}
    assert sitenet.choose_hotspot_subnet(SPACE, 9, net, taken) == IPv4Network("10.42.200.0/24")


def test_backbone_addresses_are_link_local_outside_the_reserved_ends_and_all_different() -> None:
    tried = [a for _, a in zip(range(2000), sitenet.backbone_candidates(12345), strict=False)]
    assert len(set(tried)) == len(tried)
    assert all(IPv4Address("169.254.1.0") <= a <= IPv4Address("169.254.254.255") for a in tried)


def _peer(n: int, hotspot: str) -> sitenet.Peer:
    return sitenet.Peer(n, f"box-{n}", IPv4Address(f"169.254.1.{n}"), IPv4Network(hotspot))


def test_routes_follow_the_peers_and_refuse_claims_outside_the_site_or_on_our_own() -> None:
    own = IPv4Network("10.42.1.0/24")
    peers = [_peer(2, "10.42.2.0/24"), _peer(3, "10.42.3.0/24"), _peer(4, "192.168.1.0/24"),
             _peer(5, "10.42.1.0/24"), _peer(6, "10.42.2.0/25")]
    current = {IPv4Network("10.42.3.0/24"): IPv4Address("169.254.1.3"),
               IPv4Network("10.42.9.0/24"): IPv4Address("169.254.1.9")}
    plan = sitenet.plan_routes(own, SPACE, peers, current)
    assert plan.add == {IPv4Network("10.42.2.0/24"): IPv4Address("169.254.1.2")}
    assert plan.remove == [IPv4Network("10.42.9.0/24")]


def test_announcements_of_another_site_or_with_a_wrong_secret_are_ignored() -> None:
    me = _peer(7, "10.42.7.0/24")
    key = site_key("ship", "tern gravel copper lantern")
    txt = {k.encode(): v.encode() for k, v in announcement_properties("ship", key, me).items()}
    assert peer_from_properties(txt, "ship", key) == me
    assert peer_from_properties(txt, "camp", key) is None
    assert peer_from_properties(txt, "ship", site_key("ship", "another secret here!")) is None
    forged = {**txt, b"hotspot": b"10.42.8.0/24"}
    assert peer_from_properties(forged, "ship", key) is None
    assert peer_from_properties({**txt, b"name": b"x" * 500}, "ship", key) is None


def test_alone_the_firewall_routes_nothing_and_in_a_site_only_between_hotspots() -> None:
    alone = render_nftables(parse_config("interface = wlan0\n"))
    assert "oifname \"eth0\"" not in alone and "ip daddr != 10.42.0.1 tcp dport 80" in alone
    config = parse_config("site_name = ship\nhotspot_subnet = 10.42.7.0/24\n")
    rules = render_nftables(config)
    assert ('iifname "wlan0" oifname "eth0" ip saddr 10.42.7.0/24 ip daddr 10.42.0.0/16 '
            "ip daddr != 10.42.7.0/24") in rules
    assert ('iifname "eth0" oifname "wlan0" ip saddr 10.42.0.0/16 ip saddr != 10.42.7.0/24 '
            "ip daddr 10.42.7.0/24") in rules
    # Web and DNS to another box's phones are not turned back to this box's portal.
    assert "ip daddr != 10.42.0.0/16 tcp dport 80 redirect" in rules
    # This box's TURN relays to phones on every box of the site.
    assert "allowed-peer-ip=10.42.0.0-10.42.255.255" in render_turnserver(config, "s")


def test_the_subnet_the_backbone_moved_to_is_used_at_the_next_start_unless_pinned(
    tmp_path: Path,
) -> None:
    boot, data = tmp_path / "ahoy.txt", tmp_path / "data"
    boot.write_text("site_name = ship\n")
    mac = "b8:27:eb:12:34:56"

    def start() -> BoxConfig:
        return read_config(boot, data, mac=mac, interface_problem=lambda _: None).config

    first = start().hotspot_subnet
    (data / "site").mkdir(parents=True)
    (data / "site" / "hotspot-subnet").write_text("10.42.200.0/24\n")
    moved = start()
    assert first != moved.hotspot_subnet == IPv4Network("10.42.200.0/24")
    assert str(moved.box_address) == "10.42.200.1" and str(moved.dhcp_range[0]) == "10.42.200.10"
    assert not hotspot_subnet_pinned(boot)
    boot.write_text("site_name = ship\nhotspot_subnet = 10.42.9.0/24\n")
    assert start().hotspot_subnet == IPv4Network("10.42.9.0/24") and hotspot_subnet_pinned(boot)
    (data / "site" / "hotspot-subnet").write_text("not a subnet\n")
    boot.write_text("site_name = ship\n")
    assert start().hotspot_subnet == first


def test_the_site_link_says_alone_or_how_many_boxes_are_heard() -> None:
    assert site_link(None)["alone"]
    status = {"box": {}, "peers": [{"name": "a"}, {"name": "b"}], "problems": ["x"]}
    link = site_link(status)
    assert (link["boxes"], link["alone"], link["text"]) == (2, False, "connected to 2 other boxes")
    assert site_link({"peers": []})["text"].startswith("alone")
