"""The invite codes: the box's QR code for the app, and a room's, in a real browser.

Their dialogs are loaded only when first opened (boxdialogs.js): the first chat
screen goes without them over the air (issue 17's 50 KB).
"""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.browser

LOADED = ("(name) => performance.getEntriesByType('resource')"
          ".some((e) => new URL(e.name).pathname.endsWith('/' + name))")


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:4]}"


def shown_codes(phone: Any, dialog: str) -> list[str]:
    """The text each QR code in `dialog` stands for, once every one has drawn."""
    codes = phone.tid(dialog).get_by_test_id("qr")
    codes.first.wait_for()
    phone.wait_js("(d) => [...document.querySelectorAll(`[data-testid=${d}] img.qr-img`)]"
                  ".every((img) => img.complete && img.naturalWidth > 0)", dialog)
    return [urllib.parse.parse_qs(urllib.parse.urlparse(src).query)["text"][0]
            for src in codes.evaluate_all("(imgs) => imgs.map((img) => img.src)")]


def test_the_invite_dialog_loads_when_opened_and_shows_the_apps_code(
        ahoy_server: Any, phones: Any) -> None:
    ana = phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    assert ana.page.evaluate(LOADED, "boxinfo.js")
    assert not ana.page.evaluate(LOADED, "boxdialogs.js")  # not on the first screen

    ana.tid("invite-button").click()
    codes = shown_codes(ana, "invite-dialog")
    assert ana.page.evaluate(LOADED, "boxdialogs.js")
    # No Wi-Fi code on this machine (no hotspot): the app's address alone.
    info = ana.page.evaluate("fetch('/api/info').then((r) => r.json())")
    assert codes == [info.get("https_url") or info.get("http_url") or ahoy_server.http_url]
    ana.page.keyboard.press("Escape")


def test_a_rooms_dialog_shows_the_rooms_code(ahoy_server: Any, phones: Any) -> None:
    ana = phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    room = unique("Deck")
    room_id = ana.create_room(room).removeprefix("room:")  # the conversation's id
    ana.tid("room-info-button").click()
    (code,) = shown_codes(ana, "room-info-dialog")
    assert code.endswith("/#room=" + room_id)
