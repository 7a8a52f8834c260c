"""Two and three boxes as one site: each with its real nats-server and Ahoy service,
phones as WebSocket clients."""

from __future__ import annotations

import time
from pathlib import Path

from sitetest import (
    SiteBox,
    admin_dashboard,
    admin_ready,
    make_site,
    mid,
    online_at,
    positions,
    probe_rooms,
    received,
    status_at,
    wait_for,
    whole_conversation,
)


def test_a_message_and_presence_cross_to_a_phone_on_another_box(
    two_boxes: list[SiteBox]
) -> None:
    a, b = two_boxes
    alice = a.client("Alice", watch=True)
    bob = b.client("Bob")
    assert alice.expect_user(bob.user_id, timeout=20)["status"] == "online"
    ack = alice.request("send", "ack", id=mid(), to=bob.user_id, text="ahoy from deck 2")
    assert ack["type"] == "ack", ack
    got = bob.expect("message", timeout=20)
    assert (got["from"], got["text"], got["at"]) == (alice.user_id, "ahoy from deck 2", ack["at"])
    assert ack["at"].startswith(a.box + ":")


def join_room_across(owner: object, other: object, name: str) -> str:
    """`owner` makes a public room; `other`, on another box, joins it once it arrived."""
    made = owner.request("room_create", "room", name=name)  # type: ignore[attr-defined]
    assert made["type"] == "room", made
    room_id = made["room"]["id"]

    def joined() -> bool:
        reply = other.request("room_join", "room", room=room_id)  # type: ignore[attr-defined]
        return reply["type"] == "room"

    wait_for(joined, what="the room on the other box")
    return str(room_id)


def test_a_phone_moving_to_another_box_gets_exactly_what_it_missed(
    two_boxes: list[SiteBox]
) -> None:
    a, b = two_boxes
    alice, dave = a.client("Alice"), a.client("Dave")
    bob = b.client("Bob")
    room = join_room_across(alice, bob, "Deck")
    assert dave.request("room_join", "room", room=room)["type"] == "room"
    conv = f"room:{room}"
    sent: list[dict[str, object]] = []
    for who in (alice, bob, alice, bob):
        ack = who.request("send", "ack", id=mid(), room=room, text=f"before {len(sent)}")
        assert ack["type"] == "ack", ack
        sent.append(ack)
    wait_for(lambda: len(whole_conversation(alice, conv)) == 4, what="A has all four")
    # Alice's phone has seen all four (her acks, and Bob's two as live messages).
    seen = positions(whole_conversation(alice, conv))
    alice_token = alice.token
    alice.cut()
    missed = []
    for who in (bob, dave, bob):
        ack = who.request("send", "ack", id=mid(), room=room, text=f"missed {len(missed)}")
        missed.append(ack["id"])
    wait_for(lambda: len(whole_conversation(bob, conv)) == 7, what="B has all seven")

    moved = b.client()
    welcome = moved.request("hello", "welcome", token=alice_token, box=a.box, since_at=seen)
    assert welcome["type"] == "welcome", welcome
    assert welcome["you"]["id"] == alice.user_id and welcome["box"] == b.box
    caught_up = [m for m in received(moved) if m["conv"] == conv]
    # Exactly the missed ones, each once, in this box's order.
    assert sorted(m["id"] for m in caught_up) == sorted(missed)
    assert [m["seq"] for m in caught_up] == sorted(m["seq"] for m in caught_up)
    again = moved.request("send", "ack", id=mid(), room=room, text="back on deck 4")
    assert again["type"] == "ack" and again["at"].startswith(b.box + ":")
    assert bob.expect("message", timeout=10, id=again["id"])["text"] == "back on deck 4"


def test_killing_a_box_during_a_burst_loses_nothing_acknowledged_and_duplicates_nothing(
    two_boxes: list[SiteBox]
) -> None:
    a, b = two_boxes
    alice, bob = a.client("Alice"), b.client("Bob")
    wait_for(lambda: b.status().get("outbox") == 0 and a.status().get("lag") == 0,
             what="Bob's record at A")
    first = alice.request("send", "ack", id=mid(), to=bob.user_id, text="hello")
    conv = first["conv"]
    sent = [first["id"]]
    for i in range(50):  # within the rate limit's burst
        sent.append(mid())
        alice.send("send", id=sent[-1], to=bob.user_id, text=f"burst {i}")
    acked = [first["id"]]
    while len(acked) < 20:
        acked.append(alice.expect("ack", timeout=10)["id"])
    a.ahoy.kill()  # kill -9 of the service mid-burst, then of its nats-server
    a.nats.kill()
    a.start()
    wait_for(lambda: set(acked) <= {m["id"] for m in whole_conversation(bob, conv)},
             what="everything acknowledged on B")
    wait_for(lambda: a.status().get("outbox") == 0, what="A's outbox empty")
    on_b = [m["id"] for m in whole_conversation(bob, conv)]
    assert len(on_b) == len(set(on_b))  # nothing twice
    assert set(on_b) <= set(sent)
    back = a.client()
    assert back.request("hello", "welcome", token=alice.token)["type"] == "welcome"
    assert sorted(m["id"] for m in whole_conversation(back, conv)) == sorted(on_b)


