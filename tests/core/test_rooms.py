from __future__ import annotations

from hubdriver import Box


def test_room_lifecycle_with_live_counts(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    room_id = box.room(ana, "Deck", description="Crew chat", limit=3)
    update = ben.rooms(room_id)[-1]
    # Ben is not in it: he sees how many are, not who.
    assert update["name"] == "Deck" and update["count"] == 1 and update["online"] == 1
    assert "members" not in update
    joined = box.say(ben, "room_join", room=room_id)[0]["room"]
    assert joined["members"] == [ana_id, ben_id] and joined["online"] == 2
    assert ana.rooms(room_id)[-1]["online"] == 2
    box.hub.disconnect(ben)
    assert ana.rooms(room_id)[-1]["online"] == 1
    ben2 = box.connect()
    welcome = box.say(ben2, "hello", name="Ben2")[0]
    assert [r["id"] for r in welcome["rooms"]] == [room_id]


def test_full_and_inactive_rooms_refuse_joins_clearly(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    room_id = box.room(ana, limit=2)
    ben, _, _ = box.join("Ben")
    cy, _, _ = box.join("Cy")
    box.say(ben, "room_join", room=room_id)
    full = box.say(cy, "room_join", room=room_id)[0]
    assert full["code"] == "room_full" and "full" in full["message"]
    box.say(ben, "room_leave", room=room_id)
    box.say(ana, "room_update", room=room_id, active=False)
    closed = box.say(cy, "room_join", room=room_id)[0]
    assert closed["code"] == "room_inactive"
    refused = box.say(ana, "send", id="m-00000001", room=room_id, text="hello?")[0]
    assert refused["code"] == "room_inactive"


def test_only_the_owner_manages_the_room(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    room_id = box.room(ana)
    box.say(ben, "room_join", room=room_id)
    for request in [dict(type_="room_update", name="Mine"), dict(type_="room_delete")]:
        kind = request.pop("type_")
        assert box.say(ben, kind, room=room_id, **request)[0]["code"] == "not_owner"
    assert box.say(ben, "room_kick", room=room_id, user=ben_id)[0]["code"] == "bad_request"
    cy, cy_id, _ = box.join("Cy")
    box.say(cy, "room_join", room=room_id)
    assert box.say(ben, "room_kick", room=room_id, user=cy_id)[0]["code"] == "not_moderator"
    renamed = box.say(ana, "room_update", room=room_id, name="  Main   deck ",
                      description="All hands", limit=10)[0]["room"]
    assert (renamed["name"], renamed["description"], renamed["limit"]) == (
        "Main deck", "All hands", 10)
    box.say(ana, "room_kick", room=room_id, user=ben_id)
    assert ben.last("room_removed") == {"type": "room_removed", "room": room_id, "by": box.hub.presence.user_of(ana)}
    assert box.say(ben, "send", id="m-00000002", room=room_id, text="hi")[0]["code"] == "not_member"
    box.say(ana, "room_delete", room=room_id)
    assert ben.last("room_deleted")["room"] == room_id
    assert box.say(ben, "room_join", room=room_id)[0]["code"] == "unknown_room"


def test_room_fields_are_validated(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    for fields in [dict(name=""), dict(name="x" * 49), dict(name="ok", limit=1),
                   dict(name="ok", limit=500), dict(name="ok", description="d" * 201),
                   dict(name="a\x00b")]:
        reply = box.say(ana, "room_create", **fields)[0]
        assert reply["code"] == "bad_request", (fields, reply)


def test_rooms_and_members_survive_a_restart(box: Box) -> None:
    from appliance.hub import Hub

    ana, ana_id, _ = box.join("Ana")
    room_id = box.room(ana, "Deck", limit=7)
    hub2 = Hub(box.store, clock=box.clock)
    room = hub2.rooms[room_id]
    assert (room.name, room.limit, room.members, room.owner) == ("Deck", 7, [ana_id], ana_id)


def test_ephemeral_room_messages_are_deleted_with_the_room(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    keep = box.room(ana, "Keep")
    gone = box.room(ana, "Gone", ephemeral=True)
    box.say(ana, "send", id="m-keep0001", room=keep, text="stays")
    box.say(ana, "send", id="m-gone0001", room=gone, text="vanishes")
    box.say(ana, "room_delete", room=keep)
    box.say(ana, "room_delete", room=gone)
    assert box.store.last_seq(f"room:{keep}") == 1
    assert box.store.after(f"room:{gone}", 0, 10) == ([], False)
