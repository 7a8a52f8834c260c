"""First use: a new phone lands in the box's default room, first message in a few taps."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ahoytest import AhoyServer


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:4]}"


@pytest.fixture(scope="module")
def box_with_everyone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AhoyServer]:
    data: Path = tmp_path_factory.mktemp("first-use") / "data"
    server = AhoyServer(data, default_room="Everyone").start()
    yield server
    server.stop()


class Taps:
    """Counts what a person taps; typing is not a tap."""

    def __init__(self, phone: Any) -> None:
        self.phone = phone
        self.count = 0

    def tap(self, testid: str) -> None:
        self.count += 1
        self.phone.tid(testid).click()


def test_a_new_person_sends_a_first_message_in_two_taps(box_with_everyone: Any, phones: Any) -> None:
    ana_name, ben_name = unique("Ana"), unique("Ben")
    ben = phones(box_with_everyone.http_url)
    ben.tid("name-input").fill(ben_name)
    ben.tid("join-button").click()
    ben.tid("composer").wait_for(state="visible")
    ben.say("Welcome aboard, whoever comes next")

    ana = phones(box_with_everyone.http_url)
    taps = Taps(ana)
    ana.tid("name-input").fill(ana_name)
    taps.tap("join-button")
    # She lands in the room, with what was said there before.
    ana.tid("composer").wait_for(state="visible")
    assert ana.tid("conv-title").inner_text() == "Everyone"
    ana.wait_text("Welcome aboard, whoever comes next")
    ana.tid("composer").fill("Hello from Ana")
    taps.tap("send-button")
    ana.page.locator("[data-testid=message]").filter(has_text="Hello from Ana").locator(
        "[data-testid=msg-status][data-state=delivered]").wait_for()
    ben.wait_text("Hello from Ana")
    assert taps.count <= 3, taps.count

    # She can leave it, and it stays left.
    room = str(ana.page.evaluate("window.ahoy.state.current")).removeprefix("room:")
    ana.tid("room-info-button").click()
    ana.tid("room-leave").click()
    ana.wait_js("id => !window.ahoy.state.rooms.get(id).members.includes(window.ahoy.state.me.id)",
                room)
    ana.page.goto(box_with_everyone.http_url + "/")  # a fresh start, not the room's link
    ana.wait_online()
    assert ana.page.evaluate(
        "id => window.ahoy.state.rooms.get(id).members.includes(window.ahoy.state.me.id)",
        room) is False
