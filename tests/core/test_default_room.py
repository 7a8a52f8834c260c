"""The room everyone joins at first visit (config `default_room`)."""

from __future__ import annotations

from hubdriver import Box

from appliance.hub import Hub
from appliance.protocol import MAX_ROOM_LIMIT
from appliance.store import Store


def box_with(name: str | None, store: Store | None = None) -> Box:
    box = Box(store or Store(":memory:"))
    box.hub = Hub(box.store, clock=box.clock, default_room=name)
    return box


def test_a_new_person_is_in_the_default_room_and_told_where_to_land() -> None:
    box = box_with("Everyone")
    peer = box.connect()
    welcome = box.say(peer, "hello", name="Ana")[0]
    room_id = welcome["default_room"]
    rooms = {r["id"]: r for r in welcome["rooms"]}
    assert rooms[room_id]["name"] == "Everyone"
    assert rooms[room_id]["members"] == [welcome["you"]["id"]]
    assert rooms[room_id]["owner"] == ""
    assert rooms[room_id]["limit"] == MAX_ROOM_LIMIT


def test_others_see_the_newcomer_arrive_in_the_room() -> None:
    box = box_with("Everyone")
    ana, ana_id, _ = box.join("Ana")
    _, ben_id, _ = box.join("Ben")
    update = ana.rooms(box.hub.default_room)[-1]
    assert update["members"] == [ana_id, ben_id]


def test_people_can_leave_it_and_are_not_put_back_when_they_return() -> None:
    box = box_with("Everyone")
    ana, ana_id, token = box.join("Ana")
    room = box.hub.default_room
    reply = box.say(ana, "room_leave", room=room)[0]
    assert ana_id not in reply["room"]["members"]
    again = box.connect()
    welcome = box.say(again, "hello", token=token)[0]
    assert welcome["type"] == "welcome"
    # Not a member: the room comes with its count only.
    assert "members" not in {r["id"]: r for r in welcome["rooms"]}[room]


def test_the_room_is_made_once_and_found_again_after_a_restart(tmp_path: object) -> None:
    store = Store(":memory:")
    first = box_with("Everyone", store)
    room = first.hub.default_room
    second = box_with("everyone", store)
    assert second.hub.default_room == room
    assert [r.name for r in second.hub.rooms] == ["Everyone"]


def test_no_default_room_means_none_is_made_and_welcome_says_so() -> None:
    box = box_with(None)
    welcome = box.say(box.connect(), "hello", name="Ana")[0]
    assert welcome["rooms"] == []
    assert welcome["default_room"] is None


def test_a_closed_default_room_does_not_stop_anyone_joining_the_box() -> None:
    box = box_with("Everyone")
    box.hub.rooms[box.hub.default_room].active = False
    peer = box.connect()
    welcome = box.say(peer, "hello", name="Ana")[0]
    assert welcome["type"] == "welcome"
    assert welcome["rooms"][0]["count"] == 0 and "members" not in welcome["rooms"][0]