def display_order(messages: list[dict[str, object]]) -> list[object]:
    """The order every phone shows a conversation in: the acknowledging box's time,
    then the position (docs/protocol.md)."""
    def key(m: dict[str, object]) -> tuple[int, str, int]:
        box, n = str(m["at"]).split(":")
        return int(m["ts"]), box, int(n)  # type: ignore[call-overload]

    return [m["id"] for m in sorted(messages, key=key)]


def test_a_split_site_keeps_chatting_and_merges_every_message_once_in_one_order(
    two_boxes: list[SiteBox]
) -> None:
    a, b = two_boxes
    alice, bob = a.client("Alice"), b.client("Bob")
    room = join_room_across(alice, bob, "Split")
    conv = f"room:{room}"
    for box in (a, b):
        box.nats.stop()  # the site splits: each box alone
    wait_for(lambda: a.status().get("linked") == 0 and b.status().get("linked") == 0,
             what="the split")
    ids = []
    for i in range(10):  # both parts keep chatting; each box acknowledges on its own
        for who in (alice, bob):
            ack = who.request("send", "ack", id=mid(), room=room, text=f"split {i}")
            assert ack["type"] == "ack", ack
            ids.append(ack["id"])
    assert len(whole_conversation(alice, conv)) == 10
    for box in (a, b):
        box.nats.start()  # the link returns
    for client in (alice, bob):
        wait_for(lambda c=client: len(whole_conversation(c, conv)) >= 20, what="the merge")
    on_a, on_b = whole_conversation(alice, conv), whole_conversation(bob, conv)
    assert sorted(m["id"] for m in on_a) == sorted(ids) == sorted(m["id"] for m in on_b)
    assert [m["seq"] for m in on_a] == list(range(1, 21))  # gap-free on each box
    assert display_order(on_a) == display_order(on_b)
    # Positions agree between boxes.
    assert {m["id"]: m["at"] for m in on_a} == {m["id"]: m["at"] for m in on_b}


def test_a_box_with_a_wrong_secret_is_refused_and_learns_nothing(tmp_path: Path) -> None:
    from sitetest import NatsBox

    good = NatsBox(tmp_path / "good" / "data")
    wrong = NatsBox(tmp_path / "wrong" / "data", secret="not the site secret at all")
    admin_ready(good)
    boxes = [SiteBox(good, [wrong]), SiteBox(wrong, [good])]
    try:
        for box in boxes:
            box.start()
        wait_for(lambda: all(b.status().get("refused") == 1 for b in boxes), what="refusals")
        alice = boxes[0].client("Alice")
        mallory = boxes[1].client("Mallory")
        made = alice.request("room_create", "room", name="Private deck")
        assert made["type"] == "room"
        reply = mallory.request("room_join", "room", room=made["room"]["id"])
        assert reply["type"] == "error"  # the room never reached the stranger
        assert all(b.status().get("linked") == 0 for b in boxes)
        # The admin page names the refused box and why.
        shown = admin_dashboard(boxes[0])["site_replication"]
        assert shown["box"] == boxes[0].box
        [link] = shown["links"]
        assert link["state"] == "refused" and "another site secret" in link["problem"]
    finally:
        for box in boxes:
            box.stop()


