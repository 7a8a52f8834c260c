"""Picking a name, getting it refused, being forgotten by the box; the room owner's controls."""

from __future__ import annotations

import uuid
from typing import Any

from browserkit import wait_js


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:4]}"


def test_a_taken_name_is_refused_clearly_and_another_one_works(ahoy_server: Any, phones: Any) -> None:
    name = unique("Ana")
    ana = phones(ahoy_server.http_url)
    ana.join(name)
    other = phones(ahoy_server.http_url)
    other.tid("name-input").fill(name.upper())
    other.tid("join-button").click()
    error = other.tid("join-error")
    error.wait_for()
    other.wait_js("document.querySelector('[data-testid=join-error]').textContent.length > 0")
    assert "already" in error.inner_text()
    assert other.tid("join-screen").is_visible()
    other.join(unique("Ann"))


def test_a_device_the_box_forgot_is_asked_for_its_name_again(ahoy_server: Any, phones: Any) -> None:
    phone = phones(ahoy_server.http_url)
    phone.join(unique("Ben"))
    phone.page.evaluate("localStorage.setItem('ahoy.token', JSON.stringify('not-a-real-token'))")
    phone.page.reload()
    phone.tid("join-screen").wait_for(state="visible")
    assert "Pick your name again" in phone.tid("join-error").inner_text()
    phone.join(unique("Ben"))


def test_the_room_owner_renames_closes_and_removes_people(ahoy_server: Any, phones: Any) -> None:
    owner, guest = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    owner.join(unique("Own"))
    guest_name = unique("Gus")
    guest.join(guest_name)
    room_name = unique("Mess")
    conv = owner.create_room(room_name)
    room_id = conv.split(":", 1)[1]
    guest.open_room(room_name)
    guest.back()
    guest.open_tab("rooms")

    owner.tid("room-info-button").click()
    owner.tid("room-edit-name").fill(room_name + " hall")
    owner.tid("room-edit-description").fill("Meals at 7")
    owner.tid("room-save").click()
    owner.tid("conv-title").get_by_text(room_name + " hall").wait_for()
    item = guest.page.locator(f"[data-testid=room-item][data-room={room_id}]")
    item.get_by_text(room_name + " hall").wait_for()
    item.get_by_text("Meals at 7").wait_for()

    owner.tid("room-info-button").click()
    owner.tid("room-members").get_by_text(guest_name).wait_for()
    owner.tid("room-kick").click()
    # Closed at once, while the dialog's refresh after the kick is on its way:
    # it must not pop back (it did, and took the next click).
    owner.page.keyboard.press("Escape")
    guest.tid("toast").get_by_text("You were removed").wait_for()
    guest.wait_js("(id) => !window.ahoy.state.rooms.get(id).members.includes(window.ahoy.state.me.id)", room_id)
    owner.page.wait_for_timeout(1000)  # the refresh's room_get and people answered
    assert owner.page.locator("#dialog[open]").count() == 0

    owner.page.on("dialog", lambda d: d.accept())
    owner.tid("room-info-button").click()
    owner.tid("room-delete").click()
    owner.tid("home-screen").wait_for(state="visible")
    item.wait_for(state="detached")


def test_renaming_shows_the_new_name_to_others(ahoy_server: Any, phones: Any) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    ben.join(unique("Ben"))
    new_name = unique("Anna")
    ana.tid("settings-button").click()
    ana.tid("settings-name").fill(new_name)
    ana.tid("settings-name").press("Enter")
    ana.tid("me-name").get_by_text(new_name).wait_for()
    ben.open_tab("people")
    ben.tid("user-item").filter(has_text=new_name).wait_for()
    assert ana.page.evaluate("window.ahoy.state.conn") == "online"


def _is_member(page: Any, room_id: str) -> bool:
    """Asked of the box, after everything this page sent before (an auto-join included)."""
    return bool(page.evaluate(
        """async (id) => {
             try { await window.ahoy.request({type: 'sync', conv: 'room:' + id, after: 0}); return true; }
             catch (err) { if (err.code === 'not_member') return false; throw err; }
           }""", room_id))


