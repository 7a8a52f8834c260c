"""docs/protocol.md against the code: every request example and field against
`appliance.protocol.SCHEMA`, and every message the box actually sends (a scenario
that produces each kind) against the document's examples, so the two cannot drift.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hubdriver import Box, RecordingPeer

from appliance import protocol
from appliance.hub import Hub, Replication
from appliance.store import Store, StoredMessage

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def json_objects(doc: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in the document's ```json blocks."""
    found: list[dict[str, Any]] = []
    for block in re.findall(r"```json\n(.*?)```", doc, flags=re.S):
        depth, start, in_string, escaped = 0, 0, False, False
        for i, ch in enumerate(block):
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "{":
                start = i if depth == 0 else start
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    found.append(json.loads(block[start:i + 1]))
    return found


def is_request(example: dict[str, Any]) -> bool:
    """A client's request: a type the box takes, and the box's own parser accepts it."""
    if example.get("type") not in protocol.SCHEMA:
        return False
    if set(example) - set(protocol.SCHEMA[example["type"]]) - {"type", "ref"}:
        return False  # fields only the box sends: the event of the same name
    try:
        protocol.parse_frame(json.dumps(example))
    except protocol.ProtocolError:
        return False
    return True


EXAMPLES = json_objects(DOC)
# "Several boxes" describes what only a site sends (docs/site.md); this scenario is one box.
SITE_EXAMPLES = json_objects("## Several boxes" + DOC.split("\n## Several boxes", 1)[1].split("\n## ", 1)[0])
REQUESTS = [e for e in EXAMPLES if is_request(e)]
EVENTS = [e for e in EXAMPLES if not is_request(e)]


