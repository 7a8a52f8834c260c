"""Rough edges a new user hit: long pastes, right-to-left text, **bold**, the chat
header at phone width, and runs of messages from one person."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from appliance import protocol


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:4]}"


def server_words_for_too_long() -> str:
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.clean_text("x" * (protocol.MAX_TEXT + 1))
    return refused.value.message


def test_a_long_paste_is_never_cut_and_a_counter_shows_near_the_limit(
        ahoy_server: Any, phones: Any) -> None:
    ana = phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    ana.create_room(unique("Paste"))
    composer, counter = ana.tid("composer"), ana.tid("composer-count")

    composer.fill("short")
    assert counter.is_hidden()

    pasted = "0123456789" * 10_000  # 100 KB
    composer.fill(pasted)
    assert ana.page.evaluate("document.querySelector('#composer-input').value.length") == len(pasted)
    assert counter.is_visible()
    assert counter.inner_text() == f"{len(pasted)} / {protocol.MAX_TEXT}"
    assert "over" in (counter.get_attribute("class") or "")
    ana.tid("send-button").click()
    toast = ana.tid("toast")
    toast.get_by_text(server_words_for_too_long(), exact=False).wait_for()
    assert str(len(pasted)) in toast.inner_text()
    # Nothing was sent, nothing was cut: the text waits to be shortened.
    assert ana.tid("message").count() == 0
    assert ana.page.evaluate("document.querySelector('#composer-input').value.length") == len(pasted)

    near = "x" * (protocol.MAX_TEXT - 100)
    composer.fill(near)
    assert counter.inner_text() == f"{len(near)} / {protocol.MAX_TEXT}"
    assert "over" not in (counter.get_attribute("class") or "")
    ana.tid("send-button").click()
    ana.page.locator("[data-testid=msg-status][data-state=delivered]").wait_for()
    assert counter.is_hidden()


def test_right_to_left_text_reads_right_to_left(ahoy_server: Any, phones: Any) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    hebrew_name = "דנה" + uuid.uuid4().hex[:3]
    ana.join(hebrew_name)
    ben.join(unique("Ben"))
    room_name = "غرفة المحرك " + uuid.uuid4().hex[:3]
    ana.create_room(room_name)
    ben.open_room(room_name)
    assert ana.tid("composer").get_attribute("dir") == "auto"
    ana.say("שלום לכולם, מה נשמע?")
    ben.wait_text("שלום לכולם, מה נשמע?")
    direction = "el => getComputedStyle(el).direction"
    text = ben.tid("msg-text").last
    assert text.get_attribute("dir") == "auto"
    assert text.evaluate(direction) == "rtl"
    sender = ben.tid("msg-sender").last
    assert sender.evaluate(direction) == "rtl"
    assert ben.tid("conv-title").evaluate(direction) == "rtl"
    # Right-aligned inside its bubble: the text's right edge is the bubble's.
    gap = text.evaluate("""el => {
        const range = document.createRange(); range.selectNodeContents(el);
        const r = range.getBoundingClientRect(), box = el.getBoundingClientRect();
        return box.right - r.right; }""")
    assert gap < 2, gap
    ben.say("and a left-to-right answer")
    ana.wait_text("and a left-to-right answer")
    assert ana.tid("msg-text").last.evaluate(direction) == "ltr"
    ben.back()
    ben.open_tab("rooms")
    row = ben.tid("room-item").filter(has_text=room_name).locator("[dir=auto]").first
    assert row.evaluate(direction) == "rtl"


def test_double_asterisks_are_bold_too(ahoy_server: Any, phones: Any) -> None:
    ana = phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    ana.create_room(unique("Bold"))
    ana.say("**loud** and *clear*, but 2 ** 3 and a**b stay as typed")
    ana.wait_text("loud and clear, but 2 ** 3 and a**b stay as typed")
    bold = ana.tid("msg-text").last.locator("strong")
    assert bold.all_inner_texts() == ["loud", "clear"]


def test_the_chat_header_shows_a_room_name_whole_at_phone_width(
        ahoy_server: Any, phones: Any) -> None:
    ana = phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    name = "Engine room night watch " + uuid.uuid4().hex[:3]
    ana.create_room(name)
    title = ana.tid("conv-title")
    assert title.inner_text() == name
    cut = title.evaluate("el => el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1")
    assert not cut, title.evaluate("el => [el.scrollWidth, el.clientWidth, el.scrollHeight, el.clientHeight]")


def test_a_run_of_messages_from_one_person_shows_the_name_once(
        ahoy_server: Any, phones: Any) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    ana_name = unique("Ana")
    ana.join(ana_name)
    ben.join(unique("Ben"))
    room_name = unique("Galley")
    ana.create_room(room_name)
    ben.open_room(room_name)
    lines = [f"line {i}" for i in range(14)]
    for line in lines:
        ana.say(line)
    ben.wait_text(lines[-1])
    assert ben.tid("msg-sender").filter(has_text=ana_name).count() == 1
    assert ben.page.locator("[data-testid=message].cont").count() == len(lines) - 1
    # Short messages are compact: at least 12 fit on a 390x844 screen at once.
    visible = ben.page.evaluate("""() => {
        const body = document.querySelector('#conv-body').getBoundingClientRect();
        return [...document.querySelectorAll('[data-testid=message]')].filter((m) => {
          const r = m.getBoundingClientRect();
          return r.top >= body.top - 1 && r.bottom <= body.bottom + 1;
        }).length; }""")
    assert visible >= 12, visible
