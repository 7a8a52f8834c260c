"""Chat in Firefox and WebKit (Safari's engine), each with a Chromium phone on
the other side: join, a room, one to one, and the network going away and back.
(Chromium alone is covered in tests/browser/.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from enginekit import EnginePhone, tid
from silentproxy import SilentProxy

pytestmark = pytest.mark.browser
ENGINES = ["firefox", "webkit"]

OFFLINE_WITHIN_S = 10  # docs/protocol.md, "Connection liveness"


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:4]}"


@pytest.mark.parametrize("engine", ENGINES)
def test_join_room_and_one_to_one_with_a_chromium_phone(
        engine: str, box: Any, people: Callable[[str, str], EnginePhone]) -> None:
    ana_name, ben_name = unique("Ana"), unique("Ben")
    ana = people(engine, box.http_url)
    ben = people("chromium", box.http_url)
    ana.join(ana_name)
    ben.join(ben_name)

    # Ana (in this engine) makes a room; Ben finds it and joins.
    room_name = unique("Deck")
    ana.create_room(room_name)
    ben.open_room(room_name)
    ana.wait_js(f"[...window.ahoy.state.rooms.values()].some("
                f"(r) => r.name === '{room_name}' && r.members.length === 2)")
    ana.say("Dinner at 7")
    ben.wait_text("Dinner at 7")
    ana.wait_visible('[data-testid=msg-status][data-state=delivered]')
    ben.say("See you there")
    ana.wait_text("See you there")
    assert ana.texts() == ["Dinner at 7", "See you there"]

    # One to one: Ben writes while Ana looks at the room; she sees the unread badge.
    ben.back()
    ben.open_dm(ana_name)
    ben.say("Private hello")
    ana.back()
    ana.open_tab("chats")
    badge = '[data-testid=chat-item][data-conv^="dm:"] [data-testid=unread-badge]'
    ana.wait_visible(badge)
    assert ana.text_of(badge) == "1"
    ana.click_with_text('[data-testid=chat-item][data-conv^="dm:"]', ben_name)
    ana.wait_text("Private hello")
    ana.say("Hi Ben")
    ben.wait_text("Hi Ben")

    # A reload keeps the person and the history, without duplicates.
    ana.goto(box.http_url)
    ana.wait_visible(tid("home-screen"))
    ana.wait_online()
    assert ana.evaluate("window.ahoy.state.me.name") == ana_name
    ana.open_room(room_name)
    ana.wait_text("See you there")
    assert ana.texts() == ["Dinner at 7", "See you there"]


@pytest.mark.parametrize("engine", ENGINES)
def test_network_going_silent_and_back(
        engine: str, box: Any, people: Callable[[str, str], EnginePhone]) -> None:
    ben_name = unique("Ben")
    with SilentProxy(box.http_port) as proxy:
        ana = people(engine, proxy.url)
        ben = people("chromium", box.http_url)
        ana.join(unique("Ana"))
        ben.join(ben_name)
        ana.open_dm(ben_name)
        ana.say("before")
        ben.open_tab("chats")
        ben.click(tid("chat-item"))
        ben.wait_text("before")

        proxy.pause()
        ana.say("into the silence")
        ana.wait_js("document.body.dataset.conn !== 'online'"
                    " && !!document.querySelector('[data-testid=banner-conn]')",
                    timeout=OFFLINE_WITHIN_S)
        ana.say("while offline")
        proxy.resume()
        ana.wait_online(timeout=25)
        ben.wait_text("while offline")
        ben.wait_text("into the silence")
        ana.say("after")
        ben.wait_text("after")
        texts = ben.texts()
        assert sorted(texts) == sorted(["before", "into the silence", "while offline", "after"]), texts
        ana.wait_js("window.ahoy.state.outbox.length === 0")
