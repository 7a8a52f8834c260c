"""What one box accepts from another, and the merge rules, on a real SQLite store
(no NATS): fast checks of appliance.site.records and appliance.site.replica."""

from __future__ import annotations

import json

import pytest

from appliance.rooms import Room
from appliance.site.records import (
    MAX_RECORD_BYTES,
    BadRecord,
    MemberRecord,
    MessageRecord,
    RoomRecord,
    UserRecord,
    Version,
    decode,
    decode_live,
    encode,
)
from appliance.site.replica import Replica
from appliance.store import Store

A, B = "aaaaaaaa", "bbbbbbbb"
TOKEN = "ab" * 32


def message(n: int, text: str = "hi", origin: str = A, msg_id: str = "") -> MessageRecord:
    return MessageRecord(origin, n, "room:r_1", msg_id or f"m-{origin}-{n:04d}", "u_ana", "Ana",
                         text, 1000 + n)


def room(name: str, ms: int, box: str, deleted: bool = False) -> RoomRecord:
    return RoomRecord("r_1", name, "", 20, True, False, "u_ana", 1, "public", False, "", deleted,
                      Version(ms, box))


def apply(replica: Replica, *records: object) -> None:
    replica.apply([("other", i + 1, r, encode(r)) for i, r in enumerate(records)])  # type: ignore[arg-type]


@pytest.fixture
def replica() -> Replica:
    return Replica(Store(":memory:"), B)


def test_every_kind_of_record_reads_back_as_written() -> None:
    for record in (message(1), UserRecord("u_ana", TOKEN, "Ana", 1, "", "", Version(5, A)),
                   room("Deck", 5, A), MemberRecord("r_1", "u_ana", "member", Version(5, A))):
        assert decode(encode(record)) == record  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [
    b"not json", b"[]", b'{"k": "msg"}', b'{"k": "nope"}',
    json.dumps({**json.loads(encode(message(1))), "origin": "NOT-A-BOX"}).encode(),
    json.dumps({**json.loads(encode(message(1))), "n": -1}).encode(),
    json.dumps({**json.loads(encode(message(1))), "conv": "elsewhere"}).encode(),
    json.dumps({**json.loads(encode(message(1))), "text": "x" * 20000}).encode(),
    json.dumps({**json.loads(encode(room("Deck", 5, A))), "visibility": "secret"}).encode(),
    json.dumps({**json.loads(encode(room("Deck", 5, A))), "version": [5]}).encode(),
    b"{" + b" " * MAX_RECORD_BYTES + b"}",
])
def test_a_record_that_is_not_one_is_refused_in_words(data: bytes) -> None:
    with pytest.raises(BadRecord):
        decode(data)


def test_live_events_are_checked_too() -> None:
    assert decode_live(b'{"k": "offline", "box": "aaaaaaaa", "user": "u_1"}')["user"] == "u_1"
    busy = b'{"k": "calls", "box": "aaaaaaaa", "calls": {}, "busy": ["u_1", "u_2"]}'
    assert decode_live(busy)["busy"] == ["u_1", "u_2"]
    for bad in (b'{"k": "online", "box": "aaaaaaaa", "users": "all", "full": true}',
                b'{"k": "to", "box": "aaaaaaaa", "user": "u_1", "message": []}',
                b'{"k": "frame", "box": "x", "user": "u_1", "message": {}}',
                b'{"k": "calls", "box": "aaaaaaaa", "calls": {}, "busy": "u_1"}',
                b'{"k": "calls", "box": "aaaaaaaa", "calls": {}, "busy": ["u 1"]}'):
        with pytest.raises(BadRecord):
            decode_live(bad)


def test_a_message_is_applied_once_with_the_next_local_seq_and_forwarded_once(
    replica: Replica
) -> None:
    apply(replica, message(1), message(2), message(1))
    apply(replica, message(2))
    rows = replica.db.execute("SELECT seq, msg_id FROM messages ORDER BY seq").fetchall()
    assert rows == [(1, f"m-{A}-0001"), (2, f"m-{A}-0002")]
    assert replica.outbox_size() == 2  # each new one once, into this box's own stream
    assert replica.positions_of("room:r_1", [1, 2]) == {1: f"{A}:1", 2: f"{A}:2"}


def test_what_a_phone_missed_is_exact_by_position(replica: Replica) -> None:
    apply(replica, message(1), message(2), message(1, origin="cccccccc"), message(3))
    missed, more = replica.missed("room:r_1", {A: 2}, 100)
    assert [m.id for m in missed] == ["m-cccccccc-0001", f"m-{A}-0003"] and not more


