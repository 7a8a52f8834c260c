"""A crowd arriving at once costs O(N) frames, O(N) bytes and O(1) queries
per arrival.

The box gathers presence and room changes (`hub.coalesce`, as the server
runs it) and sends each phone one `changes` frame per gathering period. A
phone is told of its contacts (the people it has one-to-one conversations
with) and how many are online; everyone only when it asks (`people`). It is
told of the rooms it is in as they change, of each other room when it is
made or its settings or call change, and of the counts of the rooms it is not
in only when it asks (`rooms` with `watch`).
"""

from __future__ import annotations

import json
from typing import Any

from hubdriver import Box, RecordingPeer

from appliance.hub import Hub


def view(peer: RecordingPeer) -> dict[str, str]:
    """Who is online as a phone sees it: its `welcome`, the answers to
    `people`, then every `changes` frame."""
    online: dict[str, str] = {}
    me = ""
    for m in peer.sent:
        if m["type"] == "welcome":
            me = m["you"]["id"]
            online = {u["id"]: u.get("status", "online") for u in m["users"]}
        elif m["type"] == "people" and "users" in m:
            online = {u["id"]: u.get("status", "online") for u in m["users"]}
        elif m["type"] == "changes":
            for u in m["users"]:
                if u["id"] == me:
                    continue
                if u.get("status") == "offline":
                    online.pop(u["id"], None)
                else:
                    online[u["id"]] = u.get("status", "online")
    return online


def rooms_view(peer: RecordingPeer) -> dict[str, dict[str, Any]]:
    """The rooms as a phone sees them: `welcome`, replies, answers to
    `rooms`, then `changes`."""
    rooms = {r["id"]: r for m in peer.sent if m["type"] in ("welcome", "rooms")
             for r in m.get("rooms", [])}
    rooms.update({r["id"]: r for m in peer.of("room") for r in [m["room"]]})
    rooms.update({r["id"]: r for r in peer.rooms()})
    return rooms


def test_fifty_arrivals_cost_each_phone_a_few_frames_and_presence_stays_right(box: Box) -> None:
    box.hub.coalesce = True
    early = [box.join(f"Early{i}") for i in range(5)]
    room_id = box.room(early[0][0], "Deck", limit=200)
    for peer, _, _ in early[1:]:
        box.say(peer, "room_join", room=room_id)
    box.say(early[0][0], "people", watch=True)  # the first watches everyone
    box.hub.flush_changes()
    seen_before = [len(peer.sent) for peer, _, _ in early]
    crowd = []
    for i in range(50):
        peer, uid, _ = box.join(f"Crowd{i}")
        box.say(peer, "room_join", room=room_id)
        crowd.append((peer, uid))
        if i % 10 == 9:  # the server sends the gathered changes every 0.2 s
            box.clock.advance(200)
            box.hub.flush_changes()
    box.hub.flush_changes()
    # Before, each of the 5 early phones got 50 presence frames and 50 room
    # updates at the least; now one `changes` frame per gathering period.
    for (peer, _, _), before in zip(early, seen_before, strict=True):
        assert [m["type"] for m in peer.sent[before:]] == ["changes"] * 5
    total = sum(len(p.sent) for p, _ in crowd) + sum(
        len(p.sent) - before for (p, _, _), before in zip(early, seen_before, strict=True))
    # Each newcomer: welcome, room reply, history and at most 5 changes frames.
    assert total <= 5 * 5 + 50 * 8
    everyone = {uid for _, uid, _ in early} | {uid for _, uid in crowd}
    # The watcher sees everyone; the others, who have no contacts, nobody,
    # and how many are online.
    assert view(early[0][0]) == {u: "online" for u in everyone - {early[0][1]}}
    for peer in [p for p, _, _ in early[1:]] + [p for p, _ in crowd]:
        assert view(peer) == {}
        assert peer.users() == []
        assert [m["online"] for m in peer.of("welcome") + peer.of("changes")
                if "online" in m][-1] == 55
        assert rooms_view(peer)[room_id]["online"] == 55
        assert rooms_view(peer)[room_id].get("member") is True
        assert "members" not in rooms_view(peer)[room_id]  # over 50: room_get says who
    # Ten leave and two of them come back within one gathering period: the
    # watcher sees the state at the end of it.
    leaving = crowd[:10]
    for peer, _ in leaving:
        box.hub.disconnect(peer)
    back = [box.say(box.connect(), "hello", name=f"Crowd{i}") for i in range(2)]
    assert all(reply[0]["type"] == "welcome" for reply in back)
    back_ids = {reply[0]["you"]["id"] for reply in back}
    before = len(early[0][0].sent)
    box.clock.advance(1000)
    box.hub.flush_changes()
    (frame,) = early[0][0].sent[before:]
    assert frame["type"] == "changes"
    statuses = {u["id"]: u.get("status", "online") for u in frame["users"]}
    assert statuses == {**{uid: "offline" for _, uid in leaving}, **{u: "online" for u in back_ids}}
    assert frame["online"] == 47
    # Only the counts are said (they are still members), not who is in it.
    (entry,) = frame["rooms"]
    assert entry == {"id": room_id, "online": 45, "count": 55}


