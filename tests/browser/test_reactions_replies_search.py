"""Reactions and replies between two people; search finds a message and jumps to it."""

from __future__ import annotations

import time
from typing import Any

from ahoytest import WsClient, unique


def reaction_count(phone: Any, text: str, emoji: str) -> Any:
    msg = phone.tid("message").filter(has_text=text)
    return msg.locator(f"[data-testid=reaction][data-emoji='{emoji}']")


def test_reactions_and_replies_between_two_people(ahoy_server: Any, phones: Any) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    ana_name, ben_name = unique("Ana"), unique("Ben")
    ana.join(ana_name)
    ben.join(ben_name)
    ben.open_dm(ana_name)
    ben.say("Anchor is down")
    ana.open_dm(ben_name)
    ana.wait_text("Anchor is down")

    # Ana reacts from the message's menu (right-click here, long-press on a phone).
    ana.tid("message").filter(has_text="Anchor is down").click(button="right")
    ana.tid("reaction-picker").locator("[data-emoji='👍']").click()
    reaction_count(ben, "Anchor is down", "👍").wait_for()
    assert reaction_count(ben, "Anchor is down", "👍").inner_text() == "👍 1"
    # Ben adds his by tapping the count; Ana takes hers back the same way.
    reaction_count(ben, "Anchor is down", "👍").click()
    ana.wait_js("() => document.querySelector(\"[data-testid=reaction][data-emoji='👍']\")?.textContent === '👍 2'")
    assert reaction_count(ana, "Anchor is down", "👍").get_attribute("aria-pressed") == "true"
    reaction_count(ana, "Anchor is down", "👍").click()
    ben.wait_js("() => document.querySelector(\"[data-testid=reaction][data-emoji='👍']\")?.textContent === '👍 1'")
    assert reaction_count(ben, "Anchor is down", "👍").get_attribute("aria-pressed") == "true"

    # Ana replies through the ☺ button; both see the quote of the original.
    ana.tid("message").filter(has_text="Anchor is down").get_by_test_id("msg-actions").click()
    ana.tid("reply-button").click()
    assert "Anchor is down" in ana.tid("reply-bar").inner_text()
    ana.say("Good, *well done*")
    ben.wait_js("() => [...document.querySelectorAll('[data-testid=msg-text]')].some(e => e.textContent === 'Good, well done')")
    reply = ben.tid("message").filter(has_text="Good, well done")
    quote = reply.get_by_test_id("msg-quote")
    assert "Anchor is down" in quote.inner_text() and ben_name in quote.inner_text()
    assert reply.get_by_test_id("msg-text").locator("strong").inner_text() == "well done"
    quote.click()
    ben.page.locator("[data-testid=message].flash").filter(has_text="Anchor is down").wait_for()
    assert ana.tid("reply-bar").is_hidden()


def test_search_finds_an_old_message_and_loads_it(ahoy_server: Any, phones: Any) -> None:
    ana = phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    room_name = unique("Log")
    room = str(ana.create_room(room_name)).removeprefix("room:")
    bot = WsClient(ahoy_server.ws_url)
    try:
        bot.hello(unique("Bot"))
        bot.request("room_join", "room", room=room)
        for i in range(110):
            text = "the kraken was sighted" if i == 3 else f"filler {i}"
            bot.send("send", id=f"fill-{i:04d}-{unique('x')}", room=room, text=text)
            time.sleep(0.06)  # under the box's 20 frames/s even if they arrive bunched
        bot.expect("ack", timeout=10)
        deadline = time.monotonic() + 10
        while sum(1 for m in bot.drain(0.3) if m.get("type") == "ack") and time.monotonic() < deadline:
            pass
    finally:
        bot.close()

    # A newcomer gets only the latest 100 messages, so the sighting is not loaded yet.
    cleo = phones(ahoy_server.http_url)
    cleo.join(unique("Cleo"))
    cleo.open_room(room_name)
    cleo.wait_text("filler 109")
    assert "the kraken was sighted" not in cleo.texts()
    cleo.tid("search-button").click()
    cleo.tid("search-input").fill("KRAKEN")
    cleo.tid("search-input").press("Enter")
    result = cleo.tid("search-result")
    result.wait_for()
    assert result.count() == 1 and "the kraken was sighted" in result.inner_text()
    result.click()
    target = cleo.page.locator("[data-testid=message].flash").filter(has_text="the kraken was sighted")
    target.wait_for()
    assert target.is_visible()