def test_own_messages_get_positions_in_order_even_after_a_crash(replica: Replica) -> None:
    store = replica.store
    first, _ = store.append("room:r_1", "m-own-0001", "u_ben", "Ben", "one", 1)
    assert replica.number_own(first.conv, first.seq) == f"{B}:1"
    store.append("room:r_1", "m-own-0002", "u_ben", "Ben", "two", 2)  # never numbered: a crash
    again = Replica(store, B)  # the next start
    assert again.record_own() == 2
    assert again.positions_of("room:r_1", [1, 2]) == {1: f"{B}:1", 2: f"{B}:2"}
    assert again.outbox_size() == 2


def test_the_later_change_to_a_room_wins_and_the_box_id_breaks_a_tie(replica: Replica) -> None:
    apply(replica, room("Later", 20, A), room("Earlier", 10, A))
    assert replica.db.execute("SELECT name FROM rooms").fetchone() == ("Later",)
    apply(replica, room("Tie from b", 20, B))  # same time: the higher box id wins
    assert replica.db.execute("SELECT name FROM rooms").fetchone() == ("Tie from b",)


def test_a_deleted_room_stays_deleted_whatever_comes_later(replica: Replica) -> None:
    apply(replica, room("Deck", 10, A), room("Deck", 5, A, deleted=True),
          room("Renamed", 50, A), MemberRecord("r_1", "u_cy", "member", Version(60, A)))
    assert replica.db.execute("SELECT COUNT(*) FROM rooms").fetchone() == (0,)
    assert replica.db.execute("SELECT COUNT(*) FROM members").fetchone() == (0,)


def test_a_membership_that_arrives_before_its_room_waits_for_it(replica: Replica) -> None:
    apply(replica, MemberRecord("r_1", "u_cy", "member", Version(7, A)))
    assert replica.db.execute("SELECT COUNT(*) FROM members").fetchone() == (0,)
    apply(replica, room("Deck", 5, A))
    assert replica.db.execute("SELECT user_id FROM members").fetchall() == [("u_cy",)]


def test_own_room_changes_carry_a_version_later_than_any_seen(replica: Replica) -> None:
    apply(replica, room("From a", 10_000, A))
    deck = Room("r_1", "Mine", "", 20, True, False, "u_ana", 1)
    replica.note_room(deck, now=5)  # this box's clock is behind
    (ms, box), = replica.db.execute("SELECT ms, box FROM site_versions WHERE key = 'room:r_1'")
    assert (ms, box) == (10_001, B)


def test_of_two_calls_of_one_room_the_earlier_start_stays_then_the_lower_box_id() -> None:
    from appliance.signaling import Calls
    from appliance.site.link import first_room_call

    assert first_room_call((1000, B), (1001, A)) == (1000, B)
    assert first_room_call((1001, A), (1000, B)) == (1000, B)  # the same from either box
    assert first_room_call((1000, B), (1000, A)) == (1000, A)
    # The call that gives way ends for its people, who are told which call to join.
    ids = iter(["c_2"])
    calls = Calls(lambda: next(ids))
    calls.join_room("u_ben", "r_1", "audio", ["u_ben", "u_bo"], 1001)
    calls.join_room("u_bo", "r_1", "audio", ["u_ben", "u_bo"], 1002)
    events = calls.yield_room_call("r_1", "c_1")
    assert sorted(events, key=lambda e: e[0]) == [
        (user, {"type": "call_ended", "call": "c_2", "reason": "merged", "by": None,
                "room": "r_1", "join": "c_1"}) for user in ("u_ben", "u_bo")]
    assert calls.room_call("r_1") is None and not calls.busy_users()
    assert calls.yield_room_call("r_1", "c_1") == []


def test_the_start_times_of_room_calls_are_checked_like_the_rest_of_a_live_event() -> None:
    body = {"k": "calls", "box": A, "calls": {"r_1": "c_1"}, "started": {"r_1": 1000},
            "busy": []}
    assert decode_live(json.dumps(body).encode())["started"] == {"r_1": 1000}
    for bad in ({"r_1": "soon"}, {"r_1": -1}, {"../x": 1}, [1]):
        with pytest.raises(BadRecord):
            decode_live(json.dumps({**body, "started": bad}).encode())