def test_arrivals_cost_each_phone_without_contacts_a_few_bytes_each(box: Box) -> None:
    """What a crowd of N arriving is sent in all grows as N, not N²: a phone
    that watches nobody and has no contacts is told only how many are online,
    at most once a second (so that part grows with N times how long they take
    to arrive)."""
    box.hub.coalesce = True

    def bytes_of(n: int) -> int:
        peers = []
        start = box.clock()
        for i in range(n):
            peer, _ = arrive(box, f"N{n}-{i}")
            peers.append(peer)
            if i % 4 == 3:
                box.hub.flush_changes()
        box.clock.advance(1000)
        box.hub.flush_changes()
        seconds = (box.clock() - start) / 1000
        assert all(p.users() == [] for p in peers)
        assert all(p.of("changes")[-1]["online"] == n for p in peers)
        for p in peers:
            counts = [m for m in p.of("changes") if m == {"type": "changes", "users": [],
                                                          "rooms": [], "online": m["online"]}]
            assert len(counts) == len(p.of("changes")) <= seconds + 1
        total = sum(len(json.dumps(m)) for p in peers for m in p.sent if m["type"] != "changes")
        for p in peers:
            box.hub.disconnect(p)
        box.clock.advance(1000)
        box.hub.flush_changes()
        return total

    small, large = bytes_of(40), bytes_of(160)
    # Four times the people, about four times the bytes (it was sixteen).
    assert large < 5 * small, (small, large)


