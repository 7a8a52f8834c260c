"""The captive portal's decisions: probe classification and per-client acceptance."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from appliance.portal import (
    ANSWERS,
    KINDLE_MARKER,
    NONCE_WINDOW_S,
    PROBE_URLS,
    CaptivePortal,
    Client,
    Platform,
    Probe,
    classify,
    host_name,
    platform_of,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("host", "path", "probe"), [
    ("connectivitycheck.gstatic.com", "/generate_204", Probe.ANDROID),
    ("clients3.google.com", "/generate_204", Probe.ANDROID),
    ("connectivitycheck.android.com", "/generate_204", Probe.ANDROID),
    ("www.google.com", "/gen_204", Probe.ANDROID),
    ("10.42.0.1", "/generate_204", Probe.ANDROID),
    ("captive.apple.com", "/hotspot-detect.html", Probe.APPLE),
    ("captive.apple.com", "/library/test/success.html", Probe.APPLE),
    ("www.apple.com", "/library/test/success.html", Probe.APPLE),
    ("www.msftconnecttest.com", "/connecttest.txt", Probe.WINDOWS_CONNECTTEST),
    ("www.msftncsi.com", "/ncsi.txt", Probe.WINDOWS_NCSI),
    ("detectportal.firefox.com", "/canonical.html", Probe.FIREFOX_CANONICAL),
    ("detectportal.firefox.com", "/success.txt", Probe.FIREFOX_SUCCESS),
    ("nmcheck.gnome.org", "/check_network_status.txt", Probe.NETWORKMANAGER),
    ("ping.archlinux.org", "/nm-check.txt", Probe.NETWORKMANAGER),
    ("fedoraproject.org", "/static/hotspot.txt", Probe.NETWORKMANAGER_OK),
    ("networkcheck.kde.org", "/", Probe.NETWORKMANAGER_OK),
    ("connectivity-check.ubuntu.com", "/", Probe.NETWORKMANAGER_204),
    ("spectrum.s3.amazonaws.com", "/kindle-wifi/wifistub.html", Probe.KINDLE),
    ("play.googleapis.com", "/generate_204", Probe.ANDROID),
    ("connect.rom.miui.com", "/generate_204", Probe.ANDROID),
])
def test_each_os_probe_is_recognised(host: str, path: str, probe: Probe) -> None:
    assert classify(host, path) is probe
    assert classify(host.upper() + ".:80", path) is probe


@pytest.mark.parametrize(("host", "path"), [
    ("10.42.0.1", "/"),
    ("ahoy.internal", "/portal"),
    ("example.org", "/success.txt"),  # only Firefox's host means the Firefox probe
    ("example.org", "/connecttest.txt"),
    ("captive.apple.com", "/"),
    ("www.msftconnecttest.com", "/redirect"),
    ("connectivitycheck.gstatic.com", "/generate_204/extra"),
    ("ubuntu.com", "/"),
])
def test_ordinary_requests_are_not_probes(host: str, path: str) -> None:
    assert classify(host, path) is None


def test_every_probe_has_an_answer() -> None:
    assert set(ANSWERS) == set(Probe)


@pytest.mark.parametrize(("host", "name"), [
    ("Captive.Apple.COM", "captive.apple.com"),
    ("10.42.0.1:8080", "10.42.0.1"),
    ("connectivity-check.ubuntu.com.", "connectivity-check.ubuntu.com"),
    ("[::1]:8443", "::1"),
    ("[fe80::1]", "fe80::1"),
])
def test_host_name_drops_port_case_and_final_dot(host: str, name: str) -> None:
    assert host_name(host) == name


@given(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True),
       st.integers(1, 65535))
def test_host_name_of_name_with_port_is_the_name(name: str, port: int) -> None:
    assert host_name(f"{name.upper()}:{port}") == name


@given(st.text(max_size=40), st.text(max_size=40))
def test_classify_never_fails(host: str, path: str) -> None:
    assert classify(host, path) is None or isinstance(classify(host, path), Probe)


@pytest.mark.parametrize(("agent", "platform"), [
    ("Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 Chrome/120 Mobile",
     Platform.ANDROID),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
     Platform.APPLE),
    ("CaptiveNetworkSupport-443.1 wispr", Platform.APPLE),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/120.0", Platform.OTHER),
    ("", Platform.OTHER),
])
def test_platform_from_user_agent(agent: str, platform: Platform) -> None:
    assert platform_of(agent) is platform


def test_a_client_is_captive_until_it_accepts() -> None:
    portal = CaptivePortal(clock=FakeClock())
    phone = Client("10.42.0.50")
    assert not portal.is_accepted(phone)
    portal.accept(phone)
    assert portal.is_accepted(phone)
    assert not portal.is_accepted(Client("10.42.0.51"))


def test_acceptance_expires_after_the_ttl() -> None:
    clock = FakeClock()
    portal = CaptivePortal(ttl_s=24 * 3600, clock=clock)
    phone = Client("10.42.0.50", "aa:bb:cc:dd:ee:ff")
    portal.accept(phone)
    clock.now += 24 * 3600 - 1
    assert portal.seconds_left(phone) == pytest.approx(1)
    clock.now += 1
    assert not portal.is_accepted(phone)
    assert len(portal) == 0  # expired entries are dropped when looked at


def test_a_phone_known_by_mac_stays_accepted_when_its_address_changes() -> None:
    portal = CaptivePortal(clock=FakeClock())
    portal.accept(Client("10.42.0.50", "AA:BB:CC:DD:EE:FF"))
    assert portal.is_accepted(Client("10.42.0.77", "aa:bb:cc:dd:ee:ff"))
    assert portal.is_accepted(Client("10.42.0.50"))  # MAC not (yet) known: by address
    assert not portal.is_accepted(Client("10.42.0.77"))


def test_forget_sends_a_client_through_the_portal_again() -> None:
    portal = CaptivePortal(clock=FakeClock())
    phone = Client("10.42.0.50", "aa:bb:cc:dd:ee:ff")
    portal.accept(phone)
    portal.forget(phone)
    assert not portal.is_accepted(phone)
    assert not portal.is_accepted(Client("10.42.0.50"))


def test_the_least_recently_seen_client_is_forgotten_when_full() -> None:
    portal = CaptivePortal(max_clients=3, clock=FakeClock())
    phones = [Client(f"10.42.0.{n}") for n in range(10, 14)]
    for phone in phones[:3]:
        portal.accept(phone)
    assert portal.is_accepted(phones[0])  # seen again: now the most recent
    portal.accept(phones[3])
    assert len(portal) == 3
    assert not portal.is_accepted(phones[1])
    assert all(portal.is_accepted(p) for p in (phones[0], phones[2], phones[3]))


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        CaptivePortal(ttl_s=0)
    with pytest.raises(ValueError):
        CaptivePortal(max_clients=0)


def test_concurrent_accepts_keep_the_bound_and_lose_nothing() -> None:
    portal = CaptivePortal(max_clients=500)
    barrier = threading.Barrier(8)

    def accept_many(worker: int) -> None:
        barrier.wait()
        for n in range(200):
            portal.accept(Client(f"10.{worker}.{n // 250}.{n % 250}"))
            portal.is_accepted(Client(f"10.{worker}.0.{n % 7}"))

    threads = [threading.Thread(target=accept_many, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(portal) == 500


def test_the_form_nonce_belongs_to_one_client_and_expires() -> None:
    clock = FakeClock()
    portal = CaptivePortal(clock=clock)
    phone = Client("10.42.0.50")
    nonce = portal.nonce(phone)
    assert portal.check_nonce(phone, nonce)
    assert portal.check_nonce(Client("10.42.0.50", "aa:bb:cc:dd:ee:ff"), nonce)
    assert not portal.check_nonce(Client("10.42.0.51"), nonce)
    assert not CaptivePortal(clock=clock).check_nonce(phone, nonce)  # another box or restart
    assert not portal.check_nonce(phone, "")
    assert not portal.check_nonce(phone, "é" * 32)
    clock.now += NONCE_WINDOW_S
    assert portal.check_nonce(phone, nonce)
    clock.now += NONCE_WINDOW_S
    assert not portal.check_nonce(phone, nonce)


ADDRESSES = st.sampled_from([f"10.42.0.{n}" for n in range(10, 16)])
MACS = st.sampled_from([None, "02:00:00:00:00:01", "02:00:00:00:00:02"])


class PortalMachine(RuleBasedStateMachine):
    """Random accept/forget/time steps against a simple model without eviction."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.portal = CaptivePortal(ttl_s=100, max_clients=64, clock=self.clock)
        self.expiry: dict[str, float] = {}  # state key -> expiry

    @rule(ip=ADDRESSES, mac=MACS)
    def accept(self, ip: str, mac: str | None) -> None:
        client = Client(ip, mac)
        self.portal.accept(client)
        for key in client.keys:
            self.expiry[key] = self.clock.now + 100

    @rule(ip=ADDRESSES, mac=MACS)
    def forget(self, ip: str, mac: str | None) -> None:
        client = Client(ip, mac)
        self.portal.forget(client)
        for key in client.keys:
            self.expiry.pop(key, None)

    @rule(seconds=st.floats(0, 150))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(ip=ADDRESSES, mac=MACS)
    def check(self, ip: str, mac: str | None) -> None:
        client = Client(ip, mac)
        expected = any(self.expiry.get(k, 0) > self.clock.now for k in client.keys)
        assert self.portal.is_accepted(client) is expected

    @invariant()
    def bounded(self) -> None:
        assert len(self.portal) <= self.portal.max_clients


