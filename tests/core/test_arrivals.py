"""A crowd arriving at once costs O(N) frames and O(1) queries per arrival.

The box gathers presence and room changes (`hub.coalesce`, as the server
runs it) and sends each phone one `changes` frame per gathering period.
"""

from __future__ import annotations

import json
from typing import Any

from hubdriver import Box, RecordingPeer


def view(peer: RecordingPeer) -> dict[str, str]:
    """Who is online as a phone sees it: its `welcome`, then every `changes` frame."""
    online: dict[str, str] = {}
    me = ""
    for m in peer.sent:
        if m["type"] == "welcome":
            me = m["you"]["id"]
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
    """The rooms as a phone sees them: `welcome`, replies, then `changes`."""
    rooms = {r["id"]: r for m in peer.of("welcome") for r in m["rooms"]}
    rooms.update({r["id"]: r for m in peer.of("room") for r in [m["room"]]})
    rooms.update({r["id"]: r for r in peer.rooms()})
    return rooms


def test_fifty_arrivals_cost_each_phone_a_few_frames_and_presence_stays_right(box: Box) -> None:
    box.hub.coalesce = True
    early = [box.join(f"Early{i}") for i in range(5)]
    room_id = box.room(early[0][0], "Deck", limit=200)
    for peer, _, _ in early[1:]:
        box.say(peer, "room_join", room=room_id)
    box.hub.flush_changes()
    seen_before = [len(peer.sent) for peer, _, _ in early]
    crowd = []
    for i in range(50):
        peer, uid, _ = box.join(f"Crowd{i}")
        box.say(peer, "room_join", room=room_id)
        crowd.append((peer, uid))
        if i % 10 == 9:  # the server sends the gathered changes every 0.2 s
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
    for peer, uid in [(p, u) for p, u, _ in early] + crowd:
        assert view(peer) == {u: "online" for u in everyone - {uid}}
        assert rooms_view(peer)[room_id]["online"] == 55
        assert len(rooms_view(peer)[room_id]["members"]) == 55
    # Ten leave and two of them come back within one gathering period: the
    # others see the state at the end of it.
    leaving = crowd[:10]
    for peer, _ in leaving:
        box.hub.disconnect(peer)
    back = [box.say(box.connect(), "hello", name=f"Crowd{i}") for i in range(2)]
    assert all(reply[0]["type"] == "welcome" for reply in back)
    back_ids = {reply[0]["you"]["id"] for reply in back}
    before = len(early[0][0].sent)
    box.hub.flush_changes()
    (frame,) = early[0][0].sent[before:]
    assert frame["type"] == "changes"
    statuses = {u["id"]: u.get("status", "online") for u in frame["users"]}
    assert statuses == {**{uid: "offline" for _, uid in leaving}, **{u: "online" for u in back_ids}}
    assert [r["online"] for r in frame["rooms"]] == [45]
    # Only what changed is said (the online count; they are still members),
    # not the room's whole member list again.
    (entry,) = frame["rooms"]
    assert entry == {"id": room_id, "online": 45, "count": 55, "joined": [], "left": []}


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
    # Nothing set: id and name only (no status when online, no null colour,
    # empty status line or null picture).
    assert sorted(welcome["users"], key=lambda u: u["name"]) == [
        {"id": ana_id, "name": "Ana"},
        {"id": ben_id, "name": "Ben"}]
    assert ana.users(welcome["you"]["id"])[-1] == {
        "id": welcome["you"]["id"], "name": "Cy"}
    # Ana sets a colour and a status line, then Ana and Ben start a call: the
    # next welcome (joined from kept entries) and the changes frames say so.
    box.say(ana, "profile", colour="#1e88e5", status_text="On watch")
    assert cy.users(ana_id)[-1] == {"id": ana_id, "name": "Ana",
                                    "colour": "#1e88e5", "status_text": "On watch"}
    call = box.say(ana, "call_invite", to=ben_id, media="audio")[0]["call"]
    box.say(ben, "call_accept", call=call)
    assert cy.users(ben_id)[-1]["status"] == "busy"
    _, later = arrive(box, "Dee")
    assert sorted(later["users"], key=lambda u: u["name"]) == [
        {"id": ana_id, "name": "Ana", "status": "busy", "colour": "#1e88e5",
         "status_text": "On watch"},
        {"id": ben_id, "name": "Ben", "status": "busy"},
        {"id": welcome["you"]["id"], "name": "Cy"}]
    # The call ends and Ben renames himself: the next welcome has it.
    box.say(ben, "call_hangup", call=call)
    box.say(ben, "rename", name="Benny")
    _, last = arrive(box, "Eve")
    assert {u["name"]: u.get("status", "online") for u in last["users"]} == {
        "Ana": "online", "Benny": "online", "Cy": "online", "Dee": "online"}