def test_a_person_who_left_a_room_is_not_put_back_by_a_reload(ahoy_server: Any, phones: Any) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    ben.join(unique("Ben"))
    room_id = ana.create_room(unique("Rota")).removeprefix("room:")
    link = f"{ahoy_server.http_url}/#room={room_id}"

    # Following the room's link (its QR code, opened fresh) joins it.
    ben.page.goto("about:blank")
    ben.page.goto(link)
    ben.wait_online()
    ben.tid("composer").wait_for(state="visible")
    assert _is_member(ben.page, room_id)

    # Leaving takes the room out of the address, so a reload does not join again.
    ben.tid("room-info-button").click()
    ben.tid("room-leave").click()
    ben.wait_js("id => !window.ahoy.state.rooms.get(id).members.includes(window.ahoy.state.me.id)", room_id)
    assert ben.page.evaluate("location.hash") == ""
    ben.page.reload()
    ben.wait_online()
    ben.tid("home-screen").wait_for(state="visible")
    assert not _is_member(ben.page, room_id)

    # Following the link again is asking to come back.
    ben.page.goto("about:blank")
    ben.page.goto(link)
    ben.wait_online()
    ben.tid("composer").wait_for(state="visible")
    assert _is_member(ben.page, room_id)

    # Ben leaves in another tab (the box then serves that one; this one is told
    # it is open elsewhere and still shows #room=…). Back here he reloads: the
    # room shows with its Join button, and he is not joined behind his back.
    other = ben.context.new_page()
    other.goto(ahoy_server.http_url + "/")
    wait_js(other, "window.ahoy.state.conn === 'online'")
    ben.wait_js("window.ahoy.state.conn === 'replaced'")
    other.evaluate("id => window.ahoy.request({type: 'room_leave', room: id})", room_id)
    assert not _is_member(other, room_id)
    other.close()
    assert ben.page.evaluate("location.hash") == f"#room={room_id}"
    ben.page.reload()
    ben.wait_online()
    ben.page.locator("#room-join-bar").wait_for(state="visible")
    assert not _is_member(ben.page, room_id)
    # The Join button there does join, and the address names the room again.
    ben.tid("room-join-button").click()
    ben.tid("composer").wait_for(state="visible")
    assert _is_member(ben.page, room_id)
    assert ben.page.evaluate("location.hash") == f"#room={room_id}"


def test_a_room_one_is_not_in_shows_how_many_are_in_it_and_who_on_opening_its_details(
        ahoy_server: Any, phones: Any) -> None:
    """Who is in a room goes to its members only (docs/protocol.md): the others'
    room list counts them, and its details ask the box who they are."""
    import re

    ana, ben, cy = (phones(ahoy_server.http_url) for _ in range(3))
    ana_name, ben_name = unique("Ana"), unique("Ben")
    ana.join(ana_name)
    ben.join(ben_name)
    cy.join(unique("Cy"))
    room_name = unique("Galley")
    room_id = ana.create_room(room_name).removeprefix("room:")
    # The rooms tab watches the other rooms' counts (`rooms` with `watch`):
    # Ben joining shows there at once.
    cy.open_tab("rooms")
    cy.wait_js("window.ahoy.state.watchingRooms === true")
    item = cy.page.locator(f"[data-testid=room-item][data-room={room_id}]")
    counts = item.get_by_test_id("room-counts")
    counts.get_by_text(re.compile(r"^1 online · 1/\d+ members$")).wait_for()
    ben.open_room(room_name)
    counts.get_by_text(re.compile(r"^2 online · 2/\d+ members$")).wait_for()
    assert cy.page.evaluate("id => window.ahoy.state.rooms.get(id).members", room_id) == []
    # Off the tab it stops; back on it, the answer brings the counts as they
    # are (Ben left meanwhile), and they follow again (he is back).
    cy.open_tab("chats")
    cy.wait_js("window.ahoy.state.watchingRooms === false")
    ben.page.evaluate("id => window.ahoy.request({type: 'room_leave', room: id})", room_id)
    cy.open_tab("rooms")
    cy.wait_js("window.ahoy.state.watchingRooms === true")
    counts.get_by_text(re.compile(r"^1 online · 1/\d+ members$")).wait_for()
    ben.page.evaluate("id => window.ahoy.request({type: 'room_join', room: id})", room_id)
    counts.get_by_text(re.compile(r"^2 online · 2/\d+ members$")).wait_for()

    # Ana closes the room; Cy opens it without joining and looks at its details.
    ana.tid("room-info-button").click()
    ana.tid("room-edit-active").uncheck()
    ana.tid("room-save").click()
    cy.wait_js("id => window.ahoy.state.rooms.get(id).active === false", room_id)
    item.click()
    cy.tid("conv-screen").wait_for(state="visible")
    cy.tid("room-info-button").click()
    members = cy.tid("room-members")
    members.get_by_text(ana_name).wait_for()
    members.get_by_text(ben_name).wait_for()
    assert members.locator("li").count() == 2