def test_an_admins_deletion_wins_over_the_message_even_when_the_message_comes_later(
    replica: Replica,
) -> None:
    from appliance.site.records import DeletionRecord

    gone = DeletionRecord("room:r_1", "u_ana", "m-aaaaaaaa-0002", Version(9, A))
    assert decode(encode(gone)) == gone
    apply(replica, message(1), message(2))
    store = replica.store
    before = [m.id for m in store.before("room:r_1", 100, 10)[0]]
    assert before == ["m-aaaaaaaa-0001", "m-aaaaaaaa-0002"]
    applied = replica.apply([("other", 3, gone, encode(gone))])
    assert applied.deleted_messages == [("room:r_1", 2)] and applied.forwarded == 1
    assert [m.id for m in store.before("room:r_1", 100, 10)[0]] == ["m-aaaaaaaa-0001"]
    # The same deletion again (read from a third box's stream) changes nothing.
    assert replica.apply([("third", 1, gone, encode(gone))]).forwarded == 0
    # A deletion of a message that has not arrived yet: the message is not stored when it comes.
    early = DeletionRecord("room:r_1", "u_ana", "m-aaaaaaaa-0003", Version(9, A))
    assert replica.apply([("other", 4, early, encode(early))]).deleted_messages == []
    assert replica.apply([("other", 5, message(3), encode(message(3)))]).messages == []
    assert [m.id for m in store.before("room:r_1", 100, 10)[0]] == ["m-aaaaaaaa-0001"]


def test_an_admins_own_deletion_is_shared_and_done_here_in_one_transaction(
    replica: Replica,
) -> None:
    apply(replica, message(1), message(2))
    store = replica.store
    # The store refuses the local delete: the deletion must not be shared either.
    store.db.execute("CREATE TEMP TRIGGER refuse BEFORE DELETE ON messages"
                     " BEGIN SELECT RAISE(ABORT, 'disk gone'); END")
    with pytest.raises(Exception, match="disk gone"):
        replica.note_deletion("room:r_1", 2, 50)
    assert [m.id for m in store.before("room:r_1", 100, 10)[0]] == [
        "m-aaaaaaaa-0001", "m-aaaaaaaa-0002"]
    assert not replica.db.execute("SELECT * FROM site_versions WHERE deleted = 1").fetchall()
    store.db.execute("DROP TRIGGER refuse")
    # Then it works: gone here, and recorded for the others, together.
    assert replica.note_deletion("room:r_1", 2, 51)
    assert [m.id for m in store.before("room:r_1", 100, 10)[0]] == ["m-aaaaaaaa-0001"]
    assert replica.db.execute("SELECT COUNT(*) FROM site_versions WHERE deleted = 1"
                              ).fetchone()[0] == 1


def test_invitations_and_requests_merge_per_room_and_person_the_later_change_winning(
    replica: Replica,
) -> None:
    from appliance.site.records import InviteRecord

    asked = InviteRecord("r_1", "u_cy", "request", Version(5, A))
    approved = InviteRecord("r_1", "u_cy", None, Version(7, A))
    assert decode(encode(asked)) == asked
    # The request arrives before its room: kept until the room is here.
    apply(replica, asked)
    assert replica.store.invites() == []
    apply(replica, room("Club", 1, A))
    assert replica.store.invites() == [("r_1", "u_cy", "request")]
    # Approved on one box, asked again earlier on another: the approval (later) stays.
    apply(replica, approved, InviteRecord("r_1", "u_cy", "request", Version(6, B)))
    assert replica.store.invites() == []
    with pytest.raises(BadRecord):
        decode(json.dumps({**json.loads(encode(asked)), "invite": "maybe"}).encode())


def test_the_later_profile_picture_wins_and_is_written_where_the_box_serves_it(
    tmp_path: object,
) -> None:
    import io
    from pathlib import Path

    from PIL import Image

    from appliance.site.records import AvatarRecord

    folder = Path(str(tmp_path)) / "avatars"
    replica = Replica(Store(":memory:"), B, avatars=folder)

    def webp(colour: tuple[int, int, int]) -> str:
        import base64

        out = io.BytesIO()
        Image.new("RGB", (8, 8), colour).save(out, "WEBP")
        return base64.b64encode(out.getvalue()).decode()

    red = AvatarRecord("u_ana", webp((255, 0, 0)), Version(9, A))
    blue = AvatarRecord("u_ana", webp((0, 0, 255)), Version(8, B))
    assert decode(encode(red)) == red
    # The picture comes before its person: shown once the person is here.
    apply(replica, red)
    apply(replica, UserRecord("u_ana", TOKEN, "Ana", 1, "", "", Version(5, A)))
    user = replica.store.user("u_ana")
    assert user is not None and user.avatar >= 1
    apply(replica, blue)  # older: ignored
    assert (folder / "u_ana.webp").read_bytes() == red.image()
    for bad in ("not base64!", "AAAA" * 8, ""):
        with pytest.raises(BadRecord):
            decode(json.dumps({**json.loads(encode(red)), "picture": bad}).encode())


def test_a_message_for_a_phone_on_another_box_carries_an_id_to_drop_its_second_copy() -> None:
    body = {"k": "to", "box": A, "user": "u_1", "message": {"type": "typing"},
            "n": "0123456789abcdef"}
    assert decode_live(json.dumps(body).encode())["n"] == "0123456789abcdef"
    with pytest.raises(BadRecord):
        decode_live(json.dumps({**body, "n": "not an id!"}).encode())
