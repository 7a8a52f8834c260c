"""Group commit on real SQLite: the messages that arrive together are stored in
one transaction, acknowledged only after it commits, and a failed commit
acknowledges none of them."""

from __future__ import annotations

from hubdriver import Box, RecordingPeer


def commits_during(box: Box, work: object) -> int:
    statements: list[str] = []
    box.store.db.set_trace_callback(statements.append)
    try:
        work()  # type: ignore[operator]
    finally:
        box.store.db.set_trace_callback(None)
    return sum(1 for s in statements if s.strip().upper() == "COMMIT")


def crew(box: Box, n: int) -> tuple[str, list[tuple[RecordingPeer, str]]]:
    people = [box.join(f"P{i}") for i in range(n)]
    room_id = box.room(people[0][0], "Deck")
    for peer, _, _ in people[1:]:
        box.say(peer, "room_join", room=room_id)
    box.hub.group_commit = True
    return room_id, [(peer, uid) for peer, uid, _ in people]


def test_messages_arriving_together_share_one_commit_and_are_acked_after_it(box: Box) -> None:
    room_id, people = crew(box, 3)
    for round_ in range(5):
        for i, (peer, _) in enumerate(people):
            box.say(peer, "send", id=f"m-{i}-{round_:04d}", room=room_id, text=f"{i}.{round_}",
                    ref=f"{i}.{round_}")
    # Nothing is acknowledged or delivered before the commit.
    assert not any(p.of("ack") or p.of("message") for p, _ in people)
    assert box.store.last_seq(f"room:{room_id}") == 0
    assert commits_during(box, box.hub.flush_messages) == 1
    acks = sorted((a for p, _ in people for a in p.of("ack")), key=lambda a: a["seq"])
    # Numbered in arrival order, without gaps.
    assert [a["seq"] for a in acks] == list(range(1, 16))
    assert [a["ref"] for a in acks] == [f"{i}.{r}" for r in range(5) for i in range(3)]
    for peer, uid in people:
        got = [(m["seq"], m["from"]) for m in peer.of("message")]
        assert got == [(a["seq"], people[int(a["ref"][0])][1]) for a in acks
                       if people[int(a["ref"][0])][1] != uid]
    stored, _ = box.store.after(f"room:{room_id}", 0, 100)
    assert [m.text for m in stored] == [f"{i}.{r}" for r in range(5) for i in range(3)]


def test_a_failed_commit_acks_none_of_its_batch_and_tells_every_sender(box: Box) -> None:
    room_id, people = crew(box, 3)
    conv = f"room:{room_id}"
    box.say(people[0][0], "send", id="m-before-01", room=room_id, text="before")
    box.hub.flush_messages()
    # A real SQLite failure in the middle of the batch.
    box.store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.text = 'boom'"
                         " BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    for i, text in enumerate(["a", "boom", "c"]):
        box.say(people[i][0], "send", id=f"m-batch-{i:02d}", room=room_id, text=text, ref=f"b{i}")
    box.hub.flush_messages()
    for i, (peer, _) in enumerate(people):
        assert not [a for a in peer.of("ack") if a["id"].startswith("m-batch")]
        assert not [m for m in peer.of("message") if m["text"] in ("a", "boom", "c")]
        error = peer.last("error")
        assert error["code"] == "not_stored" and error["ref"] == f"b{i}"
        assert "send it again" in error["message"]
    assert box.store.last_seq(conv) == 1
    assert [m.text for m in box.store.after(conv, 0, 10)[0]] == ["before"]
    # Sending again works, with the next number: no gap.
    box.store.db.execute("DROP TRIGGER refuse")
    box.say(people[0][0], "send", id="m-batch-00", room=room_id, text="a", ref="again")
    box.hub.flush_messages()
    assert people[0][0].last("ack")["seq"] == 2


def test_a_message_sent_twice_before_its_commit_is_stored_once_and_acked_twice(box: Box) -> None:
    room_id, people = crew(box, 2)
    ana = people[0][0]
    box.say(ana, "send", id="m-twice-001", room=room_id, text="hi", ref="1")
    box.say(ana, "send", id="m-twice-001", room=room_id, text="hi", ref="2")
    box.hub.flush_messages()
    acks = ana.of("ack")
    assert [a["ref"] for a in acks] == ["1", "2"] and {a["seq"] for a in acks} == {1}
    assert [m["text"] for m in people[1][0].of("message")] == ["hi"]
    assert box.store.message_count() == 1


