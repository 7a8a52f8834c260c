"""mDNS on loopback: a real zeroconf browser finds the box, then sees it go."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from zeroconf import AddressResolverIPv4, ServiceBrowser, ServiceInfo, ServiceListener, Zeroconf

from appliance.mdns import HTTP_TYPE, HTTPS_TYPE, Announcement, Announcer, service_infos

LOOPBACK = "127.0.0.1"


class Seen(ServiceListener):
    """Collects services a browser sees appear and disappear."""

    def __init__(self) -> None:
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.changed = threading.Condition()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        with self.changed:
            self.added.add(name)
            self.changed.notify_all()

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        with self.changed:
            self.removed.add(name)
            self.changed.notify_all()

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass

    def wait_for(self, names: set[str], *, removed: bool = False, timeout: float = 10) -> None:
        with self.changed:
            found = self.changed.wait_for(
                lambda: names <= (self.removed if removed else self.added), timeout
            )
        assert found, f"browser never saw {names} {'go' if removed else 'appear'}"


@pytest.fixture
def browser() -> Iterator[Zeroconf]:
    zc = Zeroconf(interfaces=[LOOPBACK])
    yield zc
    zc.close()


def test_announcement_records_carry_the_paths() -> None:
    http, https = service_infos(
        Announcement("ship-1", http_port=8080, https_port=8443), ["10.42.0.1", "192.168.1.20"]
    )
    assert http.type == HTTP_TYPE and https.type == HTTPS_TYPE
    assert http.name == "Ahoy ship-1._http._tcp.local."
    assert http.server == "ship-1.local."
    assert http.port == 8080 and https.port == 8443
    assert http.parsed_addresses() == ["10.42.0.1", "192.168.1.20"]
    assert http.properties == {b"path": b"/", b"admin": b"/admin"}


def test_only_the_enabled_services_are_announced() -> None:
    infos = service_infos(Announcement("ship-1", https_port=None), ["10.42.0.1"])
    assert [info.type for info in infos] == [HTTP_TYPE]


@pytest.mark.parametrize("bad", ["", "ship 1", "-ship", "ship.local", "x" * 64])
def test_a_bad_hostname_is_refused_with_a_clear_message(bad: str) -> None:
    with pytest.raises(ValueError, match="letters, digits or hyphens"):
        Announcement(bad)


def test_box_is_found_on_loopback_and_says_goodbye_on_close(browser: Zeroconf) -> None:
    announcement = Announcement("ahoy-test", http_port=8080, https_port=8443)
    announcer = Announcer(announcement, [LOOPBACK])
    seen = Seen()
    ServiceBrowser(browser, [HTTP_TYPE, HTTPS_TYPE], seen)
    names = {"Ahoy ahoy-test." + HTTP_TYPE, "Ahoy ahoy-test." + HTTPS_TYPE}
    announcer.start()
    try:
        seen.wait_for(names)
        http = ServiceInfo(HTTP_TYPE, "Ahoy ahoy-test." + HTTP_TYPE)
        assert http.request(browser, 3000)
        assert http.port == 8080
        assert http.server == "ahoy-test.local."
        assert http.parsed_addresses() == [LOOPBACK]
        assert http.properties[b"path"] == b"/"
        assert http.properties[b"admin"] == b"/admin"
        https = ServiceInfo(HTTPS_TYPE, "Ahoy ahoy-test." + HTTPS_TYPE)
        assert https.request(browser, 3000)
        assert https.port == 8443
    finally:
        announcer.close()
    seen.wait_for(names, removed=True)


def test_hostname_resolves_and_follows_address_changes(browser: Zeroconf) -> None:
    announcer = Announcer(Announcement("ahoy-moving", https_port=None), [LOOPBACK])
    announcer.start()
    try:
        host = AddressResolverIPv4("ahoy-moving.local.")
        assert host.request(browser, 3000)
        assert host.parsed_addresses() == [LOOPBACK]

        # Same socket (loopback), but the records now also carry a second address.
        announcer.update_addresses([LOOPBACK, "127.0.0.2", LOOPBACK])
        assert announcer.addresses == [LOOPBACK, "127.0.0.2"]
        fresh = Zeroconf(interfaces=[LOOPBACK])  # an empty cache
        try:
            host = AddressResolverIPv4("ahoy-moving.local.")
            assert host.request(fresh, 3000)
            assert sorted(host.parsed_addresses()) == [LOOPBACK, "127.0.0.2"]
            info = ServiceInfo(HTTP_TYPE, "Ahoy ahoy-moving." + HTTP_TYPE)
            assert info.request(fresh, 3000)
            assert info.port == 80
        finally:
            fresh.close()
    finally:
        announcer.close()


def test_without_addresses_nothing_is_announced_until_some_appear() -> None:
    announcer = Announcer(Announcement("ahoy-late"), [])
    announcer.start()
    assert announcer.addresses == []
    announcer.close()
