from __future__ import annotations

from hubdriver import Box


def test_hidden_room_is_invisible_and_unjoinable_for_outsiders(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    eve, _, _ = box.join("Eve")
    room_id = box.room(ana, "Secret", visibility="hidden")
    assert not eve.rooms(room_id)
    assert box.say(eve, "room_join", room=room_id)[0]["code"] == "unknown_room"
    assert box.say(eve, "send", id="m-sneak001", room=room_id, text="hi")[0]["code"] == "unknown_room"
    welcome = box.say(box.connect(), "hello", name="Late")[0]
    assert room_id not in [r["id"] for r in welcome["rooms"]]
    assert room_id not in [r["id"] for r in box.hub.public_rooms()]


def test_invited_user_sees_and_joins_a_hidden_room(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    room_id = box.room(ana, "Secret", visibility="hidden")
    box.say(ana, "room_invite", room=room_id, user=ben_id)
    invited = ben.last("room_invited")
    assert invited["room"]["id"] == room_id and invited["by"] == box.hub.presence.user_of(ana)
    joined = box.say(ben, "room_join", room=room_id)[0]
    assert joined["type"] == "room" and ben_id in joined["room"]["members"]
    assert joined["room"]["invited"] == []


def test_invite_link_code_lets_anyone_in_and_can_be_reset(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    cy, _, _ = box.join("Cy")
    room_id = box.room(ana, "Secret", visibility="hidden", approval=True)
    code = box.say(ana, "room_invite_link", room=room_id)[0]["code"]
    assert box.say(ben, "room_join", room=room_id, code="wrong")[0]["code"] == "unknown_room"
    assert box.say(ben, "room_join", room=room_id, code=code)[0]["type"] == "room"
    new_code = box.say(ana, "room_invite_link", room=room_id, reset=True)[0]["code"]
    assert new_code != code
    assert box.say(cy, "room_join", room=room_id, code=code)[0]["code"] == "unknown_room"
    assert ben_id in box.hub.rooms[room_id].members


def test_rooms_needing_approval_queue_requests_for_the_moderators(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    cy, cy_id, _ = box.join("Cy")
    room_id = box.room(ana, "Club", approval=True)
    pending = box.say(ben, "room_join", room=room_id)[0]
    assert pending["type"] == "room_pending"
    assert ana.last("room_request") == {"type": "room_request", "room": room_id, "user": ben_id,
                                        "name": "Ben"}
    assert box.say(ben, "send", id="m-early001", room=room_id, text="let me in")[0]["code"] == \
        "not_member"
    assert box.say(cy, "room_approve", room=room_id, user=ben_id)[0]["code"] == "not_moderator"
    box.say(ana, "room_approve", room=room_id, user=ben_id)
    assert ben.last("room")["room"]["members"] == [ana_id, ben_id]
    box.say(cy, "room_join", room=room_id)
    box.say(ana, "room_deny", room=room_id, user=cy_id)
    assert cy.last("room_denied") == {"type": "room_denied", "room": room_id}
    assert cy_id not in box.hub.rooms[room_id].members


def test_moderators_remove_members_but_not_the_owner_or_other_moderators(box: Box) -> None:
    owner, owner_id, _ = box.join("Owner")
    mod, mod_id, _ = box.join("Mod")
    mod2, mod2_id, _ = box.join("Mod2")
    troll, troll_id, _ = box.join("Troll")
    room_id = box.room(owner)
    for peer in (mod, mod2, troll):
        box.say(peer, "room_join", room=room_id)
    assert box.say(mod, "room_role", room=room_id, user=mod2_id, role="moderator")[0]["code"] == \
        "not_owner"
    box.say(owner, "room_role", room=room_id, user=mod_id, role="moderator")
    box.say(owner, "room_role", room=room_id, user=mod2_id, role="moderator")
    assert troll.rooms(room_id)[-1]["moderators"] == sorted([mod_id, mod2_id])
    box.say(mod, "room_kick", room=room_id, user=troll_id)
    assert troll.last("room_removed")["by"] == mod_id
    assert box.say(mod, "room_kick", room=room_id, user=owner_id)[0]["code"] == "not_owner"
    assert box.say(mod, "room_kick", room=room_id, user=mod2_id)[0]["code"] == "not_owner"
    box.say(owner, "room_kick", room=room_id, user=mod2_id)
    assert mod2_id not in box.hub.rooms[room_id].moderators


def test_private_room_settings_roles_and_invites_survive_a_restart(box: Box) -> None:
    from appliance.hub import Hub

    ana, _, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    cy, cy_id, _ = box.join("Cy")
    room_id = box.room(ana, "Club", visibility="hidden", approval=True)
    box.say(ana, "room_invite", room=room_id, user=ben_id)
    box.say(ben, "room_join", room=room_id)
    box.say(ana, "room_role", room=room_id, user=ben_id, role="moderator")
    box.say(ana, "room_invite", room=room_id, user=cy_id)
    room = Hub(box.store, clock=box.clock).rooms[room_id]
    assert (room.visibility, room.approval, room.moderators) == ("hidden", True, {ben_id})
    assert room.invited == [cy_id]


def test_making_a_room_hidden_removes_it_from_outsiders_lists(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    eve, _, _ = box.join("Eve")
    room_id = box.room(ana, "Deck")
    assert eve.rooms(room_id)
    box.say(ana, "room_update", room=room_id, visibility="hidden")
    assert eve.last("room_deleted") == {"type": "room_deleted", "room": room_id}
    assert not [m for m in ana.of("room_deleted")]


def test_errors_never_name_a_hidden_room_to_outsiders_who_know_its_id(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    eve, _, _ = box.join("Eve")
    room_id = box.room(ana, "Mutiny Plans", visibility="hidden")
    conv = f"room:{room_id}"
    attempts = [
        ("send", {"id": "m-sneak002", "room": room_id, "text": "hi"}),
        ("typing", {"room": room_id}),
        ("sync", {"conv": conv, "after": 0}),
        ("read", {"conv": conv, "seq": 1}),
        ("react", {"conv": conv, "seq": 1, "emoji": "👍", "on": True}),
        ("search", {"conv": conv, "query": "plans"}),
        ("room_join", {"room": room_id}),
        ("room_leave", {"room": room_id}),
        ("room_delete", {"room": room_id}),
        ("room_update", {"room": room_id, "name": "Mine now"}),
        ("call_join", {"room": room_id}),
    ]
    for type_, fields in attempts:
        replies = box.say(eve, type_, **fields)
        errors = [m for m in replies if m["type"] == "error"]
        assert errors, (type_, replies)
        assert "Mutiny" not in errors[0]["message"], (type_, errors[0])
        assert errors[0]["code"] == "unknown_room", (type_, errors[0])
