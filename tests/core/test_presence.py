from __future__ import annotations

from typing import Any

from hubdriver import Box


def basic(user: dict[str, Any]) -> dict[str, Any]:
    # A person's status left out is online (docs/protocol.md).
    return {"id": user["id"], "name": user["name"], "status": user.get("status", "online")}


def test_joining_gives_identity_and_token_and_tells_watchers(box: Box) -> None:
    ana, ana_id, token = box.join("Ana")
    assert ana_id.startswith("u_") and len(token) >= 32
    box.say(ana, "people", watch=True)
    ben, ben_id, _ = box.join("Ben")
    assert basic(ana.users(ben_id)[-1]) == {"id": ben_id, "name": "Ben", "status": "online"}
    cy = box.connect()
    welcome = box.say(cy, "hello", name="Cy")[0]
    assert welcome["users"] == [] and welcome["online"] == 3  # no contacts yet
    assert {u["name"] for u in box.say(cy, "people")[0]["users"]} == {"Ana", "Ben"}


def test_names_are_trimmed_checked_and_unique_among_online_users(box: Box) -> None:
    box.join("Ana")
    peer = box.connect()
    for bad, code in [("", "bad_name"), ("   ", "bad_name"), ("x" * 33, "bad_name"),
                      ("A\x07na", "bad_name"), ("a\u202eb", "bad_name"), (" ANA ", "name_taken")]:
        reply = box.say(peer, "hello", name=bad)[0]
        assert reply["type"] == "error" and reply["code"] == code, (bad, reply)
        assert reply["message"]
    ok = box.say(peer, "hello", name="  Ana B  ")[0]
    assert ok["you"]["name"] == "Ana B"


def test_reconnecting_with_token_restores_identity_without_name_taken(box: Box) -> None:
    old, ana_id, token = box.join("Ana")
    ben, _, _ = box.join("Ben")
    ben.take()
    # The phone reloads: a new connection arrives before the old one closed.
    new = box.connect()
    welcome = box.say(new, "hello", token=token)[0]
    assert welcome["type"] == "welcome"
    assert basic(welcome["you"]) == {"id": ana_id, "name": "Ana", "status": "online"}
    assert old.closed == (4001, "replaced")
    assert old.last("error")["code"] == "replaced"
    # The stale socket's close arrives late and must not log Ana out.
    box.hub.disconnect(old)
    assert box.hub.presence.is_online(ana_id)
    assert not [u for u in ben.users(ana_id) if u["status"] == "offline"]
    # The stale connection cannot act as Ana any more.
    assert box.say(old, "send", id="m-12345678", to=ana_id, text="x") == []


def test_unknown_token_is_refused_so_the_client_asks_for_a_name(box: Box) -> None:
    reply = box.say(box.connect(), "hello", token="nope")[0]
    assert reply["code"] == "bad_token"


def test_token_with_new_name_renames(box: Box) -> None:
    peer, ana_id, token = box.join("Ana")
    box.hub.disconnect(peer)
    welcome = box.say(box.connect(), "hello", token=token, name="Anna")[0]
    assert welcome["you"]["name"] == "Anna" and welcome["you"]["id"] == ana_id


def test_leaving_is_seen_by_everyone(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, _, _ = box.join("Ben")
    box.say(ben, "people", watch=True)
    box.hub.disconnect(ana)
    assert basic(ben.users(ana_id)[-1]) == {"id": ana_id, "name": "Ana", "status": "offline"}
    # The name is free again.
    assert box.say(box.connect(), "hello", name="ana")[0]["type"] == "welcome"


def test_requests_before_hello_are_refused(box: Box) -> None:
    reply = box.say(box.connect(), "room_create", name="x")[0]
    assert reply["code"] == "not_joined"


def test_bad_frames_get_clear_errors_and_the_connection_stays_usable(box: Box) -> None:
    peer, _, _ = box.join("Ana")
    cases = [
        ("not json", "bad_json"),
        ("[1,2]", "bad_json"),
        ('{"type": "launch"}', "unknown_type"),
        ('{"type": "send", "id": "short", "room": "r", "text": "x"}', "bad_request"),
        ('{"type": "send", "id": "m-12345678", "text": "x"}', "bad_request"),
        ('{"type": "send", "id": "m-12345678", "room": "r", "to": "u", "text": "x"}',
         "bad_request"),
        ('{"type": "room_create", "name": 5}', "bad_request"),
        ('{"type": "room_create", "name": "x", "limit": true}', "bad_request"),
        ('{"type": "ping", "ref": 7}', "bad_request"),
        ("[" * 100000 + "]" * 100000, "bad_json"),
    ]
    for frame, code in cases:
        before = len(peer.sent)
        box.hub.handle(peer, frame)
        reply = peer.sent[before]
        assert reply["type"] == "error" and reply["code"] == code, (frame[:60], reply)
    box.hub.handle(peer, b"\x00\x01")
    assert peer.sent[-1]["code"] == "bad_frame"
    assert box.say(peer, "ping", ref="p")[0]["type"] == "pong"


def test_half_a_character_is_refused_in_every_field_and_in_the_ref(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    room_id = box.room(ana, "Deck")
    for type_, fields in [("room_create", {"name": "Deck \udc00"}),
                          ("room_update", {"room": room_id, "description": "\ud800"}),
                          ("rename", {"name": "An\ud83da"}),
                          ("profile", {"status_text": "\udfff"}),
                          ("search", {"conv": f"room:{room_id}", "query": "\ud800"}),
                          ("send", {"id": "m-half-0002", "room": room_id, "text": "x",
                                    "\ud800": 1})]:
        reply = box.say(ana, type_, ref="h", **fields)
        assert [(e["code"], e["ref"]) for e in reply] == [("bad_json", "h")], (type_, reply)
    # A ref holding one cannot be answered by: the error comes without it.
    reply = box.say(ana, "ping", ref="\ud800")
    assert [(e["code"], e.get("ref")) for e in reply] == [("bad_json", None)]
    assert box.say(ana, "ping", ref="p")[0]["type"] == "pong"
    assert [r.name for r in box.store.load_rooms()] == ["Deck"]


def test_flooding_client_is_rate_limited_then_disconnected(box: Box) -> None:
    peer, _, _ = box.join("Flood")
    other, _, _ = box.join("Calm")
    for _ in range(400):  # all at the same instant
        box.hub.handle(peer, '{"type": "ping"}')
    assert peer.of("error")[0]["code"] == "rate_limited"
    assert peer.closed == (4008, "too many messages")
    box.clock.advance(5000)
    assert box.say(other, "ping")[0]["type"] == "pong"


def test_rename_on_the_same_connection_checks_the_name_and_tells_everyone(box: Box) -> None:
    ana, ana_id, token = box.join("Ana")
    ben, _, _ = box.join("Ben")
    box.say(ben, "people", watch=True)
    assert box.say(ana, "rename", name="ben")[0]["code"] == "name_taken"
    assert box.say(ana, "rename", name="\x00")[0]["code"] == "bad_name"
    reply = box.say(ana, "rename", name="Anna")[0]
    assert reply["type"] == "profile" and reply["user"]["name"] == "Anna"
    assert basic(ben.users(ana_id)[-1]) == {"id": ana_id, "name": "Anna", "status": "online"}
    assert box.say(box.connect(), "hello", name="Ana")[0]["type"] == "welcome"