def test_a_call_between_phones_on_two_boxes_is_signaled_both_ways(
    two_boxes: list[SiteBox]
) -> None:
    a, b = two_boxes
    alice, bob = a.client("Alice"), b.client("Bob")
    wait_for(lambda: online_at(a, bob.user_id), what="Bob online at A")
    ringing = alice.request("call_invite", "call_ringing", to=bob.user_id, media="audio")
    assert ringing["type"] == "call_ringing", ringing
    call = ringing["call"]
    incoming = bob.expect("call_incoming", timeout=10)
    assert (incoming["call"], incoming["from"]) == (call, alice.user_id)
    accepted = bob.request("call_accept", "call_accepted", call=call)
    assert accepted["type"] == "call_accepted", accepted
    assert alice.expect("call_accepted", timeout=10)["call"] == call
    bob.send("signal", call=call, to=alice.user_id, data={"sdp": "answer from deck 4"})
    got = alice.expect("signal", timeout=10)
    assert (got["from"], got["data"]) == (bob.user_id, {"sdp": "answer from deck 4"})
    alice.send("signal", call=call, to=bob.user_id, data={"candidate": "deck 2"})
    assert bob.expect("signal", timeout=10)["data"] == {"candidate": "deck 2"}
    bob.send("call_hangup", call=call)
    assert alice.expect("call_ended", timeout=10)["call"] == call


def test_people_in_a_call_show_busy_on_every_box_of_the_site(
    two_boxes: list[SiteBox]
) -> None:
    """The call is held on A; Carol, on B, sees both callers busy, then free again."""
    a, b = two_boxes
    alice, bob, carol = a.client("Alice"), b.client("Bob"), b.client("Carol", watch=True)
    wait_for(lambda: online_at(a, bob.user_id), what="Bob online at A")
    wait_for(lambda: status_at(b, alice.user_id) == "online", what="Alice online at B")
    ringing = alice.request("call_invite", "call_ringing", to=bob.user_id, media="audio")
    assert ringing["type"] == "call_ringing", ringing
    call = ringing["call"]
    assert bob.expect("call_incoming", timeout=10)["call"] == call
    assert bob.request("call_accept", "call_accepted", call=call)["type"] == "call_accepted"
    assert carol.expect_user(alice.user_id, timeout=20, status="busy")
    wait_for(lambda: status_at(b, alice.user_id) == "busy" == status_at(b, bob.user_id),
             what="both busy at B")
    assert status_at(a, bob.user_id) == "busy"
    bob.send("call_hangup", call=call)
    assert alice.expect("call_ended", timeout=10)["call"] == call
    assert carol.expect_user(alice.user_id, timeout=20, status="online")
    wait_for(lambda: status_at(b, alice.user_id) == "online" == status_at(b, bob.user_id),
             what="both free again at B")


def test_messages_of_a_box_that_dies_for_good_reach_a_box_that_never_saw_it(
    tmp_path: Path
) -> None:
    """A and C are not linked to each other, only to B: A's messages reach C through
    B's stream; then A dies for good and C still has all of them."""
    from sitetest import NatsBox

    na, nb, nc = (NatsBox(tmp_path / name / "data") for name in ("a", "b", "c"))
    a, b, c = SiteBox(na, [nb]), SiteBox(nb, [na, nc]), SiteBox(nc, [nb])
    boxes = [a, b, c]
    try:
        for box in boxes:
            box.start()
        wait_for(lambda: b.status().get("linked") == 2, what="links")
        alice, bob, carol = a.client("Alice"), b.client("Bob"), c.client("Carol")
        room = join_room_across(carol, alice, "Three decks")
        assert bob.request("room_join", "room", room=room)["type"] == "room"
        conv = f"room:{room}"
        ids = [alice.request("send", "ack", id=mid(), room=room, text=f"from A {i}")["id"]
               for i in range(5)]
        wait_for(lambda: {m["id"] for m in whole_conversation(carol, conv)} >= set(ids),
                 what="A's messages at C, through B")
        got = carol.expect("message", timeout=5, id=ids[0])
        assert got["at"].startswith(a.box + ":")
        a.ahoy.kill()
        a.nats.kill()
        later = carol.request("send", "ack", id=mid(), room=room, text="still here")
        wait_for(lambda: later["id"] in {m["id"] for m in whole_conversation(bob, conv)},
                 what="C's message at B")
        on_c = [m["id"] for m in whole_conversation(carol, conv)]
        assert set(ids) <= set(on_c) and len(on_c) == len(set(on_c))
    finally:
        for box in boxes:
            box.stop()


