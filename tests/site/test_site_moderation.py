"""What an admin or a room's owner does on one box reaches every box of the site:
real nats-servers and Ahoy services, phones as WebSocket clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
