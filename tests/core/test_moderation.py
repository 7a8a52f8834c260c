from __future__ import annotations

from hubdriver import Box


def test_admin_removes_a_user_who_is_disconnected_and_forgotten(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    troll, troll_id, token = box.join("Troll")
    box.say(ana, "send", id="m-00000001", to=troll_id, text="Hi")  # a contact now
    room_id = box.room(ana)
    box.say(troll, "room_join", room=room_id)
    assert box.hub.remove_user(troll_id)
    assert troll.closed == (4003, "removed by the admin")
    assert troll.last("error")["code"] == "removed"
    assert ana.users(troll_id)[-1]["status"] == "offline"
    assert box.hub.rooms[room_id].members == [box.hub.presence.user_of(ana)]
    assert box.say(box.connect(), "hello", token=token)[0]["code"] == "bad_token"
    assert not box.hub.remove_user("u_nobody")


def test_admin_closes_a_room_and_deletes_a_message(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, _, _ = box.join("Ben")
    room_id = box.room(ana)
    box.say(ben, "room_join", room=room_id)
    box.say(ben, "send", id="m-nasty001", room=room_id, text="nasty")
    assert box.hub.delete_message(f"room:{room_id}", 1)
    assert ana.last("message_deleted") == {"type": "message_deleted",
                                           "conv": f"room:{room_id}", "seq": 1}
    assert box.hub.recent_messages(f"room:{room_id}") == []
    assert box.hub.close_room(room_id)
    assert ben.last("room_deleted")["room"] == room_id
    assert not box.hub.close_room(room_id)