def test_room_changes_from_both_sides_of_a_split_merge_by_the_written_rules(
    two_boxes: list[SiteBox]
) -> None:
    a, b = two_boxes
    alice, bob = a.client("Alice"), b.client("Bob")
    room = join_room_across(alice, bob, "Galley")
    doomed = join_room_across(alice, bob, "Doomed")
    ann, ben = a.client("Ann"), b.client("Ben")
    wait_for(lambda: online_at(a, ben.user_id), what="Ben known at A")
    for box in (a, b):
        box.nats.stop()
    wait_for(lambda: a.status().get("linked") == 0 and b.status().get("linked") == 0,
             what="the split")
    # The owner has a second device, on the other side (the same token works there).
    alice_on_b = b.client()
    assert alice_on_b.request("hello", "welcome", token=alice.token)["type"] == "welcome"
    assert alice.request("room_update", "room", room=room, name="Galley A")["type"] == "room"
    assert ann.request("room_join", "room", room=room)["type"] == "room"
    assert ben.request("room_join", "room", room=room)["type"] == "room"
    # One side deletes a room the other side renames later: the deletion wins.
    assert alice.request("room_delete", "room_deleted", room=doomed)["type"] == "room_deleted"
    before = int(time.time() * 1000)
    wait_for(lambda: int(time.time() * 1000) > before, what="a later millisecond")
    renamed = alice_on_b.request("room_update", "room", room=room, name="Galley B")
    assert renamed["type"] == "room", renamed
    assert alice_on_b.request("room_update", "room", room=doomed,
                              name="Not doomed")["type"] == "room"
    for box in (a, b):
        box.nats.start()

    def merged() -> bool:
        for box in (a, b):
            rooms = {r["id"]: r for r in probe_rooms(box)}
            if doomed in rooms or room not in rooms:
                return False
            view = rooms[room]
            members = {alice.user_id, bob.user_id, ann.user_id, ben.user_id}
            if view["name"] != "Galley B" or not members <= set(view["members"]):
                return False
        return True

    wait_for(merged, what="the room changes merged the same way on both boxes")


def test_boxes_the_backbone_heard_are_linked_without_site_peers(tmp_path: Path) -> None:
    """provisioning.backbone writes the boxes it heard to site/backbone.json; the
    replication links to them by itself (here with the test's own ports)."""
    import json

    from sitetest import NatsBox

    from provisioning.datadir import DataDir

    na, nb = NatsBox(tmp_path / "a" / "data"), NatsBox(tmp_path / "b" / "data")
    for me, other in ((na, nb), (nb, na)):
        status = {"box": {"id": "1"}, "problems": [], "peers": [
            {"id": "2", "name": "other", "backbone": "127.0.0.1", "hotspot": "10.42.1.0/24",
             "nats_port": other.port}]}
        DataDir(me.data_dir).site_backbone.write_text(json.dumps(status))
    boxes = [SiteBox(na), SiteBox(nb)]
    try:
        for box in boxes:
            box.start()
        wait_for(lambda: all(b.status().get("linked") == 1 for b in boxes), what="links")
        alice, bob = boxes[0].client("Alice"), boxes[1].client("Bob")
        wait_for(lambda: online_at(boxes[0], bob.user_id), what="Bob online at A")
        ack = alice.request("send", "ack", id=mid(), to=bob.user_id, text="found you")
        assert bob.expect("message", timeout=20, id=ack["id"])["text"] == "found you"
    finally:
        for box in boxes:
            box.stop()


def test_the_default_room_is_one_room_for_the_whole_site(tmp_path: Path) -> None:
    boxes = make_site(tmp_path, 2, default_room="Everyone")
    try:
        for box in boxes:
            box.start()
        wait_for(lambda: all(b.status().get("linked") == 1 for b in boxes), what="links")
        one_everyone(*boxes)
    finally:
        for box in boxes:
            box.stop()


def one_everyone(a: SiteBox, b: SiteBox) -> None:
    alice, bob = a.client("Alice"), b.client("Bob")
    everyone = [r for r in probe_rooms(a) if r["owner"] == ""]
    assert [r["name"] for r in everyone] == ["Everyone"]
    room = everyone[0]["id"]
    assert [r["id"] for r in probe_rooms(b) if r["owner"] == ""] == [room]

    def both_members() -> bool:
        rooms = {r["id"]: r for r in probe_rooms(a)}
        return {alice.user_id, bob.user_id} <= set(rooms[room]["members"])

    wait_for(both_members, what="Alice and Bob in the site's Everyone")
    ack = alice.request("send", "ack", id=mid(), room=room, text="hello, everyone")
    assert bob.expect("message", timeout=20, id=ack["id"])["text"] == "hello, everyone"


def test_an_aiortc_call_between_phones_on_two_boxes_connects(two_boxes: list[SiteBox]) -> None:
    import asyncio

    from webrtcphone import call_through_the_box

    a, b = two_boxes
    results = asyncio.run(asyncio.wait_for(
        call_through_the_box(a.ahoy.ws_url, b.ahoy.ws_url), 120))
    assert results["ice"] == "completed"
    assert results["ben_got"] == "hello Ben" and results["ana_got"] == "hello Ana"
    assert results["audio_frames"] == 10
    assert results["ended"] == ("hangup", True)


