"""Network watcher and client list: pure parsing and merging, then real
netlink events from a veth pair in a network namespace of our own."""

from __future__ import annotations

import os
import queue
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.netwatch import (
    AddressEvent,
    Client,
    Lease,
    LinkEvent,
    LinkStatus,
    LinkTracker,
    Neighbour,
    NetWatcher,
    merge_clients,
    parse_leases,
    read_clients,
)

LEASES = """\
1700003600 AA:BB:CC:00:00:01 10.42.0.23 annas-phone 01:aa:bb:cc:00:00:01
1700003600 aa:bb:cc:00:00:02 10.42.0.24 * *
0 aa:bb:cc:00:00:03 10.42.0.25 laptop
1600000000 aa:bb:cc:00:00:04 10.42.0.26 gone-long-ago *
duid 00:01:00:01:2c:aa:bb:cc:dd:ee:ff:00:11:22
garbage line
1700003600 aa:bb:cc:00:00:05 not-an-ip nobody *
"""
NOW = 1_700_000_000


# ---------------------------------------------------------------- leases


def test_dnsmasq_leases_are_parsed_and_bad_lines_skipped() -> None:
    leases = parse_leases(LEASES)
    assert leases[0] == Lease(
        1700003600, "aa:bb:cc:00:00:01", "10.42.0.23", "annas-phone", "01:aa:bb:cc:00:00:01"
    )
    assert leases[1].hostname is None and leases[1].client_id is None
    assert leases[2] == Lease(0, "aa:bb:cc:00:00:03", "10.42.0.25", "laptop", None)
    assert [lease.ip for lease in leases] == [
        "10.42.0.23",
        "10.42.0.24",
        "10.42.0.25",
        "10.42.0.26",
    ]


def test_clients_merge_names_from_leases_with_presence_from_the_kernel() -> None:
    neighbours = [
        Neighbour("fe80::1", "aa:bb:cc:00:00:01", "stale"),
        Neighbour("10.42.0.23", "AA:BB:CC:00:00:01", "reachable"),
        Neighbour("10.42.0.99", "aa:bb:cc:00:00:09", "stale"),  # static address, no lease
    ]
    clients = merge_clients(neighbours, parse_leases(LEASES), now=NOW)
    assert clients == [
        Client("aa:bb:cc:00:00:01", "10.42.0.23", "annas-phone", "reachable"),
        Client("aa:bb:cc:00:00:02", "10.42.0.24", None, "leased"),
        Client("aa:bb:cc:00:00:03", "10.42.0.25", "laptop", "leased"),
        Client("aa:bb:cc:00:00:09", "10.42.0.99", None, "stale"),
    ]  # the expired lease of ...:04 is gone


# ------------------------------------------------------------ link tracker


def test_tracker_follows_the_interface_up_down_and_away() -> None:
    tracker = LinkTracker("wlan0")
    assert not tracker.status.up
    assert not tracker.apply(LinkEvent(3, "eth0", flags=1, carrier=True))
    assert tracker.apply(LinkEvent(5, "wlan0", flags=1, carrier=False, operstate="DOWN"))
    assert tracker.status.present and tracker.status.admin_up and not tracker.status.up
    assert tracker.apply(LinkEvent(5, "wlan0", flags=1, carrier=True, operstate="UP"))
    assert tracker.status.up
    assert tracker.apply(AddressEvent(5, "10.42.0.1"))
    assert not tracker.apply(AddressEvent(3, "192.168.1.2"))  # someone else's
    assert tracker.status.addresses == ("10.42.0.1",)
    assert tracker.apply(LinkEvent(5, "wlan0", removed=True))
    assert tracker.status == LinkStatus("wlan0")


def test_tracker_follows_a_replugged_adapter_with_a_new_index() -> None:
    tracker = LinkTracker("wlan1")
    tracker.apply(LinkEvent(7, "wlan1", flags=1, carrier=True))
    tracker.apply(AddressEvent(7, "10.42.0.1"))
    tracker.apply(LinkEvent(7, "wlx0011", flags=1, carrier=True))  # renamed away
    assert not tracker.status.present
    tracker.apply(LinkEvent(9, "wlan1", flags=1, carrier=True))
    assert tracker.status.up and tracker.status.addresses == ()


# ------------------------------------------------------- real namespace


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace holding a veth pair: ``ap0`` (the watched one) and ``peer0``."""
    if os.geteuid() != 0:
        pytest.skip("network namespace tests need root (ip netns add)")
    name = f"ahoy-netwatch-{uuid.uuid4().hex[:8]}"
    try:
        ip("netns", "add", name)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot create a network namespace here: {exc}")
    try:
        ip("-n", name, "link", "add", "ap0", "type", "veth", "peer", "name", "peer0")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def wait_for(
    statuses: queue.Queue[LinkStatus], condition: Callable[[LinkStatus], bool]
) -> LinkStatus:
    while True:
        status = statuses.get(timeout=5)
        if condition(status):
            return status


@pytest.mark.netns
def test_watcher_sees_the_hotspot_interface_go_up_and_down(netns: str) -> None:
    statuses: queue.Queue[LinkStatus] = queue.Queue()
    watcher = NetWatcher("ap0", statuses.put, netns=netns)
    first = watcher.start()
    try:
        assert first.present and not first.up
        assert statuses.get(timeout=5) == first

        ip("-n", netns, "link", "set", "ap0", "up")
        status = wait_for(statuses, lambda s: s.admin_up)
        assert not status.carrier  # the other end is still down

        ip("-n", netns, "link", "set", "peer0", "up")
        assert wait_for(statuses, lambda s: s.up).operstate == "UP"

        ip("-n", netns, "addr", "add", "10.42.0.1/24", "dev", "ap0")
        assert wait_for(statuses, lambda s: bool(s.addresses)).addresses == ("10.42.0.1",)

        ip("-n", netns, "link", "set", "peer0", "down")  # carrier lost
        status = wait_for(statuses, lambda s: not s.carrier)
        assert status.admin_up and not status.up

        ip("-n", netns, "link", "del", "ap0")
        assert wait_for(statuses, lambda s: not s.present) == LinkStatus("ap0")
    finally:
        watcher.close()
    assert watcher.status == LinkStatus("ap0")


@pytest.mark.netns
def test_clients_come_from_the_namespace_neighbour_table(netns: str, tmp_path: Path) -> None:
    ip("-n", netns, "link", "set", "ap0", "up")
    ip("-n", netns, "addr", "add", "10.42.0.1/24", "dev", "ap0")
    for address, mac in (("10.42.0.23", "aa:bb:cc:00:00:01"), ("10.42.0.50", "aa:bb:cc:00:00:07")):
        ip("-n", netns, "neigh", "add", address, "lladdr", mac, "dev", "ap0", "nud", "reachable")
    leases = tmp_path / "dnsmasq.leases"
    leases.write_text(LEASES)

    clients = read_clients("ap0", leases, netns=netns, now=NOW)

    assert Client("aa:bb:cc:00:00:01", "10.42.0.23", "annas-phone", "reachable") in clients
    assert Client("aa:bb:cc:00:00:07", "10.42.0.50", None, "reachable") in clients
    assert Client("aa:bb:cc:00:00:03", "10.42.0.25", "laptop", "leased") in clients
    assert read_clients("no-such-if", tmp_path / "missing", netns=netns) == []
