"""The captive portal's pages and the admin page in all three engines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from enginekit import ADMIN_PASSWORD, EnginePhone, tid

from provisioning.credentials import set_admin_password

pytestmark = pytest.mark.browser
ENGINES = ["chromium", "firefox", "webkit"]


@pytest.mark.parametrize("engine", ENGINES)
def test_portal_welcome_continue_connected_then_the_app(
        engine: str, start_server: Any, people: Callable[[str, str], EnginePhone]) -> None:
    # A box of its own: the portal remembers who tapped Continue (here 127.0.0.1).
    box = start_server()
    phone = people(engine, box.http_url + "/portal")
    assert phone.evaluate("location.pathname") == "/portal"
    welcome = phone.text_of("h1")
    assert welcome.startswith("Welcome to"), welcome
    phone.click('form[action="/portal/continue"] button[type=submit]')
    # The address changes when the new page commits, before its body is parsed
    # (Firefox once showed an empty h1 there): wait for the page itself.
    phone.wait_js("location.pathname === '/portal/connected' && "
                  "!!document.querySelector('a[href=\"/ca.crt\"]')")
    assert phone.text_of("h1").startswith("You're connected"), phone.text_of("h1")
    # Each address explained in one line; the certificate is offered for calls.
    assert phone.evaluate("document.querySelectorAll('[data-choice]').length") == 2
    assert phone.evaluate("!!document.querySelector('a[href=\"/ca.crt\"]')")
    # A desktop engine gets the plain link to the app, which opens the join screen.
    phone.click_with_text("a.button", "")
    phone.wait_visible(tid("name-input"))
    assert phone.evaluate("document.body.dataset.ready") == "true"


@pytest.mark.parametrize("engine", ENGINES)
def test_admin_sign_in_see_the_box_and_a_refused_setting(
        engine: str, tmp_path: Path, start_server: Any,
        people: Callable[[str, str], EnginePhone]) -> None:
    data_dir = tmp_path / "data"
    set_admin_password(data_dir, ADMIN_PASSWORD)
    box = start_server(data_dir)
    admin = people(engine, box.http_url + "/admin")
    admin.wait_visible(tid("login-screen"))
    admin.fill(tid("password-input"), "not-the-password")
    admin.click(tid("login-button"))
    admin.wait_visible(tid("login-error"))
    assert admin.text_of(tid("login-error")) == "Wrong password."
    admin.fill(tid("password-input"), ADMIN_PASSWORD)
    admin.click(tid("login-button"))
    admin.wait_visible(tid("wifi-card"))
    assert admin.text_of(tid("wifi-name")) == "Ahoy"

    admin.click(tid("tab-settings"))
    admin.wait_visible(tid("screen-settings"))
    admin.click(tid("security-passphrase"))
    admin.fill(tid("setting-wifi_passphrase"), "short")
    admin.click(tid("settings-save"))
    admin.wait_visible(tid("error-wifi_passphrase"))
    assert "must be 8 to 63 characters" in admin.text_of(tid("error-wifi_passphrase"))
    assert "Nothing was saved" in admin.text_of(tid("settings-status"))

    admin.click(tid("logout-button"))
    admin.wait_visible(tid("login-screen"))