def test_a_message_waiting_when_its_room_closes_is_refused_not_stored(box: Box) -> None:
    room_id, people = crew(box, 2)
    box.say(people[1][0], "send", id="m-late-0001", room=room_id, text="late", ref="x")
    assert box.hub.close_room(room_id)
    box.hub.flush_messages()
    assert people[1][0].last("error")["code"] == "unknown_room"
    assert box.store.message_count() == 0


def test_without_group_commit_each_request_commits_before_it_ends(box: Box) -> None:
    room_id, people = crew(box, 2)
    box.hub.group_commit = False
    reply = box.say(people[0][0], "send", id="m-alone-001", room=room_id, text="now")
    assert reply[0]["type"] == "ack" and reply[0]["seq"] == 1


def test_arrivals_share_one_commit_and_each_welcome_waits_for_it(box: Box) -> None:
    box.hub.group_commit = True
    newcomers = [box.connect() for _ in range(20)]
    for i, peer in enumerate(newcomers):
        box.say(peer, "hello", name=f"New{i}", ref=str(i))
    # No device token is handed out before its identity is stored.
    assert not any(p.sent for p in newcomers)
    assert commits_during(box, box.hub.flush_messages) == 1
    for i, peer in enumerate(newcomers):
        welcome = peer.last("welcome")
        assert welcome["ref"] == str(i)
        assert box.store.user(welcome["you"]["id"]) is not None
    assert len(box.hub.presence) == 20


def test_a_failed_commit_undoes_the_whole_batch_and_says_so(box: Box) -> None:
    room_id, people = crew(box, 2)
    ana, ben = people[0][0], people[1][0]
    other = box.room(ana, "Galley")
    box.hub.flush_messages()
    # A real SQLite failure at COMMIT: a deferred foreign key left dangling
    # whenever someone called "Doomed" is stored.
    box.store.db.executescript(
        "CREATE TABLE parent (id TEXT PRIMARY KEY);"
        "CREATE TABLE child (p TEXT REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);"
        "CREATE TRIGGER doom AFTER INSERT ON users WHEN NEW.name = 'Doomed'"
        " BEGIN INSERT INTO child VALUES ('nobody'); END;")
    box.say(ana, "send", id="m-doomed-01", room=room_id, text="lost", ref="m")
    box.say(ben, "room_join", room=other)
    doomed = box.connect()
    box.say(doomed, "hello", name="Doomed", ref="h")
    box.hub.flush_messages()
    assert ana.last("error") == {"type": "error", "code": "not_stored", "ref": "m",
                                 "message": ana.last("error")["message"]}
    assert not [m for m in ben.of("message") if m["text"] == "lost"]
    assert doomed.last("error")["code"] == "internal" and doomed.last("error")["ref"] == "h"
    assert not doomed.of("welcome")
    # Memory follows the disk again: Ben's join was undone with the rest.
    assert people[1][1] not in box.hub.rooms[other].members
    assert box.store.message_count() == 0
    # The box goes on: the next batch is stored.
    box.store.db.execute("DROP TRIGGER doom")
    box.say(ana, "send", id="m-doomed-01", room=room_id, text="again", ref="m2")
    box.hub.flush_messages()
    assert ana.last("ack")["seq"] == 1


def test_half_a_character_is_refused_before_the_batch_and_the_others_are_stored(
        box: Box) -> None:
    """A lone UTF-16 surrogate (JSON can carry one as \\ud83d) cannot be stored as
    UTF-8: it is refused as it arrives, so the messages waiting with it commit."""
    room_id, people = crew(box, 3)
    conv = f"room:{room_id}"
    box.say(people[0][0], "send", id="m-whole-000", room=room_id, text="a", ref="r0")
    refused = box.say(people[1][0], "send", id="m-half-0001", room=room_id,
                      text="cut \ud83d", ref="r1")
    assert [(e["code"], e["ref"]) for e in refused] == [("bad_json", "r1")]
    assert "half of a character" in refused[0]["message"]
    box.say(people[2][0], "send", id="m-whole-002", room=room_id, text="pair \ud83d\ude00",
            ref="r2")
    box.hub.flush_messages()
    assert [m.text for m in box.store.after(conv, 0, 10)[0]] == ["a", "pair \U0001f600"]
    assert people[0][0].last("ack")["seq"] == 1 and people[2][0].last("ack")["seq"] == 2
    assert not people[1][0].of("ack")