def test_welcome_and_changes_list_contacts_and_a_new_contact_is_introduced(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    cy, cy_id, cy_token = box.join("Cy")
    box.say(ana, "send", id="m-00000001", to=ben_id, text="Hi")
    # Ben and Ana became contacts: each is told of the other (not of Cy).
    assert [u["id"] for u in ana.users()] == [ben_id]
    assert [u["id"] for u in ben.users()] == [ana_id]
    assert cy.users() == []
    # Cy comes back: his welcome lists nobody (no contacts); Ana's next one, Ben.
    box.hub.disconnect(cy)
    assert ana.users(cy_id) == [] and ben.users(cy_id) == []
    (welcome, *_) = box.say(box.connect(), "hello", token=cy_token)
    assert welcome["users"] == [] and welcome["online"] == 3
    box.hub.disconnect(ana)
    assert ben.users(ana_id)[-1]["status"] == "offline"
    ana2 = box.connect()
    (again, *_) = box.say(ana2, "hello", name="Ana")  # a new identity: no contacts
    assert again["users"] == []
    # Ben's profile change reaches his contacts only; a call too.
    box.say(ben, "send", id="m-00000002", to=cy_id, text="Hello Cy")
    box.say(ben, "profile", status_text="Away")
    assert cy.users(ben_id) == [] and ana2.users(ben_id) == []
    c2 = box.hub.presence.peer(cy_id)
    assert c2.users(ben_id)[-1]["status_text"] == "Away"
    call = box.say(ben, "call_invite", to=cy_id)[0]["call"]
    assert c2.users(ben_id)[-1]["status"] == "busy" and ana2.users(ben_id) == []
    box.say(ben, "call_cancel", call=call)
    assert "status" not in c2.users(ben_id)[-1]


def test_people_lists_everyone_online_by_name_and_watching_tells_everyone(box: Box) -> None:
    ana, ana_id, _ = box.join("ana")
    ben, ben_id, _ = box.join("Ben")
    cy, cy_id, _ = box.join("Cy")
    (answer,) = box.say(ana, "people", ref="p1")
    assert answer == {"type": "people", "users": [{"id": ben_id, "name": "Ben"},
                                                  {"id": cy_id, "name": "Cy"}],
                      "online": 3, "more": False, "watch": False, "ref": "p1"}
    (answer,) = box.say(ben, "people", watch=True)
    assert [u["name"] for u in answer["users"]] == ["ana", "Cy"] and answer["watch"] is True
    dee, dee_id, _ = box.join("Dee")
    box.say(cy, "profile", status_text="Here")
    assert [u["id"] for u in ben.users()] == [dee_id, cy_id]
    assert ana.users() == [] and cy.users() == []
    (stop,) = box.say(ben, "people", watch=False, ref="p2")
    assert stop == {"type": "people", "watch": False, "online": 4, "ref": "p2"}
    box.hub.disconnect(dee)
    assert ben.users(dee_id)[-1] == {"id": dee_id, "name": "Dee"}  # told no more
    # Watching ends with the connection: a new one watches when it asks.
    box.say(ben, "people", watch=True)
    token = ben.of("welcome")[0]["token"]
    ben2 = box.connect()
    box.say(ben2, "hello", token=token)
    box.join("Eve")
    assert ben2.users() == []
    assert ana_id in {u["id"] for u in box.say(ben2, "people")[0]["users"]}


def test_people_answers_at_most_its_limit_first_by_name(box: Box, monkeypatch: Any) -> None:
    monkeypatch.setattr("appliance.hub.PEOPLE_LIMIT", 3)
    peers = [box.join(name)[0] for name in ("Eve", "cy", "Ana", "Dee", "Ben")]
    (answer,) = box.say(peers[0], "people")
    assert [u["name"] for u in answer["users"]] == ["Ana", "Ben", "cy"]
    assert answer["more"] is True and answer["online"] == 5


def test_online_is_told_at_most_once_a_second_and_in_the_end(box: Box) -> None:
    box.hub.coalesce = True
    ana, _, _ = box.join("Ana")
    box.clock.advance(1000)
    box.hub.flush_changes()
    before = len(ana.sent)
    for i in range(10):  # one every 100 ms, a frame every 200 ms
        arrive(box, f"P{i}")
        box.clock.advance(100)
        if i % 2:
            box.hub.flush_changes()
    told = [m["online"] for m in ana.sent[before:] if "online" in m]
    assert 1 <= len(told) <= 2
    assert box.hub.changes_due.is_set()
    box.clock.advance(1000)
    box.hub.flush_changes()
    assert [m["online"] for m in ana.sent if "online" in m][-1] == 11


def test_a_room_of_over_fifty_goes_without_members_to_its_members_too(box: Box) -> None:
    """The room every new phone joins: its member ids would go to every
    member at each arrival. Over 50 members, members get `member: true` and
    the counts, and `room_get` names who is in it."""
    box.hub = Hub(box.store, clock=box.clock, default_room="Everyone")
    box.hub.coalesce = True
    everyone = box.hub.default_room
    first, first_id, _ = box.join("P0")
    for i in range(1, 50):
        box.join(f"P{i}")
    box.hub.flush_changes()
    assert len(rooms_view(first)[everyone]["members"]) == 50
    peer51, welcome = arrive(box, "P50")
    entry = {r["id"]: r for r in welcome["rooms"]}[everyone]
    assert entry["member"] is True and "members" not in entry and entry["count"] == 51
    box.clock.advance(1000)
    box.hub.flush_changes()
    # Crossing 50: the room whole, without members, then only counts.
    whole = first.rooms(everyone)[-1]
    assert whole["member"] is True and "members" not in whole and whole["count"] == 51
    arrive(box, "P51")
    box.clock.advance(1000)
    box.hub.flush_changes()
    assert first.last("changes")["rooms"] == [{"id": everyone, "online": 52, "count": 52}]
    (reply,) = box.say(first, "room_get", room=everyone)
    assert len(reply["room"]["members"]) == 52
    assert reply["people"][0] == {"id": first_id, "name": "P0", "status": "online"}
    box.say(first, "room_leave", room=everyone)
    box.clock.advance(1000)
    box.hub.flush_changes()
    out = first.rooms(everyone)[-1]
    assert "member" not in out and "members" not in out and out["count"] == 51


def test_room_get_names_each_member_and_their_status(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    cy, cy_id, _ = box.join("Cy")
    room_id = box.room(ana, "Deck")
    box.say(ben, "room_join", room=room_id)
    box.say(cy, "room_join", room=room_id)
    call = box.say(ana, "call_join", room=room_id)[-1]
    box.hub.disconnect(cy)
    eve, _, _ = box.join("Eve")
    (reply,) = box.say(eve, "room_get", room=room_id)
    assert reply["people"] == [{"id": ana_id, "name": "Ana", "status": "busy"},
                               {"id": ben_id, "name": "Ben", "status": "online"},
                               {"id": cy_id, "name": "Cy", "status": "offline"}]
    assert reply["room"]["call"]["names"] == {ana_id: "Ana"}
    joined = [m for m in box.say(ben, "call_join", room=room_id) if m["type"] == "call_joined"]
    assert joined[0]["names"] == {ana_id: "Ana"}
    assert ana.last("call_peer_joined")["name"] == "Ben"
    assert call["type"] in ("call_joined", "room", "changes")


def test_a_welcome_costs_the_same_queries_with_ten_or_sixty_people_online(box: Box) -> None:
    statements: list[str] = []
    box.store.db.set_trace_callback(statements.append)

    def queries_of_hello(name: str) -> int:
        statements.clear()
        box.join(name)
        return len(statements)

    for i in range(10):
        box.join(f"P{i}")
    with_ten = queries_of_hello("Newcomer1")
    for i in range(50):
        box.join(f"Q{i}")
    with_sixty = queries_of_hello("Newcomer2")
    assert with_sixty == with_ten
    assert with_ten <= 10


def test_hidden_rooms_reach_only_who_may_see_them_in_gathered_changes(box: Box) -> None:
    box.hub.coalesce = True
    ana, _, _ = box.join("Ana")
    eve, _, _ = box.join("Eve")
    public = box.room(ana, "Deck")
    hidden = box.room(ana, "Secret", visibility="hidden")
    box.hub.flush_changes()
    assert [r["id"] for r in ana.rooms()] == [public, hidden] or \
        sorted(r["id"] for r in ana.rooms()) == sorted([public, hidden])
    assert [r["id"] for r in eve.rooms()] == [public]


class EncodingPeer(RecordingPeer):
    """A connection with the real edge's encoded sends (the `welcome` entries
    are joined already encoded on this path)."""

    def send_reply_encoded(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def send_encoded(self, text: str) -> None:
        self.sent.append(json.loads(text))


def arrive(box: Box, name: str) -> tuple[EncodingPeer, dict[str, Any]]:
    peer = EncodingPeer()
    box.hub.connect(peer)
    (welcome, *_) = box.say(peer, "hello", name=name)
    assert welcome["type"] == "welcome", welcome
    return peer, welcome


def test_people_in_welcome_and_changes_carry_only_the_profile_they_set(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    cy, welcome = arrive(box, "Cy")
    cy_id = welcome["you"]["id"]
    # Nothing set: id and name only (no status when online, no null colour,
    # empty status line or null picture).
    assert box.say(cy, "people", watch=True)[0]["users"] == [
        {"id": ana_id, "name": "Ana"},
        {"id": ben_id, "name": "Ben"}]
    box.say(ana, "people", watch=True)
    dee, _ = arrive(box, "Dee")
    assert ana.users()[-1] == {"id": box.hub.presence.user_of(dee), "name": "Dee"}
    # Ana sets a colour and a status line, then Ana and Ben start a call: the
    # changes frames and the next welcome (Dee's contacts) say so.
    box.say(dee, "send", id="m-00000001", to=ana_id, text="Hi")
    box.say(dee, "send", id="m-00000002", to=ben_id, text="Hi")
    box.say(dee, "send", id="m-00000003", to=cy_id, text="Hi")
    box.say(ana, "profile", colour="#1e88e5", status_text="On watch")
    assert cy.users(ana_id)[-1] == {"id": ana_id, "name": "Ana",
                                    "colour": "#1e88e5", "status_text": "On watch"}
    call = box.say(ana, "call_invite", to=ben_id, media="audio")[0]["call"]
    box.say(ben, "call_accept", call=call)
    assert cy.users(ben_id)[-1]["status"] == "busy"
    box.hub.disconnect(dee)
    (later, *_) = box.say(box.connect(), "hello", token=dee.of("welcome")[0]["token"])
    assert sorted(later["users"], key=lambda u: u["name"]) == [
        {"id": ana_id, "name": "Ana", "status": "busy", "colour": "#1e88e5",
         "status_text": "On watch"},
        {"id": ben_id, "name": "Ben", "status": "busy"},
        {"id": cy_id, "name": "Cy"}]


def test_a_phone_welcomed_since_the_last_frame_is_told_only_what_changed_after(box: Box) -> None:
    box.hub.coalesce = True
    ana, ana_id, ana_token = box.join("Ana")
    ben, ben_id, ben_token = box.join("Ben")
    cy, cy_id, cy_token = box.join("Cy")
    dee, dee_id, dee_token = box.join("Dee")
    # All four are one another's contacts.
    for i, (a, b) in enumerate([(ana, ben_id), (ana, cy_id), (ana, dee_id), (ben, cy_id),
                                (ben, dee_id), (cy, dee_id)]):
        box.say(a, "send", id=f"m-0000000{i}", to=b, text="Hi")
    for peer in (ben, cy, dee):
        box.hub.disconnect(peer)
    box.hub.flush_changes()
    ben = box.connect()
    box.say(ben, "hello", token=ben_token)
    cy = box.connect()
    box.say(cy, "hello", token=cy_token)
    dee = box.connect()
    box.say(dee, "hello", token=dee_token)
    box.say(ben, "profile", status_text="Back at 6")  # after Cy's and Dee's welcomes
    box.hub.flush_changes()

    def told(peer: RecordingPeer) -> set[str]:
        return {u["id"] for u in peer.users()}

    # In one gathering period Ben, Cy and Dee arrived and Ben changed: each is
    # told who arrived or changed after its own welcome (and maybe itself).
    assert told(ana) - {ana_id} == {ben_id, cy_id, dee_id}
    assert told(ben) - {ben_id} == {cy_id, dee_id}
    assert told(cy) - {cy_id} == {dee_id, ben_id}
    assert told(dee) - {dee_id} == {ben_id}
    assert dee.users(ben_id)[-1]["status_text"] == "Back at 6"
    # And everyone's view is whole.
    for peer, me in ((ana, ana_id), (ben, ben_id), (cy, cy_id), (dee, dee_id)):
        assert view(peer) == {u: "online" for u in {ana_id, ben_id, cy_id, dee_id} - {me}}


def test_rooms_in_welcome_and_changes_leave_out_fields_as_a_new_room_has_them(box: Box) -> None:
    box.hub.coalesce = True
    ana, ana_id, _ = box.join("Ana")
    plain = box.room(ana, "Deck")
    described = box.room(ana, "Galley", description="Food", ephemeral=True)
    box.hub.flush_changes()
    ben, welcome = arrive(box, "Ben")
    rooms = {r["id"]: r for r in welcome["rooms"]}
    # Ben is in neither: their counts, not who is in them.
    assert set(rooms[plain]) == {"id", "name", "limit", "active", "owner", "count", "online"}
    assert (rooms[described]["description"], rooms[described]["ephemeral"]) == ("Food", True)
    assert "visibility" not in rooms[described] and "call" not in rooms[described]
    # The full room still answers its own requests.
    reply = box.say(ana, "room_update", room=plain, approval=True)[0]["room"]
    assert reply["visibility"] == "public" and reply["call"] is None and reply["approval"] is True
    box.hub.flush_changes()
    (whole,) = [r for r in ben.rooms(plain)]
    assert whole["approval"] is True and "moderators" not in whole


def test_who_is_in_a_room_goes_to_its_members_and_the_others_get_its_counts(box: Box) -> None:
    """A crowd joining rooms: the member ids reach only the rooms' members
    (the ids of who joined, to everyone online, were a fifth of the bytes of
    1000 phones arriving); the others get each room once, compactly, and then
    its counts if they watch the rooms."""
    box.hub.coalesce = True
    ana, ana_id, _ = box.join("Ana")
    eve, eve_id, _ = box.join("Eve")  # in no room: a bystander, watching the rooms
    bo, _, _ = box.join("Bo")  # another, not watching
    box.say(eve, "rooms", watch=True)
    room_id = box.room(ana, "Deck", limit=50)
    box.hub.flush_changes()
    (made,) = eve.rooms(room_id)
    assert made == {"id": room_id, "name": "Deck", "limit": 50, "active": True,
                    "owner": ana_id, "count": 1, "online": 1}
    assert bo.rooms(room_id) == [made]  # a new room goes whole to everyone
    crowd = [arrive(box, f"Crowd{i}") for i in range(20)]
    for peer, welcome in crowd:
        # A room one is not in comes without its members in `welcome` too.
        assert "members" not in {r["id"]: r for r in welcome["rooms"]}[room_id]
        box.say(peer, "room_join", room=room_id)
    eve_before, ana_before, bo_before = len(eve.sent), len(ana.sent), len(bo.sent)
    box.hub.flush_changes()
    crowd_ids = [w["you"]["id"] for _, w in crowd]
    # Bo does not watch the rooms: no counts of a room he is not in.
    assert [r for m in bo.sent[bo_before:] for r in m.get("rooms", [])] == []
    (to_eve,) = [r for m in eve.sent[eve_before:] for r in m.get("rooms", [])]
    assert to_eve == {"id": room_id, "online": 21, "count": 21}
    (to_ana,) = [r for m in ana.sent[ana_before:] for r in m.get("rooms", [])]
    assert to_ana == {"id": room_id, "online": 21, "count": 21, "joined": crowd_ids, "left": []}
    # No room entry Eve got names one of them.
    assert not any(uid in json.dumps(m.get("rooms", [])) for m in eve.sent for uid in crowd_ids)
    # A member's view is whole; a bystander has the counts right.
    assert rooms_view(ana)[room_id]["members"] == [ana_id, *crowd_ids]
    assert rooms_view(crowd[0][0])[room_id]["online"] == 21
    # A phone that shows the room (its info, before joining) asks for it whole.
    (whole,) = box.say(eve, "room_get", room=room_id)
    assert whole["type"] == "room" and whole["room"]["members"] == [ana_id, *crowd_ids]
    hidden = box.room(ana, "Secret", visibility="hidden")
    assert box.say(eve, "room_get", room=hidden)[0]["code"] == "unknown_room"


def test_who_joins_or_leaves_a_room_gets_it_whole_in_the_next_frame(box: Box) -> None:
    box.hub.coalesce = True
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    room_id = box.room(ana, "Deck")
    box.say(ben, "room_join", room=room_id)
    box.hub.flush_changes()
    assert ben.rooms(room_id)[-1]["members"] == [ana_id, ben_id]
    box.say(ana, "room_kick", room=room_id, user=ben_id)
    box.hub.flush_changes()
    # Out of it: the room whole, without its members (not a delta to apply
    # to a member list he no longer gets told of).
    out = ben.rooms(room_id)[-1]
    assert out["name"] == "Deck" and out["count"] == 1 and "members" not in out
    assert ana.last("changes")["rooms"] == [{"id": room_id, "online": 1, "count": 1,
                                             "joined": [], "left": [ben_id]}]


def test_people_lists_exactly_who_is_online_through_arrivals_departures_and_changes(
        box: Box) -> None:
    def names(answer: dict[str, Any]) -> dict[str, str]:
        return {u["name"]: u.get("status", "online") for u in answer["users"]}

    crowd = [arrive(box, f"P{i}") for i in range(12)]
    assert names(box.say(crowd[-1][0], "people")[0]) == {f"P{i}": "online" for i in range(11)}
    for peer, _ in crowd[:3]:  # the first three leave
        box.hub.disconnect(peer)
    box.say(crowd[5][0], "rename", name="Five")
    p7 = crowd[7][1]["you"]["id"]
    call = box.say(crowd[6][0], "call_invite", to=p7, media="audio")[0]["call"]
    box.say(crowd[7][0], "call_accept", call=call)
    late, _ = arrive(box, "Late")
    expected = {f"P{i}": "online" for i in range(3, 12)} | {"Five": "online"}
    del expected["P5"]
    expected["P6"] = expected["P7"] = "busy"
    assert names(box.say(late, "people")[0]) == expected
    # The last of them reconnects (a new connection, same device): not listed to itself.
    again = EncodingPeer()
    box.hub.connect(again)
    (back, *_) = box.say(again, "hello", token=crowd[-1][1]["token"])
    assert back["type"] == "welcome" and back["online"] == 10
    assert names(box.say(again, "people")[0]) == {
        **{k: v for k, v in expected.items() if k != "P11"}, "Late": "online"}


def test_phones_not_in_a_room_get_its_counts_at_most_once_a_second(box: Box) -> None:
    """While a crowd joins a room, its members are told who joined in every
    gathering period; the others only its counts, at most once a second (the
    room list's numbers, to who watches the rooms), and the latest ones in the
    end."""
    box.hub.coalesce = True
    ana, _, _ = box.join("Ana")
    eve, _, _ = box.join("Eve")
    box.say(eve, "rooms", watch=True)
    room_id = box.room(ana, "Deck", limit=50)
    box.hub.flush_changes()
    ana_before, eve_before = len(ana.sent), len(eve.sent)
    for i in range(10):  # each round: one arrives and joins (120 ms), then a frame
        peer, _ = arrive(box, f"Crowd{i}")
        box.say(peer, "room_join", room=room_id)
        box.hub.flush_changes()

    def entries(peer: RecordingPeer, since: int) -> list[dict[str, Any]]:
        return [r for m in peer.sent[since:] if m["type"] == "changes"
                for r in m["rooms"] if r["id"] == room_id]

    assert len(entries(ana, ana_before)) == 10
    assert all("joined" in r for r in entries(ana, ana_before))
    told = entries(eve, eve_before)
    assert 1 <= len(told) <= 2 and all(set(r) == {"id", "online", "count"} for r in told)
    # One more joins right after: Eve is owed that, and the server's loop
    # comes back for it.
    peer, _ = arrive(box, "Last")
    box.say(peer, "room_join", room=room_id)
    before = len(eve.sent)
    box.hub.flush_changes()
    assert entries(eve, before) == [] and box.hub.changes_due.is_set()
    box.clock.advance(1000)
    box.hub.flush_changes()
    assert entries(eve, before) == [{"id": room_id, "online": 12, "count": 12}]
    assert rooms_view(eve)[room_id]["count"] == 12
    after = len(eve.sent)
    box.clock.advance(1000)
    box.hub.flush_changes()
    assert len(eve.sent) == after and not box.hub.changes_due.is_set()


def test_a_contact_on_another_box_of_the_site_is_told_and_listed_as_one_here(box: Box) -> None:
    """People on other boxes (docs/protocol.md, "Several boxes") are in the
    answer to `people`, and a contact among them in `changes`."""
    ana, ana_id, _ = box.join("Ana")
    cy, _, _ = box.join("Cy")
    box.store.create_user("u_bob", "x" * 64, "Bob", box.clock())
    conv = "dm:" + ":".join(sorted([ana_id, "u_bob"]))
    stored, _ = box.store.append(conv, "m-fromb0b", "u_bob", "Bob", "Ahoy from B", now=box.clock())
    box.hub.site_applied([stored], {}, [], [], [])  # a message replicated from Bob's box
    assert ana.last("message")["text"] == "Ahoy from B"
    box.hub.attach_remote(RecordingPeer(), "u_bob", "Bob")
    assert ana.users("u_bob")[-1] == {"id": "u_bob", "name": "Bob"}
    assert cy.users("u_bob") == []
    assert "u_bob" in {u["id"] for u in box.say(cy, "people")[0]["users"]}
    assert box.say(cy, "people")[0]["online"] == 3


def test_people_in_a_call_are_told_of_each_other_while_it_lasts(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    call = box.say(ana, "call_invite", to=ben_id)[0]["call"]
    # Ringing: each is told the other is busy (they are not contacts).
    assert ana.users(ben_id)[-1]["status"] == "busy"
    assert ben.users(ana_id)[-1]["status"] == "busy"
    box.say(ben, "call_accept", call=call)
    box.hub.disconnect(ben)  # Ben's network drops: Ana sees him away
    assert ana.users(ben_id)[-1]["status"] == "offline"
    box.say(ana, "call_hangup", call=call)
    told = len(ana.users(ben_id))
    # The call is over: Ben coming back is not Ana's business any more.
    (back, *_) = box.say(box.connect(), "hello", token=ben.of("welcome")[0]["token"])
    assert back["type"] == "welcome"
    assert len(ana.users(ben_id)) == told


def test_rooms_answers_the_rooms_and_watching_tells_the_counts_of_the_others(
        box: Box) -> None:
    """`rooms` lists the rooms one may see with their counts now; with
    `watch: true` the counts of the rooms one is not in follow in `changes`
    until `watch: false` or the connection ends. Who does not watch gets a
    room one is not in only whole: when it is made, or more than who is in it
    changed (its settings, its call), or one left it."""
    box.hub.coalesce = True
    ana, ana_id, _ = box.join("Ana")
    eve, _, token = box.join("Eve")
    (eve_welcome,) = eve.of("welcome")
    room_id = box.room(ana, "Deck", limit=50)
    box.room(ana, "Secret", visibility="hidden")  # not Eve's to see
    box.hub.flush_changes()
    (snapshot,) = box.say(eve, "rooms", ref="r1")
    assert set(snapshot) == {"type", "rooms", "watch", "ref"} and snapshot["watch"] is False
    # The shape of `welcome.rooms`: the rooms one may see, as they are now.
    assert [r["id"] for r in snapshot["rooms"]] == [
        *[r["id"] for r in eve_welcome["rooms"]], room_id]
    assert {r["id"]: r for r in snapshot["rooms"]}[room_id] == {
        "id": room_id, "name": "Deck", "limit": 50, "active": True, "owner": ana_id,
        "count": 1, "online": 1}

    def joins(n: int, prefix: str) -> None:
        for i in range(n):
            peer, _ = arrive(box, f"{prefix}{i}")
            box.say(peer, "room_join", room=room_id)
        box.clock.advance(1000)
        box.hub.flush_changes()

    def told(since: int) -> list[dict[str, Any]]:
        return [r for m in eve.sent[since:] if m["type"] == "changes"
                for r in m["rooms"] if r["id"] == room_id]

    before = len(eve.sent)
    joins(3, "A")
    assert told(before) == []  # not watching: no counts
    (answer,) = box.say(eve, "rooms", watch=True)
    assert answer["watch"] is True and {r["id"]: r for r in answer["rooms"]}[room_id]["count"] == 4
    before = len(eve.sent)
    joins(3, "B")
    # The first frame after an answer has the rooms that changed whole.
    assert [(r["online"], r["count"]) for r in told(before)] == [(7, 7)]
    before = len(eve.sent)
    joins(1, "B2")
    assert told(before) == [{"id": room_id, "online": 8, "count": 8}]
    assert rooms_view(eve)[room_id]["count"] == 8
    assert box.say(eve, "rooms", watch=False, ref="r2") == [
        {"type": "rooms", "watch": False, "ref": "r2"}]
    before = len(eve.sent)
    joins(2, "C")
    assert told(before) == []
    # More than who is in it changed: the room whole (its counts then) to everyone.
    box.say(ana, "room_update", room=room_id, description="Crew")
    box.hub.flush_changes()
    (whole,) = told(before)
    assert whole["name"] == "Deck" and whole["description"] == "Crew" and whole["count"] == 10
    # A new connection does not watch until it asks.
    box.say(eve, "rooms", watch=True)
    again = RecordingPeer()
    box.hub.connect(again)
    box.say(again, "hello", token=token)
    before = len(again.sent)
    joins(1, "D")
    assert [r for m in again.sent[before:] if m["type"] == "changes" for r in m["rooms"]] == []
    assert box.hub._room_watchers == set()


def test_a_crowd_joining_rooms_costs_who_does_not_watch_only_each_new_room(box: Box) -> None:
    """Who gets which bytes while a crowd arrives and joins rooms, as the
    bench's phones do: a phone that watches nothing is sent each new room
    once, whole, and no counts of rooms it is not in; one that watches the
    rooms gets their counts at most once a second."""
    box.hub.coalesce = True
    idle, _, _ = box.join("Idle")
    watcher, _, _ = box.join("Watcher")
    box.say(watcher, "rooms", watch=True)
    idle_before, watcher_before = len(idle.sent), len(watcher.sent)
    made: list[str] = []
    for i in range(40):
        peer, _ = arrive(box, f"Crowd{i}")
        if i % 10 == 0:
            made.append(box.room(peer, f"Room{i}", limit=50))
        else:
            box.say(peer, "room_join", room=made[-1])
        box.clock.advance(200)
        box.hub.flush_changes()
    box.clock.advance(1000)
    box.hub.flush_changes()
    to_idle = [r for m in idle.sent[idle_before:] if m["type"] == "changes"
               for r in m["rooms"]]
    assert sorted(r["id"] for r in to_idle) == sorted(made)
    assert all(r["count"] == 1 and "name" in r for r in to_idle)
    to_watcher = [r for m in watcher.sent[watcher_before:] if m["type"] == "changes"
                  for r in m["rooms"]]
    counts = [r for r in to_watcher if "name" not in r]
    assert counts and all(set(r) == {"id", "online", "count"} for r in counts)
    assert len(counts) <= 2 * len(made) * 2  # at most once a second each (8 s)
    assert {r["id"]: r["count"] for r in rooms_view(watcher).values() if r["id"] in made} \
        == dict.fromkeys(made, 10)
    assert {r["id"]: r["count"] for r in rooms_view(idle).values() if r["id"] in made} \
        == dict.fromkeys(made, 1)


def test_who_was_answered_rooms_learns_of_a_leave_and_a_join_in_one_period(box: Box) -> None:
    """The answer to `rooms` is newer than the last `changes` frame: a room
    that changes after it back to how that frame told it (one leaves before
    the answer, comes back after) still reaches who asked, whole."""
    box.hub.coalesce = True
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    cy, _, _ = box.join("Cy")
    room_id = box.room(ana, "Deck")
    box.say(ben, "room_join", room=room_id)
    box.clock.advance(1000)
    box.hub.flush_changes()
    box.say(ben, "room_leave", room=room_id)
    (answer,) = box.say(cy, "rooms", watch=True)
    assert {r["id"]: r for r in answer["rooms"]}[room_id]["count"] == 1
    box.say(ben, "room_join", room=room_id)
    before, ana_before = len(cy.sent), len(ana.sent)
    box.hub.flush_changes()
    ((entry,),) = [m["rooms"] for m in cy.sent[before:] if m["type"] == "changes"]
    assert entry["name"] == "Deck" and entry["count"] == 2 and "members" not in entry
    # Ana's last frame told the room as it is: nothing of it for her.
    assert [r for m in ana.sent[ana_before:] for r in m.get("rooms", [])] == []
    assert rooms_view(cy)[room_id]["count"] == 2


def test_who_does_not_watch_gets_a_room_whole_when_it_becomes_visible_or_its_call_changes(
        box: Box) -> None:
    """A phone not in a room and not watching the rooms is told of it whole
    when it becomes its to see and when its call starts or ends, and of
    nothing when only who is in it changes, also past 50 members; a phone
    that watches gets only its counts then, never its members."""
    box.hub.coalesce = True
    ana, _, _ = box.join("Ana")
    eve, _, _ = box.join("Eve")
    watcher, _, _ = box.join("Watcher")
    box.say(watcher, "rooms", watch=True)
    room_id = box.room(ana, "Secret", visibility="hidden", limit=200)
    box.clock.advance(1000)
    box.hub.flush_changes()

    def told(peer: RecordingPeer, since: int) -> list[dict[str, Any]]:
        return [r for m in peer.sent[since:] if m["type"] == "changes"
                for r in m["rooms"] if r["id"] == room_id]

    assert room_id not in rooms_view(eve)
    # It becomes Eve's to see: whole, with its counts then, without its members.
    before = len(eve.sent)
    box.say(ana, "room_update", room=room_id, visibility="public")
    box.hub.flush_changes()
    (whole,) = told(eve, before)
    assert whole["name"] == "Secret" and whole["count"] == 1 and "members" not in whole
    # A call starts in it, then ends: whole each time, with the call then.
    before = len(eve.sent)
    box.say(ana, "call_join", room=room_id)
    box.clock.advance(1000)
    box.hub.flush_changes()
    (started,) = told(eve, before)
    assert started["name"] == "Secret" and started["call"]["participants"]
    assert "members" not in started
    before = len(eve.sent)
    box.say(ana, "call_hangup", call=started["call"]["id"])
    box.clock.advance(1000)
    box.hub.flush_changes()
    (ended,) = told(eve, before)
    # Whole, as a new room is: a room without a call leaves `call` out.
    assert ended["name"] == "Secret" and ended.get("call") is None
    # A crowd joins, past 50 members: nothing to Eve; counts only to the watcher.
    before, watcher_before = len(eve.sent), len(watcher.sent)
    for i in range(55):
        peer, _ = arrive(box, f"Crowd{i}")
        box.say(peer, "room_join", room=room_id)
        box.clock.advance(100)
        box.hub.flush_changes()
    box.clock.advance(1000)
    box.hub.flush_changes()
    assert told(eve, before) == []
    counts = told(watcher, watcher_before)
    assert counts and all(set(r) == {"id", "online", "count"} for r in counts)
    assert counts[-1]["count"] == 56
    assert rooms_view(watcher)[room_id]["count"] == 56
