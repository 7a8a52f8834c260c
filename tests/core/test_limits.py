"""Nobody fills the box: rooms per person, rooms in all, new identities per phone address."""

from __future__ import annotations

import json

from hubdriver import Box

from appliance import protocol


def test_a_person_can_own_only_so_many_rooms(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    for i in range(protocol.MAX_ROOMS_PER_PERSON):
        box.room(ana, f"Room {i}")
    refused = box.say(ana, "room_create", name="One too many")[0]
    assert refused["code"] == "too_many_rooms"
    assert "Delete one" in refused["message"]
    # Deleting one makes room for another.
    first = next(r for r in box.hub.rooms if r.name == "Room 0")
    box.say(ana, "room_delete", room=first.id)
    assert box.say(ana, "room_create", name="Replacement")[0]["type"] == "room"


def test_the_box_holds_a_bounded_number_of_rooms_and_welcome_stays_small(box: Box) -> None:
    owners = [box.join(f"Owner {i}")[0] for i in range(protocol.MAX_ROOMS // protocol.MAX_ROOMS_PER_PERSON + 1)]
    made = 0
    for owner in owners:
        for _ in range(protocol.MAX_ROOMS_PER_PERSON):
            reply = box.say(owner, "room_create", name=f"Room {made}",
                            description="x" * protocol.MAX_DESCRIPTION)[0]
            if reply["type"] != "room":
                assert reply["code"] == "too_many_rooms" and "admin" in reply["message"]
                break
            made += 1
    assert made == protocol.MAX_ROOMS == len(box.hub.rooms)
    welcome = box.say(box.connect(), "hello", name="Newcomer")[0]
    assert welcome["limits"]["rooms"] == protocol.MAX_ROOMS
    assert len(json.dumps(welcome)) < 150_000


def test_one_phone_address_makes_a_bounded_number_of_new_people_an_hour(box: Box) -> None:
    for i in range(protocol.NEW_PEOPLE_PER_ADDRESS_PER_HOUR):
        assert box.say(box.connect("10.42.0.77"), "hello", name=f"Sock {i}")[0]["type"] == "welcome"
    refused = box.say(box.connect("10.42.0.77"), "hello", name="Sock again")[0]
    assert refused["code"] == "too_many_people"
    assert "hour" in refused["message"]
    # Another phone is not affected, and an existing identity still comes back.
    assert box.say(box.connect("10.42.0.78"), "hello", name="Neighbour")[0]["type"] == "welcome"
    peer, _, token = box.join("Regular")
    box.hub.disconnect(peer)
    assert box.say(box.connect("10.42.0.77"), "hello", token=token)[0]["type"] == "welcome"
    # An hour later the address may make new people again.
    box.clock.advance(3600_000)
    box.hub.tick()
    assert box.say(box.connect("10.42.0.77"), "hello", name="Sock later")[0]["type"] == "welcome"


def test_programs_on_the_box_itself_are_not_limited(box: Box) -> None:
    for i in range(protocol.NEW_PEOPLE_PER_ADDRESS_PER_HOUR + 5):
        assert box.say(box.connect("127.0.0.1"), "hello", name=f"Bot {i}")[0]["type"] == "welcome"
