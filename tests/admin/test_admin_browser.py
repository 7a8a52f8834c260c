"""The admin page end to end in headless Chromium: sign in, settings, moderation, escaping.

Never run `playwright install`: it downloads browsers. We use Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from admintest import PASSWORD
from ahoytest import AhoyServer, WsClient

from provisioning.credentials import set_admin_password

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("AHOY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking",
                 "--disable-component-update", "--disable-gpu", "--no-first-run",
                 "--ignore-certificate-errors"]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AhoyServer]:
    data_dir = tmp_path_factory.mktemp("admin-browser") / "data"
    set_admin_password(data_dir, PASSWORD)
    s = AhoyServer(data_dir).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


class AdminPage:
    """The admin's phone with the admin page open; helpers named after what the admin does."""

    def __init__(self, browser: Any, server: AhoyServer) -> None:
        self.context = browser.new_context(viewport=PHONE)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.set_default_timeout(10_000)
        self.page.goto(server.http_url + "/admin")

    def tid(self, testid: str) -> Any:
        return self.page.get_by_test_id(testid)

    def sign_in(self, password: str = PASSWORD) -> None:
        self.tid("password-input").fill(password)
        self.tid("login-button").click()

    def open(self, screen: str) -> None:
        self.tid(f"tab-{screen}").click()
        self.tid(f"screen-{screen}").wait_for(state="visible")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def admin_page(browser: Any, server: AhoyServer) -> Iterator[AdminPage]:
    page = AdminPage(browser, server)
    yield page
    assert not page.errors, f"JavaScript errors: {page.errors}"
    assert not page.dialogs, f"dialogs opened (script ran?): {page.dialogs}"
    page.close()


@pytest.fixture
def signed_in(admin_page: AdminPage) -> AdminPage:
    admin_page.sign_in()
    admin_page.tid("wifi-card").wait_for()
    return admin_page


def test_sign_in_with_a_wrong_then_the_right_password(admin_page: AdminPage) -> None:
    admin_page.tid("login-screen").wait_for()
    admin_page.sign_in("not-the-password")
    error = admin_page.tid("login-error")
    error.wait_for()
    assert error.inner_text() == "Wrong password."
    admin_page.sign_in()
    admin_page.tid("wifi-card").wait_for()
    assert admin_page.tid("wifi-name").inner_text() == "Ahoy"
    assert admin_page.tid("dev-banner").is_visible()
    assert admin_page.tid("login-screen").is_hidden()
    # The session survives a reload; signing out ends it.
    admin_page.page.reload()
    admin_page.tid("wifi-card").wait_for()
    admin_page.tid("logout-button").click()
    admin_page.tid("login-screen").wait_for()
    admin_page.page.reload()
    admin_page.tid("login-screen").wait_for()


def test_change_a_setting_with_a_bad_then_a_good_value(signed_in: AdminPage) -> None:
    signed_in.open("settings")
    # An open network is explained in plain words while it is the choice.
    note = signed_in.tid("open-network-note")
    assert "anyone nearby with a Wi-Fi sniffer can read" in note.inner_text()
    assert "Wi-Fi Enhanced Open" in note.inner_text()
    assert "set one" in note.inner_text()
    signed_in.tid("security-passphrase").check()
    assert note.is_hidden()
    passphrase = signed_in.tid("setting-wifi_passphrase")
    passphrase.fill("short")
    signed_in.tid("settings-save").click()
    error = signed_in.tid("error-wifi_passphrase")
    error.wait_for()
    assert "must be 8 to 63 characters" in error.inner_text()
    assert passphrase.get_attribute("aria-invalid") == "true"
    assert "Nothing was saved" in signed_in.tid("settings-status").inner_text()

    passphrase.fill("seagull-harbour-42")
    signed_in.tid("settings-save").click()
    signed_in.page.get_by_text("Saved.", exact=False).wait_for()
    assert error.is_hidden()
    notes = signed_in.tid("settings-note").all_inner_texts()
    assert any("Every phone and laptop on the Wi-Fi is disconnected" in n for n in notes)
    # The overview shows the new password once the box has it (here: queued).
    signed_in.open("settings")
    assert signed_in.tid("setting-wifi_passphrase").input_value() == "seagull-harbour-42"


def wait_until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def test_online_user_appears_and_the_admin_removes_them(signed_in: AdminPage,
                                                        server: AhoyServer) -> None:
    name = f"Deckhand {uuid.uuid4().hex[:5]}"
    phone = WsClient(server.ws_url)
    try:
        assert phone.hello(name)["type"] == "welcome"
        # The overview refreshes by itself and shows the newcomer.
        signed_in.tid("dashboard-user").filter(has_text=name).wait_for(timeout=10_000)
        signed_in.open("people")
        item = signed_in.tid("user-item").filter(has_text=name)
        item.get_by_test_id("remove-user").click()
        item.get_by_test_id("confirm-yes").click()
        item.wait_for(state="detached")
        assert f"{name} was removed." in signed_in.tid("people-status").inner_text()
        error = phone.expect("error")
        assert error["code"] == "removed"
    finally:
        phone.close()


def test_names_and_messages_with_html_show_as_text(signed_in: AdminPage,
                                                   server: AhoyServer) -> None:
    user_name = "<img src=x onerror=alert(1)>"
    room_name = "<script>alert(2)</script>"
    text = '<b onmouseover="alert(3)">hi</b>'
    phone = WsClient(server.ws_url)
    try:
        assert phone.hello(user_name)["type"] == "welcome"
        room = phone.request("room_create", "room", name=room_name)["room"]["id"]
        phone.request("send", "ack", room=room, id=uuid.uuid4().hex, text=text)
        signed_in.open("people")
        user = signed_in.tid("user-item").filter(has_text=user_name)
        assert user.get_by_test_id("user-name").inner_text() == user_name
        item = signed_in.tid("room-item").filter(has_text=room_name)
        assert item.get_by_test_id("room-name").inner_text() == room_name
        item.get_by_test_id("room-messages").click()
        message = signed_in.tid("message-text").filter(has_text="hi")
        message.wait_for()
        assert message.inner_text() == text
        screen = signed_in.tid("screen-people")
        assert screen.locator("img, script, b").count() == 0
        signed_in.open("dashboard")
        signed_in.tid("dashboard-user").filter(has_text=user_name).wait_for()
        assert signed_in.tid("screen-dashboard").locator("img:not(.qr), script").count() == 0
        # Moderation: delete that message.
        signed_in.open("people")
        item = signed_in.tid("room-item").filter(has_text=room_name)
        item.get_by_test_id("delete-message").click()
        item.get_by_test_id("confirm-yes").click()
        signed_in.tid("message-text").filter(has_text="hi").wait_for(state="detached")
        deleted = phone.expect("message_deleted")
        assert deleted["conv"] == f"room:{room}"
    finally:
        phone.close()