def keys_by_type(messages: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Each type's fields (but `ref`), the messages inside `history` and
    `search_results` included."""
    keys: dict[str, set[str]] = defaultdict(set)
    for m in messages:
        keys[m["type"]] |= set(m) - {"ref", "...", "…"}  # elisions in examples
        inner = [x for x in m.get("messages", []) if isinstance(x, dict) and "type" in x]
        for key, fields in keys_by_type(inner).items():
            keys[key] |= fields
    return keys


def test_every_example_in_the_document_is_json_with_a_type() -> None:
    assert len(EXAMPLES) > 50
    assert all(isinstance(e.get("type"), str) for e in EXAMPLES)


@pytest.mark.parametrize("type_", sorted(protocol.SCHEMA))
def test_every_request_and_each_of_its_fields_has_an_example_the_box_accepts(type_: str) -> None:
    shown = keys_by_type(REQUESTS).get(type_)
    assert shown is not None, f"no example of {type_!r} that the box's parser accepts"
    missing = set(protocol.SCHEMA[type_]) - shown
    assert not missing, f"{type_}: fields with no example: {sorted(missing)}"


# -- what the box sends ---------------------------------------------------------


class NumberingSite(Replication):
    """A box of a site as its phones see it (docs/protocol.md, "Several boxes"):
    its messages carry positions and its welcome its id. The replication itself
    is tested in tests/site/."""

    box = "3f2a9c01"

    def __init__(self) -> None:
        self.positions_of: dict[tuple[str, int], str] = {}

    def message_stored(self, message: StoredMessage) -> str | None:
        at = f"{self.box}:{len(self.positions_of) + 1}"
        self.positions_of[(message.conv, message.seq)] = at
        return at

    def positions(self, conv: str, wires: list[dict[str, Any]]) -> None:
        for wire in wires:
            at = self.positions_of.get((conv, wire["seq"]))
            if at is not None:
                wire["at"] = at


def everything_the_box_sends() -> list[dict[str, Any]]:
    """Drive a real hub through one of everything and keep every message it sent."""
    box = Box(Store(":memory:"))
    box.hub = Hub(box.store, clock=box.clock, default_room="Everyone")
    box.hub.site = NumberingSite()
    seen: list[RecordingPeer] = []

    def join(name: str) -> tuple[RecordingPeer, str, str]:
        peer, user_id, token = box.join(name)
        seen.append(peer)
        return peer, user_id, token

    ana, ana_id, _ = join("Ana")
    ben, ben_id, ben_token = join("Ben")
    cy, cy_id, _ = join("Cy")
    say = box.say
    say(ana, "ping", ref="p1")
    say(ana, "ice")
    say(ana, "people")
    say(ana, "people", watch=True)
    say(ana, "nonsense", ref="e1")
    room = box.room(ana, "Deck")
    say(cy, "rooms")
    say(cy, "rooms", watch=True)
    say(ben, "room_join", room=room)
    say(ana, "send", id="m-00000001", room=room, text="Dinner at 7")
    say(ben, "send", id="m-00000002", room=room, text="Yes", reply_to=1)
    say(ana, "send", id="m-00000003", to=ben_id, text="See you")
    say(ana, "react", conv=f"room:{room}", seq=1, emoji="👍")
    say(ana, "search", conv=f"room:{room}", query="dinner")
    say(ben, "sync", conv=f"room:{room}", before=3)
    say(ana, "sync", conv=f"room:{room}", after=0, limit=1)
    say(ana, "typing", room=room)
    say(ana, "read", conv=f"room:{room}", seq=2)
    say(ana, "profile", colour="#1e88e5", status_text="On watch")
    say(ana, "rename", name="Anna")
    say(ana, "people", watch=False)
    say(cy, "rooms", watch=False)
    say(cy, "room_get", room=room)
    # Private rooms: invitations, links, approvals.
    hidden = box.room(ana, "Bridge", visibility="hidden", approval=True)
    say(ana, "room_invite", room=hidden, user=ben_id)
    say(ana, "room_invite_link", room=hidden)
    say(ana, "room_role", room=room, user=ben_id, role="moderator")
    guarded = box.room(ana, "Galley", approval=True)
    say(cy, "room_join", room=guarded)
    say(ana, "room_deny", room=guarded, user=cy_id)
    say(cy, "room_join", room=guarded)
    say(ana, "room_approve", room=guarded, user=cy_id)
    say(ana, "room_kick", room=guarded, user=cy_id)
    say(ana, "room_update", room=guarded, name="Galley 2")
    say(ana, "room_delete", room=guarded)
    box.hub.delete_message(f"room:{room}", 2)
    # A one-to-one call: ringing, accepted, signals, a drop and a resume, hang-up.
    say(ana, "call_invite", to=ben_id, media="video")
    call = ana.last("call_ringing")["call"]
    say(ben, "call_accept", call=call)
    say(ana, "signal", call=call, to=ben_id, data={"description": {"type": "offer", "sdp": "v=0"}})
    box.hub.disconnect(ben)
    ben2 = box.connect()
    seen.append(ben2)
    say(ben2, "hello", token=ben_token, since={})
    say(ana, "call_hangup", call=call)
    # Unanswered, then a room call of three.
    say(ana, "call_invite", to=cy_id)
    box.clock.advance(60_000)
    box.hub.tick()
    for peer in (ana, ben2, cy):
        say(peer, "call_join", room=room) if peer is not cy else None
    say(cy, "room_join", room=room)
    say(cy, "call_join", room=room, media="audio")
    say(cy, "call_hangup", call=cy.last("call_joined")["call"])
    # A second device replaces the first.
    cy2 = box.connect()
    seen.append(cy2)
    say(cy2, "hello", token=box.store.user(cy_id) and _token_of(cy), since={})
    return [m for peer in seen for m in peer.sent]


def _token_of(peer: RecordingPeer) -> str:
    return str(peer.of("welcome")[0]["token"])


SENT = everything_the_box_sends()


def types_in_the_source() -> set[str]:
    root = Path(__file__).resolve().parents[2] / "appliance"
    found: set[str] = set()
    for name in ("protocol.py", "signaling.py", "hub.py", "rooms.py"):
        found |= set(re.findall(r'"type": "([a-z_]+)"', (root / name).read_text()))
    # protocol.room_message's kinds (`room_update` is only a request: room
    # changes reach the others in `changes` frames).
    return found | {"room", "room_pending", "room_invited"}


def test_the_scenario_makes_the_box_send_every_kind_of_message() -> None:
    assert types_in_the_source() - set(keys_by_type(SENT)) == set()


@pytest.mark.parametrize("type_", sorted(keys_by_type(SENT)))
def test_every_message_the_box_sends_is_documented_with_exactly_its_fields(type_: str) -> None:
    documented = keys_by_type(EVENTS).get(type_)
    assert documented is not None, f"docs/protocol.md has no example of {type_!r}"
    sent = keys_by_type(SENT)[type_]
    assert sent - documented == set(), f"{type_}: fields the box sends, undocumented"
    site_only = keys_by_type(SITE_EXAMPLES).get(type_, set()) - keys_by_type(
        [e for e in EVENTS if e not in SITE_EXAMPLES]).get(type_, set())
    assert documented - site_only - sent == set(), \
        f"{type_}: documented fields the box never sends"


def test_errors_answer_their_request_with_its_ref_whatever_went_wrong() -> None:
    box = Box(Store(":memory:"))
    peer, _, _ = box.join("Ana")
    for frame in ({"type": "nonsense"}, {"type": "send", "id": "short", "room": "r_1", "text": "x"},
                  {"type": "send", "id": "m-00000001", "text": "x"}, {"type": "sync"},
                  {"type": "room_join", "room": "r_none"}, {"type": "hello", "name": "Again"}):
        reply = box.say(peer, frame.pop("type"), ref="r-42", **frame)
        assert [m["ref"] for m in reply if m["type"] == "error"] == ["r-42"], (frame, reply)


def test_the_error_table_lists_exactly_the_codes_the_box_uses() -> None:
    root = Path(__file__).resolve().parents[2] / "appliance"
    used: set[str] = set()
    for source in root.rglob("*.py"):
        text = source.read_text()
        used |= set(re.findall(r'ProtocolError\(\s*"([a-z_]+)"', text))
        used |= set(re.findall(r'protocol\.error\(\s*"([a-z_]+)"', text))
    table = DOC.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    listed = {code for line in table.splitlines() if line.startswith("| `")
              for code in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    assert used - listed == set(), "codes the box sends that the table does not list"
    assert listed - used == set(), "codes in the table that the box never sends"
