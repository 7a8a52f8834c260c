"""Private rooms: hidden rooms stay hidden, invitations, approvals, invite links, moderators."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from ahoytest import WsClient, unique
from browserkit import Phone


def create_room(phone: Phone, name: str, hidden: bool = False, approval: bool = False) -> str:
    phone.open_tab("rooms")
    phone.tid("create-room-button").click()
    phone.tid("room-name-input").fill(name)
    if hidden:
        phone.tid("room-visibility-input").select_option("hidden")
    if approval:
        phone.tid("room-approval-input").check()
    phone.tid("room-create-submit").click()
    phone.tid("conv-screen").wait_for(state="visible")
    return str(phone.page.evaluate("window.ahoy.state.current")).removeprefix("room:")


def room_settings(phone: Phone) -> Any:
    phone.tid("room-info-button").click()
    dialog = phone.tid("room-info-dialog")
    dialog.wait_for(state="visible")
    return dialog


def test_hidden_room_is_invisible_and_refused_until_invited(ahoy_server: Any, phones: Any) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    ana_name, ben_name = unique("Ana"), unique("Ben")
    ana.join(ana_name)
    ben.join(ben_name)
    cy = WsClient(ahoy_server.ws_url)
    try:
        cy.hello(unique("Cy"))
        room_name = unique("Vault")
        room = create_room(ana, room_name, hidden=True)

        # Not listed for Ben or Cy, not in the public API, and a direct join is refused.
        ben.open_tab("rooms")
        ben.page.wait_for_timeout(300)  # quiet window: a wrongly listed room would show now
        assert ben.tid("room-item").filter(has_text=room_name).count() == 0
        assert not ben.page.evaluate("id => window.ahoy.state.rooms.has(id)", room)
        with urllib.request.urlopen(ahoy_server.http_url + "/api/rooms") as r:
            assert room not in json.dumps(json.load(r))
        refused = cy.request("room_join", "room", room=room)
        assert refused["type"] == "error" and refused["code"] == "unknown_room", refused
        refused = ben.page.evaluate(
            "id => window.ahoy.request({type: 'room_join', room: id}).then(() => 'joined', e => e.code)", room)
        assert refused == "unknown_room"

        # Ana invites Ben from the room settings; Ben sees the invitation and joins.
        dialog = room_settings(ana)
        dialog.get_by_test_id("room-invite-list").locator("li").filter(has_text=ben_name) \
            .get_by_test_id("room-invite").click()
        ana.tid("room-invited").filter(has_text=ben_name).wait_for()
        ben.tid("invite-open").click()
        ben.tid("conv-screen").wait_for(state="visible")
        ben.tid("composer").wait_for(state="visible")
        ana.page.keyboard.press("Escape")
        ana.say("welcome to the vault")
        ben.wait_text("welcome to the vault")

        # An invite link lets Cy in directly; Ana makes Ben a moderator, and Ben removes Cy.
        dialog = room_settings(ana)
        dialog.get_by_test_id("invite-link-button").click()
        link = ana.tid("invite-link").inner_text()
        assert f"#join={room}:" in link
        code = link.rsplit(":", 1)[1]
        assert cy.request("room_join", "room", room=room, code=code)["type"] == "room"
        ana.page.keyboard.press("Escape")
        ana.wait_js("id => window.ahoy.state.rooms.get(id).members.length === 3", room)
        dialog = room_settings(ana)
        dialog.get_by_test_id("room-members").locator("li").filter(has_text=ben_name) \
            .get_by_test_id("room-role").click()
        ana.tid("room-members").locator("li").filter(has_text=ben_name).get_by_test_id("moderator-tag").wait_for()
        ben.wait_js("id => (window.ahoy.state.rooms.get(id).moderators || []).length === 1", room)
        dialog = room_settings(ben)
        members = dialog.get_by_test_id("room-members")
        assert members.locator("li").filter(has_text=ana_name).get_by_test_id("room-kick").count() == 0
        members.locator(f"li[data-user={cy.user_id}]").get_by_test_id("room-kick").click()
        assert cy.expect("room_removed", room=room)["by"] == ben.my_id()
    finally:
        cy.close()


def test_joining_a_room_with_approval_waits_for_the_owner(ahoy_server: Any, phones: Any) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    ben_name = unique("Ben")
    ben.join(ben_name)
    room_name = unique("Bridge")
    room = create_room(ana, room_name, approval=True)

    ben.open_tab("rooms")
    ben.tid("room-item").filter(has_text=room_name).click()
    ben.tid("conv-screen").wait_for(state="visible")
    ben.tid("room-join-prompt").get_by_text("Waiting for a moderator").wait_for()
    assert ben.tid("composer").is_hidden()

    # The owner sees the request and lets Ben in.
    ana.wait_js("id => (window.ahoy.state.rooms.get(id).requests || []).length === 1", room)
    dialog = room_settings(ana)
    dialog.get_by_test_id("room-requests").locator("li").filter(has_text=ben_name) \
        .get_by_test_id("room-approve").click()
    ben.tid("composer").wait_for(state="visible")
    ben.say("thanks for letting me in")
    ana.page.keyboard.press("Escape")
    ana.wait_text("thanks for letting me in")


def test_a_declined_request_is_told(ahoy_server: Any, phones: Any) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    ben_name = unique("Ben")
    ben.join(ben_name)
    room_name = unique("Brig")
    room = create_room(ana, room_name, approval=True)
    ben.open_tab("rooms")
    ben.tid("room-item").filter(has_text=room_name).click()
    ana.wait_js("id => (window.ahoy.state.rooms.get(id).requests || []).length === 1", room)
    room_settings(ana).get_by_test_id("room-deny").click()
    ben.tid("toast").get_by_text("was declined").wait_for()
