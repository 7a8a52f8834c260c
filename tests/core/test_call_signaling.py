from __future__ import annotations

from hubdriver import Box, RecordingPeer


def statuses(peer: RecordingPeer, user_id: str) -> list[str]:
    return [u.get("status", "online") for u in peer.users(user_id)]


def test_one_to_one_call_rings_is_accepted_relays_signaling_and_hangs_up(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    cy, _, _ = box.join("Cy")
    box.say(cy, "people", watch=True)
    ringing = box.say(ana, "call_invite", to=ben_id, media="video", ref="c1")[0]
    assert ringing["type"] == "call_ringing" and ringing["ref"] == "c1"
    call = ringing["call"]
    incoming = ben.last("call_incoming")
    assert incoming == {"type": "call_incoming", "call": call, "from": ana_id, "name": "Ana",
                        "media": "video", "room": None}
    assert statuses(cy, ana_id)[-1] == "busy" and statuses(cy, ben_id)[-1] == "busy"
    box.say(ben, "call_accept", call=call)
    assert ana.last("call_accepted") == {"type": "call_accepted", "call": call, "by": ben_id,
                                         "name": "Ben"}
    offer = {"description": {"type": "offer", "sdp": "v=0..."}}
    box.say(ana, "signal", call=call, to=ben_id, data=offer)
    assert ben.last("signal") == {"type": "signal", "call": call, "from": ana_id, "data": offer}
    assert not cy.of("signal")
    box.say(ben, "call_hangup", call=call)
    assert ana.last("call_ended") == {"type": "call_ended", "call": call, "reason": "hangup",
                                      "by": ben_id}
    assert statuses(cy, ana_id)[-1] == "online" and statuses(cy, ben_id)[-1] == "online"


def test_calls_to_offline_busy_unknown_or_self_get_clear_answers(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    gone, gone_id, _ = box.join("Gone")
    box.hub.disconnect(gone)
    cy, _, _ = box.join("Cy")
    assert box.say(ana, "call_invite", to=gone_id)[0]["code"] == "user_offline"
    assert box.say(ana, "call_invite", to="u_nobody")[0]["code"] == "unknown_user"
    assert box.say(ana, "call_invite", to=ana_id)[0]["code"] == "call_self"
    box.say(ana, "call_invite", to=ben_id)
    busy = box.say(cy, "call_invite", to=ben_id)[0]
    assert busy["code"] == "user_busy" and "another call" in busy["message"]


def test_reject_cancel_and_no_answer_end_the_call_for_both(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    call = box.say(ana, "call_invite", to=ben_id)[0]["call"]
    box.say(ben, "call_reject", call=call)
    assert ana.last("call_ended")["reason"] == "rejected"
    call = box.say(ana, "call_invite", to=ben_id)[0]["call"]
    box.say(ana, "call_cancel", call=call)
    assert ben.last("call_ended") == {"type": "call_ended", "call": call, "reason": "cancelled",
                                      "by": box.hub.presence.user_of(ana)}
    call = box.say(ana, "call_invite", to=ben_id)[0]["call"]
    box.clock.advance(46_000)
    box.hub.tick()
    assert ana.last("call_ended")["reason"] == "no_answer"
    assert ben.last("call_ended")["reason"] == "no_answer"
    assert not box.hub.calls.active()


def test_a_callee_that_cannot_take_the_call_says_why(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    for why in ("unsupported", "no_media"):
        call = box.say(ana, "call_invite", to=ben_id)[0]["call"]
        box.say(ben, "call_reject", call=call, why=why)
        assert ana.last("call_ended")["reason"] == why
        assert ben.last("call_ended")["reason"] == why
    call = box.say(ana, "call_invite", to=ben_id)[0]["call"]
    box.say(ben, "call_reject", call=call, why="declined")
    assert ana.last("call_ended")["reason"] == "rejected"
    call = box.say(ana, "call_invite", to=ben_id)[0]["call"]
    bad = box.say(ben, "call_reject", call=call, why="busy")[0]
    assert bad["code"] == "bad_request" and "why" in bad["message"]


def test_signaling_only_between_participants(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    eve, _, _ = box.join("Eve")
    call = box.say(ana, "call_invite", to=ben_id)[0]["call"]
    # Before the call is accepted nothing is relayed.
    assert box.say(ana, "signal", call=call, to=ben_id, data={})[0]["code"] == "not_in_call"
    box.say(ben, "call_accept", call=call)
    assert box.say(eve, "signal", call=call, to=ben_id, data={"x": 1})[0]["code"] == "not_in_call"
    assert box.say(eve, "call_hangup", call=call)[0]["code"] == "not_in_call"
    assert box.say(eve, "call_accept", call="c_nope")[0]["code"] == "unknown_call"
    big = box.say(ana, "signal", call=call, to=ben_id, data={"sdp": "x" * 70000})[0]
    assert big["code"] == "bad_request"


def test_call_survives_a_short_drop_and_ends_after_the_grace_period(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, ben_id, ben_token = box.join("Ben")
    call = box.say(ana, "call_invite", to=ben_id)[0]["call"]
    box.say(ben, "call_accept", call=call)
    box.hub.disconnect(ben)
    box.clock.advance(10_000)
    box.hub.tick()
    assert not ana.of("call_ended")
    back = box.connect()
    box.say(back, "hello", token=ben_token)
    resume = back.last("call_resume")
    assert resume["call"] == call and resume["peers"] == [box.hub.presence.user_of(ana)]
    box.hub.disconnect(back)
    box.clock.advance(21_000)
    box.hub.tick()
    assert ana.last("call_ended")["reason"] == "disconnected"


def test_room_call_is_a_mesh_of_at_most_four(box: Box) -> None:
    owner, owner_id, _ = box.join("Owner")
    room_id = box.room(owner)
    people = [(owner, owner_id)]
    for name in ["B", "C", "D", "E"]:
        peer, uid, _ = box.join(name)
        box.say(peer, "room_join", room=room_id)
        people.append((peer, uid))
    joined = box.say(owner, "call_join", room=room_id, media="audio")
    call = [m for m in joined if m["type"] == "call_joined"][0]
    assert call["peers"] == []
    assert people[1][0].last("call_incoming")["room"] == room_id
    for peer, uid in people[1:4]:
        reply = [m for m in box.say(peer, "call_join", room=room_id) if m["type"] == "call_joined"]
        assert reply[0]["call"] == call["call"]
        assert owner.last("call_peer_joined")["user"] == uid
    assert [m for m in box.say(people[4][0], "call_join", room=room_id)
            if m["type"] == "error"][0]["code"] == "call_full"
    room_call = people[4][0].rooms(room_id)[-1]["call"]
    assert room_call["participants"] == [uid for _, uid in people[:4]]
    box.say(people[1][0], "call_hangup", call=call["call"])
    assert owner.last("call_peer_left")["user"] == people[1][1]
    for peer, _ in [people[0], people[2], people[3]]:
        box.say(peer, "call_hangup", call=call["call"])
    assert not box.hub.calls.active()
    assert people[4][0].rooms(room_id)[-1].get("call") is None  # left out when there is none


def test_leaving_the_room_leaves_its_call(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    room_id = box.room(ana)
    box.say(ben, "room_join", room=room_id)
    call = [m for m in box.say(ana, "call_join", room=room_id) if m["type"] == "call_joined"][0]
    box.say(ben, "call_join", room=room_id)
    box.say(ben, "room_leave", room=room_id)
    assert ana.last("call_peer_left") == {"type": "call_peer_left", "call": call["call"],
                                          "user": ben_id, "name": "Ben"}


def test_incoming_call_names_the_caller(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    box.say(ana, "call_invite", to=ben_id)
    assert ben.last("call_incoming")["name"] == "Ana"


def test_signaling_without_a_call_reaches_only_an_online_person(box: Box) -> None:
    """Direct file transfers set up their data channel without a call."""
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    gone, gone_id, _ = box.join("Gone")
    box.hub.disconnect(gone)
    box.say(ana, "signal", to=ben_id, data={"share": "offer"})
    assert ben.last("signal") == {"type": "signal", "call": None, "from": ana_id,
                                  "data": {"share": "offer"}}
    assert box.say(ana, "signal", to=gone_id, data={})[0]["code"] == "user_offline"
    assert box.say(ana, "signal", to=ana_id, data={})[0]["code"] == "bad_request"