def test_a_phone_welcomed_since_the_last_frame_is_told_only_what_changed_after(box: Box) -> None:
    box.hub.coalesce = True
    ana, ana_id, _ = box.join("Ana")
    box.hub.flush_changes()
    ben, ben_id, _ = box.join("Ben")
    cy, cy_id, _ = box.join("Cy")
    dee, dee_id, _ = box.join("Dee")
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
    its counts."""
    box.hub.coalesce = True
    ana, ana_id, _ = box.join("Ana")
    eve, eve_id, _ = box.join("Eve")  # in no room: a bystander
    room_id = box.room(ana, "Deck", limit=50)
    box.hub.flush_changes()
    (made,) = eve.rooms(room_id)
    assert made == {"id": room_id, "name": "Deck", "limit": 50, "active": True,
                    "owner": ana_id, "count": 1, "online": 1}
    crowd = [arrive(box, f"Crowd{i}") for i in range(20)]
    for peer, welcome in crowd:
        # A room one is not in comes without its members in `welcome` too.
        assert "members" not in {r["id"]: r for r in welcome["rooms"]}[room_id]
        box.say(peer, "room_join", room=room_id)
    eve_before, ana_before = len(eve.sent), len(ana.sent)
    box.hub.flush_changes()
    crowd_ids = [w["you"]["id"] for _, w in crowd]
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


def test_welcomes_list_exactly_who_is_online_through_arrivals_departures_and_changes(
        box: Box) -> None:
    """The welcome's people are kept joined and updated from who changed: each
    welcome still lists exactly the others online, as they are."""
    def names(welcome: dict[str, Any]) -> dict[str, str]:
        return {u["name"]: u.get("status", "online") for u in welcome["users"]}

    crowd = [arrive(box, f"P{i}") for i in range(12)]
    assert names(crowd[-1][1]) == {f"P{i}": "online" for i in range(11)}
    for peer, _ in crowd[:3]:  # the first three leave
        box.hub.disconnect(peer)
    box.say(crowd[5][0], "rename", name="Five")
    p7 = crowd[7][1]["you"]["id"]
    call = box.say(crowd[6][0], "call_invite", to=p7, media="audio")[0]["call"]
    box.say(crowd[7][0], "call_accept", call=call)
    _, welcome = arrive(box, "Late")
    expected = {f"P{i}": "online" for i in range(3, 12)} | {"Five": "online"}
    del expected["P5"]
    expected["P6"] = expected["P7"] = "busy"
    assert names(welcome) == expected
    # The last of them reconnects (a new connection, same device): not listed to itself.
    again = EncodingPeer()
    box.hub.connect(again)
    (back, *_) = box.say(again, "hello", token=crowd[-1][1]["token"])
    assert back["type"] == "welcome" and "P11" not in names(back)
    assert names(back) == {**{k: v for k, v in expected.items() if k != "P11"}, "Late": "online"}


def test_phones_not_in_a_room_get_its_counts_at_most_once_a_second(box: Box) -> None:
    """While a crowd joins a room, its members are told who joined in every
    gathering period; the others only its counts, at most once a second (the
    room list's numbers), and the latest ones in the end."""
    box.hub.coalesce = True
    ana, _, _ = box.join("Ana")
    eve, _, _ = box.join("Eve")
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
