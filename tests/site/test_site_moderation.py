"""What an admin or a room's owner does on one box reaches every box of the site:
real nats-servers and Ahoy services, phones as WebSocket clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sitetest import (
    AdminSession,
    SiteBox,
    admin_ready,
    make_site,
    mid,
    online_at,
    wait_for,
    whole_conversation,
)


@pytest.fixture
def site_with_admin(tmp_path: Path) -> Iterator[list[SiteBox]]:
    """Two linked boxes; box B's admin page has a password."""
    boxes = make_site(tmp_path, 2)
    admin_ready(boxes[1].nats)
    try:
        for box in boxes:
            box.start()
        wait_for(lambda: all(b.status().get("linked") == 1 for b in boxes), what="links")
        yield boxes
    finally:
        for box in boxes:
            box.stop()


def test_a_message_the_admin_of_one_box_deletes_is_gone_on_every_box(
    site_with_admin: list[SiteBox]
) -> None:
    a, b = site_with_admin
    alice, bob = a.client("Alice"), b.client("Bob")
    wait_for(lambda: online_at(a, bob.user_id), what="Bob online at A")
    conv = "dm:" + ":".join(sorted((alice.user_id, bob.user_id)))
    kept = alice.request("send", "ack", id=mid(), to=bob.user_id, text="ahoy")
    rude = alice.request("send", "ack", id=mid(), to=bob.user_id, text="something rude")
    got = bob.expect("message", timeout=20, id=rude["id"])
    # Box B's admin deletes it (B numbers it its own way: its seq there).
    status, _ = AdminSession(b).call("DELETE", f"/admin/api/messages/{conv}/{got['seq']}")
    assert status == 200
    assert bob.expect("message_deleted", timeout=20)["seq"] == got["seq"]
    # Alice, on box A, is told too, with A's seq of it, and A no longer has it.
    assert alice.expect("message_deleted", timeout=20) == {
        "type": "message_deleted", "conv": conv, "seq": rude["seq"]}
    for phone in (alice, bob):
        assert [m["id"] for m in whole_conversation(phone, conv)] == [kept["id"]]
    # A phone that comes to box A later does not get it back either.
    again = a.client()
    assert again.request("hello", "welcome", token=alice.token)["type"] == "welcome"
    assert [m["id"] for m in whole_conversation(again, conv)] == [kept["id"]]


def test_join_requests_and_invitations_made_on_one_box_are_answered_on_the_other(
    site_with_admin: list[SiteBox]
) -> None:
    a, b = site_with_admin
    alice, bob, cy = a.client("Alice"), b.client("Bob"), b.client("Cy")
    wait_for(lambda: online_at(a, bob.user_id) and online_at(a, cy.user_id),
             what="Bob and Cy online at A")
    made = alice.request("room_create", "room", name="Wardroom", approval=True)
    club = made["room"]["id"]
    # Bob, on box B, asks to join Alice's room; Alice, on box A, is asked.
    wait_for(lambda: bob.request("room_join", "room_pending", room=club)["type"]
             == "room_pending", what="the room at B")
    asked = alice.expect("room_request", timeout=20)
    assert (asked["room"], asked["user"]) == (club, bob.user_id)
    assert alice.request("room_approve", "room", room=club, user=bob.user_id)["type"] == "room"
    assert bob.expect("room", timeout=20, ref=None)["room"]["id"] == club
    # Box B no longer holds the request: Bob is a member there, nothing is pending.
    room_at_b = wait_for(lambda: next((r for r in rooms_seen(b, bob) if r["id"] == club and
                                       bob.user_id in r.get("members", [])), None),
                         what="Bob a member at B")
    assert room_at_b.get("requests", []) == [], room_at_b  # left out when none
    # Alice invites Cy (on box B) to a hidden room: the invitation reaches Cy there,
    # Cy joins on box B, and box A has no invitation left.
    hidden = alice.request("room_create", "room", name="Chart room",
                           visibility="hidden")["room"]["id"]
    assert alice.request("room_invite", "room", room=hidden, user=cy.user_id)["type"] == "room"
    invited = cy.expect("room_invited", timeout=20)
    assert invited["room"]["id"] == hidden
    assert cy.request("room_join", "room", room=hidden)["type"] == "room"

    def invitations_left_at_a() -> list[str] | None:
        room = next((r for r in rooms_seen(a, alice) if r["id"] == hidden), None)
        if room is None or cy.user_id not in room["members"]:
            return None
        return list(room.get("invited", []))  # left out when none

    assert wait_for(lambda: invitations_left_at_a() == [], what="Cy a member at A") is True


def rooms_seen(box: SiteBox, phone: Any) -> list[dict[str, Any]]:
    """The rooms `phone`'s person is told about when they connect to `box` now."""
    from ahoytest import WsClient

    again = WsClient(box.ahoy.ws_url)
    try:
        welcome = again.request("hello", "welcome", token=phone.token)
        return list(welcome["rooms"])
    finally:
        again.close()


def test_a_profile_picture_set_on_one_box_shows_on_every_box_and_the_later_one_wins(
    site_with_admin: list[SiteBox]
) -> None:
    import io
    import json
    import urllib.request

    from PIL import Image

    a, b = site_with_admin
    alice = a.client("Alice")
    bob, cy = b.client("Bob", watch=True), a.client("Cy", watch=True)
    wait_for(lambda: online_at(b, alice.user_id), what="Alice online at B")

    def picture(colour: tuple[int, int, int]) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (300, 300), colour).save(out, "PNG")
        return out.getvalue()

    def upload(box: SiteBox, token: str, colour: tuple[int, int, int]) -> str:
        request = urllib.request.Request(
            box.ahoy.http_url + "/api/avatar", data=picture(colour), method="POST",
            headers={"Content-Type": "application/octet-stream",
                     "Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return str(json.load(reply)["user"]["avatar"])

    def shown(box: SiteBox, url: str) -> tuple[int, int, int]:
        with urllib.request.urlopen(box.ahoy.http_url + url, timeout=30) as reply:
            rgb = Image.open(io.BytesIO(reply.read())).convert("RGB").getpixel((128, 128))
        return rgb  # type: ignore[return-value]

    def close(rgb: tuple[int, int, int], want: tuple[int, int, int]) -> bool:
        return all(abs(x - y) < 24 for x, y in zip(rgb, want, strict=True))

    upload(a, alice.token, (200, 30, 30))
    # Bob, on box B, is told of Alice's picture, and box B serves it.
    def avatar_of_alice(phone: Any) -> str:
        while True:
            url = phone.expect_user(alice.user_id, timeout=20).get("avatar")
            if url:
                return str(url)

    assert close(shown(b, avatar_of_alice(bob)), (200, 30, 30))
    # Alice, now on box B, sets another one there: the later one is on both boxes
    # (Cy's phone on box A is told of it, and box A serves it).
    alice_on_b = b.client()
    assert alice_on_b.request("hello", "welcome", token=alice.token)["type"] == "welcome"
    upload(b, alice.token, (30, 30, 200))
    url = avatar_of_alice(cy)
    while not close(shown(a, url), (30, 30, 200)):
        url = avatar_of_alice(cy)
