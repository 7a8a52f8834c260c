"""The admin removes a dead box from the site, from the admin page of another box:
real nats-servers and Ahoy services, phones as WebSocket clients."""

from __future__ import annotations

from pathlib import Path

from sitetest import (
    AdminSession,
    admin_ready,
    make_site,
    mid,
    online_at,
    wait_for,
    whole_conversation,
)


def test_a_dead_box_removed_by_the_admin_is_dropped_refused_back_and_added_again(
    tmp_path: Path
) -> None:
    a, b = make_site(tmp_path, 2)
    admin_ready(a.nats)
    try:
        for box in (a, b):
            box.start()
        wait_for(lambda: all(x.status().get("linked") == 1 for x in (a, b)), what="links")
        alice, bob = a.client("Alice"), b.client("Bob")
        wait_for(lambda: online_at(a, bob.user_id), what="Bob online at A")
        conv_ack = bob.request("send", "ack", id=mid(), to=alice.user_id, text="before")
        assert alice.expect("message", timeout=20, id=conv_ack["id"])["text"] == "before"
        admin = AdminSession(a)

        def link_of_b() -> dict[str, object] | None:
            links = [x for x in admin.replication()["links"] if x["box"] == b.box]
            return links[0] if links else None

        def link_state() -> object:
            link = link_of_b()
            return link["state"] if link else None

        # A box that is linked is not dead: removing it is refused, in words.
        status, body = admin.call("DELETE", f"/admin/api/site/boxes/{b.box}")
        assert status == 409 and "linked right now" in body["error"]
        for named, code, words in (("not-a-box", 400, "8-digit id"),
                                   (a.box, 409, "this box itself"),
                                   ("0000abcd", 404, "No box with that id")):
            status, body = admin.call("DELETE", f"/admin/api/site/boxes/{named}")
            assert status == code and words in body["error"], (named, body)
        status, body = admin.call("POST", f"/admin/api/site/boxes/{b.box}")
        assert status == 404 and "not removed" in body["error"]
        # Without the page's CSRF token, nothing happens.
        status, _ = admin.call("DELETE", f"/admin/api/site/boxes/{b.box}", csrf=False)
        assert status == 403
        b.ahoy.kill()
        b.nats.kill()
        wait_for(lambda: link_state() == "unreachable", what="B unreachable at A")
        status, body = admin.call("DELETE", f"/admin/api/site/boxes/{b.box}")
        assert status == 200 and body["removed"] == [b.box], body
        shown = admin.replication()
        assert [x for x in shown["links"] if x["box"] == b.box] == []
        assert shown["removed"] == [b.box]
        assert not online_at(a, bob.user_id)
        conv = "dm:{}:{}".format(*sorted((alice.user_id, bob.user_id)))
        # Every message already received stays.
        assert [m["text"] for m in whole_conversation(alice, conv)] == ["before"]
        assert a.status()["boxes"] == 1
        # The removed box comes back: refused (shown as removed), its news not read.
        b.start()
        wait_for(lambda: link_state() == "removed", what="B back and refused at A")
        bob_again = b.client()
        assert bob_again.request("hello", "welcome", token=bob.token)["type"] == "welcome"
        after = bob_again.request("send", "ack", id=mid(), to=alice.user_id, text="after")
        assert after["type"] == "ack", after
        wait_for(lambda: b.status().get("outbox") == 0, what="B's message in B's stream")
        back = (link_of_b() or {})["since"]
        wait_for(lambda: (link_of_b() or {}).get("since", 0) > back,  # type: ignore[operator]
                 what="A asking B again", timeout=60)
        assert [m["text"] for m in whole_conversation(alice, conv)] == ["before"]
        assert not online_at(a, bob.user_id)
        # Added again by the admin: read from where A stopped, nothing twice.
        status, body = admin.call("POST", f"/admin/api/site/boxes/{b.box}")
        assert status == 200 and body["removed"] == [], body
        assert alice.expect("message", timeout=30, id=after["id"])["text"] == "after"
        wait_for(lambda: link_state() == "connected", what="B linked again")
        wait_for(lambda: online_at(a, bob.user_id), what="Bob online at A again")
        assert [m["text"] for m in whole_conversation(alice, conv)] == ["before", "after"]
    finally:
        for box in (a, b):
            box.stop()