TestPortalMachine = PortalMachine.TestCase
TestPortalMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def documented_probes() -> list[tuple[str, str, str]]:
    """(who, url, answer) for each address in docs/admin.md's table of checks."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "admin.md").read_text()
    table = doc.split("### The checks the box knows", 1)[1].split("\n\n", 3)[2]
    rows = []
    for line in table.splitlines()[2:]:
        who, addresses, answer = (cell.strip() for cell in line.strip("|").split("|"))
        for url in re.findall(r"`(http://[^`]+)`", addresses):
            rows.append((who, url, answer))
    assert rows, "docs/admin.md lost its table of checks"
    return rows


def test_the_docs_table_of_checks_matches_what_the_box_answers() -> None:
    covered = set()
    for who, url, answer in documented_probes():
        parts = urlsplit(url)
        probe = classify(parts.netloc, parts.path)
        assert probe is not None, (who, url)
        expected = ANSWERS[probe]
        assert answer.startswith(str(expected.status)), (url, answer, expected.status)
        covered |= {i for i, (path, hosts, p) in enumerate(PROBE_URLS)
                    if p is probe and path == parts.path
                    and (hosts is None or parts.netloc in hosts)}
    assert covered == set(range(len(PROBE_URLS))), [PROBE_URLS[i] for i in
                                                     set(range(len(PROBE_URLS))) - covered]


def test_the_kindle_probe_gets_amazons_page_with_its_marker() -> None:
    assert classify("spectrum.s3.amazonaws.com", "/kindle-wifi/wifistub.html") is Probe.KINDLE
    answer = ANSWERS[Probe.KINDLE]
    assert answer.status == 200
    assert answer.body.count(KINDLE_MARKER) == 2
    assert b"<title>Kindle Reachability Probe Page</title>" in answer.body
