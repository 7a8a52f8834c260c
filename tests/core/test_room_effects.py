"""The room workflow alone: each operation returns what to store and whom to tell, in order."""

from __future__ import annotations

import itertools

import pytest

from appliance.protocol import ProtocolError
from appliance.rooms import (
    AddMember,
    Announce,
    Reply,
    Rooms,
    SaveRoom,
    SendHistory,
    SetInvite,
    Tell,
    TellRoom,
    Unlist,
)


def make_rooms() -> Rooms:
    counter = itertools.count(1)
    return Rooms(lambda: f"r_{next(counter)}", lambda: "code123")


def test_creating_a_room_stores_it_then_answers_then_announces() -> None:
    rooms = make_rooms()
    effects = rooms.create("u_ana", 1000, "Deck", "", 20, False, "public", False)
    room = rooms["r_1"]
    assert effects == [SaveRoom(room), AddMember("r_1", "u_ana"), Reply("room", room),
                       Announce(room)]


def test_a_join_that_needs_approval_asks_the_moderators_and_stores_no_member() -> None:
    rooms = make_rooms()
    rooms.create("u_ana", 1000, "Club", "", 20, False, "public", True)
    room = rooms["r_1"]
    effects = rooms.join("u_ben", "Ben", "r_1", None)
    assert effects == [
        SetInvite("r_1", "u_ben", "request"),
        Tell("u_ana", {"type": "room_request", "room": "r_1", "user": "u_ben", "name": "Ben"}),
        Reply("room_pending", room), Announce(room),
    ]
    assert room.members == ["u_ana"] and room.requests == ["u_ben"]
    # Approving admits them: stored, told, given the history, announced, then answered.
    effects = rooms.approve("u_ana", "r_1", "u_ben")
    assert effects == [AddMember("r_1", "u_ben"), TellRoom("u_ben", "room", room),
                       SendHistory("u_ben", room), Announce(room), Reply("room", room)]


def test_making_a_public_room_hidden_unlists_it_for_outsiders() -> None:
    rooms = make_rooms()
    rooms.create("u_ana", 1000, "Deck", "", 20, False, "public", False)
    room = rooms["r_1"]
    effects = rooms.update("u_ana", "r_1", {"visibility": "hidden"})
    assert effects[-1] == Unlist(room)
    assert not room.can_see("u_eve")
    # Staying hidden unlists nobody again.
    assert Unlist(room) not in rooms.update("u_ana", "r_1", {"name": "Deck 2"})


def test_an_outsider_cannot_learn_a_hidden_room_exists() -> None:
    rooms = make_rooms()
    rooms.create("u_ana", 1000, "Secret", "", 20, False, "hidden", False)
    for attempt in (lambda: rooms.leave("u_eve", "r_1"),
                    lambda: rooms.update("u_eve", "r_1", {"name": "x"}),
                    lambda: rooms.join("u_eve", "Eve", "r_1", None),
                    lambda: rooms.delete_as_owner("u_eve", "r_1")):
        with pytest.raises(ProtocolError) as refused:
            attempt()
        assert refused.value.code == "unknown_room" and "Secret" not in refused.value.message
