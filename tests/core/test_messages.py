from __future__ import annotations

import json

from hubdriver import Box, RecordingPeer
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.store import Store


def test_room_message_is_acked_after_storing_and_delivered_to_members(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, _, _ = box.join("Ben")
    outsider, _, _ = box.join("Cy")
    room_id = box.room(ana)
    box.say(ben, "room_join", room=room_id)
    ack = box.say(ana, "send", id="m-00000001", room=room_id, text="<img src=x onerror=alert(1)>",
                  ref="r1")[0]
    assert ack == {"type": "ack", "id": "m-00000001", "conv": f"room:{room_id}", "seq": 1,
                   "ts": box.clock.now, "ref": "r1"}
    assert box.store.last_seq(f"room:{room_id}") == 1
    message = ben.last("message")
    assert message["text"] == "<img src=x onerror=alert(1)>"
    assert (message["from"], message["name"], message["seq"]) == (ana_id, "Ana", 1)
    assert not outsider.of("message")


def test_duplicate_send_is_acked_again_but_stored_and_delivered_once(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    first = box.say(ana, "send", id="m-dup00001", to=ben_id, text="once")[0]
    again = box.say(ana, "send", id="m-dup00001", to=ben_id, text="once")[0]
    assert first == again
    assert len(ben.of("message")) == 1
    assert box.store.message_count() == 1


def test_direct_messages_reach_only_the_two_and_wait_for_offline_users(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, ben_token = box.join("Ben")
    cy, _, _ = box.join("Cy")
    box.hub.disconnect(ben)
    ack = box.say(ana, "send", id="m-dm000001", to=ben_id, text="call me")[0]
    conv = "dm:" + ":".join(sorted([ana_id, ben_id]))
    assert ack["conv"] == conv
    assert not cy.of("message")
    back = box.connect()
    box.say(back, "hello", token=ben_token)
    history = back.last("history")
    assert history["conv"] == conv and [m["text"] for m in history["messages"]] == ["call me"]


def test_unknown_targets_and_bad_text_are_refused(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    assert box.say(ana, "send", id="m-00000001", to="u_nobody", text="x")[0]["code"] == \
        "unknown_user"
    assert box.say(ana, "send", id="m-00000002", room="r_nothing", text="x")[0]["code"] == \
        "unknown_room"
    assert box.say(ana, "send", id="m-00000003", to=ana_id, text="x")[0]["code"] == "bad_request"
    room_id = box.room(ana)
    assert box.say(ana, "send", id="m-00000004", room=room_id, text="  ")[0]["code"] == "bad_text"
    long = box.say(ana, "send", id="m-00000005", room=room_id, text="x" * 4001)[0]
    assert long["code"] == "bad_text" and "4000" in long["message"]


def test_reconnecting_client_gets_missed_messages_in_order(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, _, ben_token = box.join("Ben")
    room_id = box.room(ana)
    conv = f"room:{room_id}"
    box.say(ben, "room_join", room=room_id)
    for i in range(3):
        box.say(ana, "send", id=f"m-first{i:03}", room=room_id, text=f"a{i}")
    seen = max(m["seq"] for m in ben.of("message"))
    box.hub.disconnect(ben)
    for i in range(5):
        box.say(ana, "send", id=f"m-later{i:03}", room=room_id, text=f"b{i}")
    back = box.connect()
    box.say(back, "hello", token=ben_token, since={conv: seen})
    history = back.last("history")
    assert [m["text"] for m in history["messages"]] == [f"b{i}" for i in range(5)]
    assert [m["seq"] for m in history["messages"]] == [4, 5, 6, 7, 8]


def test_late_joiner_gets_recent_history_and_can_page_back(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    room_id = box.room(ana)
    for i in range(130):
        box.say(ana, "send", id=f"m-hist{i:04}", room=room_id, text=str(i))
    late, _, _ = box.join("Late")
    box.say(late, "room_join", room=room_id)
    history = late.last("history")
    assert [m["seq"] for m in history["messages"]] == list(range(31, 131))
    older = box.say(late, "sync", conv=f"room:{room_id}", before=31, limit=50)[0]
    assert [m["seq"] for m in older["messages"]] == list(range(1, 31)) and not older["more"]
    newer = box.say(late, "sync", conv=f"room:{room_id}", after=100, limit=10)[0]
    assert [m["seq"] for m in newer["messages"]] == list(range(101, 111)) and newer["more"]


def test_sync_refuses_conversations_that_are_not_yours(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    cy, _, _ = box.join("Cy")
    room_id = box.room(ana)
    conv = "dm:" + ":".join(sorted([ana_id, ben_id]))
    assert box.say(cy, "sync", conv=conv)[0]["code"] == "not_member"
    assert box.say(cy, "sync", conv=f"room:{room_id}")[0]["code"] == "not_member"


def test_typing_and_read_markers_reach_the_others(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    box.say(ana, "typing", to=ben_id)
    conv = "dm:" + ":".join(sorted([ana_id, ben_id]))
    assert ben.last("typing") == {"type": "typing", "conv": conv, "from": ana_id, "name": "Ana"}
    box.say(ben, "read", conv=conv, seq=3)
    assert ana.last("read") == {"type": "read", "conv": conv, "from": ben_id, "name": "Ben",
                                "seq": 3}


def test_retention_prunes_old_messages_but_never_reuses_sequence_numbers() -> None:
    store = Store(":memory:")
    for i in range(10):
        store.append("room:r1", f"m-{i:08}", "u_1", "Ana", str(i), now=1000 + i)
    assert store.prune(older_than=1003, keep_per_conv=5) == 5
    assert [m.seq for m in store.after("room:r1", 0, 100)[0]] == [6, 7, 8, 9, 10]
    message, _ = store.append("room:r1", "m-new00001", "u_1", "Ana", "new", now=2000)
    assert message.seq == 11


# -- properties ---------------------------------------------------------------

sends = st.lists(
    st.tuples(st.sampled_from(["u_a", "u_b", "u_c"]),  # sender
              st.sampled_from(["room:r1", "room:r2", "dm:u_a:u_b"]),  # conversation
              st.integers(0, 15)),  # client message id; repeats are retries
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(sends)
def test_store_sequences_are_gapless_and_duplicates_are_stored_once(
    script: list[tuple[str, str, int]],
) -> None:
    store = Store(":memory:")
    first_seen: dict[tuple[str, int], tuple[str, int]] = {}
    for sender, conv, n in script:
        msg_id = f"m-{n:08}"
        message, created = store.append(conv, msg_id, sender, sender, "t", now=1)
        key = (sender, n)
        if key in first_seen:
            assert not created and (message.conv, message.seq) == first_seen[key]
        else:
            assert created
            first_seen[key] = (message.conv, message.seq)
    for conv in {"room:r1", "room:r2", "dm:u_a:u_b"}:
        seqs = [m.seq for m in store.after(conv, 0, 1000)[0]]
        assert seqs == list(range(1, len(seqs) + 1))
    assert store.message_count() == len(first_seen)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 9), st.booleans()), max_size=40))
def test_a_client_that_drops_and_resyncs_sees_every_message_once_in_order(
    steps: list[tuple[bool, int, bool]],
) -> None:
    """Whatever the interleaving of sends, retries and reconnects, the receiving
    client (which keeps the last seq it saw and dedups by seq) ends with exactly
    the acknowledged messages, in order."""
    box = Box(Store(":memory:"))
    ana, _, _ = box.join("Ana")
    ben, _, token = box.join("Ben")
    room_id = box.room(ana)
    conv = f"room:{room_id}"
    box.say(ben, "room_join", room=room_id)
    got: list[int] = []
    last = 0
    acked: set[int] = set()
    online = True

    def absorb(peer: RecordingPeer) -> None:
        nonlocal last
        for m in peer.take():
            batch = m["messages"] if m["type"] == "history" else [m] if m["type"] == "message" else []
            for msg in batch:
                if msg["seq"] > last:
                    got.append(msg["seq"])
                    last = msg["seq"]

    for send, n, toggle in steps:
        if send:
            ack = box.say(ana, "send", id=f"m-prop{n:04}", room=room_id, text="x")[0]
            acked.add(ack["seq"])
        if toggle:
            if online:
                box.hub.disconnect(ben)
            else:
                ben = box.connect()
                box.hub.handle(ben, json.dumps({"type": "hello", "token": token,
                                                "since": {conv: last}}))
            online = not online
        if online:
            absorb(ben)
    if not online:
        ben = box.connect()
        box.hub.handle(ben, json.dumps({"type": "hello", "token": token, "since": {conv: last}}))
    absorb(ben)
    assert got == sorted(acked)