def test_a_reaction_on_one_box_reaches_the_message_on_the_other(
    two_boxes: list[SiteBox]
) -> None:
    a, b = two_boxes
    alice, bob = a.client("Alice"), b.client("Bob")
    wait_for(lambda: online_at(a, bob.user_id), what="Bob known at A")
    sent = bob.request("send", "ack", id=mid(), to=alice.user_id, text="dinner at 7?")
    got = alice.expect("message", timeout=20, id=sent["id"])
    reply = alice.request("react", "reaction", conv=got["conv"], seq=got["seq"], emoji="👍")
    assert reply["type"] == "reaction", reply
    seen = bob.expect("reaction", timeout=20)
    # Bob's box numbers the message its own way: the reaction names Bob's seq.
    assert (seen["seq"], seen["from"], seen["emoji"], seen["on"]) == (
        sent["seq"], alice.user_id, "👍", True)
    [stored] = [m for m in whole_conversation(bob, sent["conv"]) if m["id"] == sent["id"]]
    assert stored["reactions"] == {"👍": [alice.user_id]}
    alice.request("react", "reaction", conv=got["conv"], seq=got["seq"], emoji="👍", on=False)
    assert bob.expect("reaction", timeout=20)["on"] is False


def test_a_room_call_started_on_one_box_is_joined_from_the_other(
    two_boxes: list[SiteBox]
) -> None:
    a, b = two_boxes
    alice, bob = a.client("Alice"), b.client("Bob")
    room = join_room_across(alice, bob, "Bridge call")
    wait_for(lambda: online_at(a, bob.user_id), what="Bob online at A")

    def members_known() -> bool:
        rooms = {r["id"]: r for r in probe_rooms(a)}
        return bob.user_id in rooms[room]["members"]

    wait_for(members_known, what="Bob a member at A")
    joined = alice.request("call_join", "call_joined", room=room, media="audio")
    assert joined["type"] == "call_joined" and joined["peers"] == [], joined
    call = joined["call"]
    ringing = bob.expect("call_incoming", timeout=20)
    assert (ringing["call"], ringing["room"]) == (call, room)

    # Ringing told Bob's box where the call is: joining goes there.
    reply = bob.request("call_join", "call_joined", room=room, media="audio")
    assert (reply["type"], reply["call"], reply["peers"]) == (
        "call_joined", call, [alice.user_id]), reply
    assert alice.expect("call_peer_joined", timeout=20)["user"] == bob.user_id
    bob.send("signal", call=call, to=alice.user_id, data={"sdp": "from deck 4"})
    assert alice.expect("signal", timeout=20)["data"] == {"sdp": "from deck 4"}
    bob.send("call_hangup", call=call)
    assert alice.expect("call_peer_left", timeout=20)["user"] == bob.user_id


def test_two_calls_of_one_room_started_apart_merge_into_the_one_that_started_first(
    two_boxes: list[SiteBox]
) -> None:
    a, b = two_boxes
    alice, bob = a.client("Alice"), b.client("Bob")
    room = join_room_across(alice, bob, "Engine room")
    wait_for(lambda: bob.user_id in {r["id"]: r for r in probe_rooms(a)}[room]["members"],
             what="Bob a member at A")
    for box in (a, b):
        box.nats.stop()  # neither box hears of the other's call
    wait_for(lambda: a.status().get("linked") == 0 and b.status().get("linked") == 0,
             what="the split")
    first = alice.request("call_join", "call_joined", room=room, media="audio")
    before = int(time.time() * 1000)
    wait_for(lambda: int(time.time() * 1000) > before, what="a later millisecond")
    second = bob.request("call_join", "call_joined", room=room, media="audio")
    assert first["peers"] == [] and second["peers"] == [], (first, second)
    assert first["call"] != second["call"]
    for box in (a, b):
        box.nats.start()
    # Alice's call started first: it stays, Bob's ends and tells him to join Alice's.
    ended = bob.expect("call_ended", timeout=60)
    assert ended == {"type": "call_ended", "call": second["call"], "reason": "merged",
                     "by": None, "room": room, "join": first["call"]}, ended
    reply = bob.request("call_join", "call_joined", room=room, media="audio")
    assert (reply["type"], reply["call"], reply["peers"]) == (
        "call_joined", first["call"], [alice.user_id]), reply
    assert alice.expect("call_peer_joined", timeout=20)["user"] == bob.user_id
    assert not [m for m in received(alice) if m["type"] == "call_ended"]
