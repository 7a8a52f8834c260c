"""A hub on an in-memory SQLite database with recording peers and a settable clock."""

from __future__ import annotations

import json
from typing import Any

from appliance.hub import Hub
from appliance.store import Store


class RecordingPeer:
    """A connection that records what the hub sends it."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    def send(self, message: dict[str, Any]) -> None:
        # Round-trip through JSON like the real edge does.
        self.sent.append(json.loads(json.dumps(message)))

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == type_]

    def last(self, type_: str) -> dict[str, Any]:
        found = self.of(type_)
        assert found, f"nothing of type {type_}; got {[m['type'] for m in self.sent]}"
        return found[-1]

    def users(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """The people in the `changes` frames received, in order (one user's, with `user_id`)."""
        return [u for m in self.of("changes") for u in m["users"]
                if user_id is None or u["id"] == user_id]

    def rooms(self, room_id: str | None = None) -> list[dict[str, Any]]:
        """The rooms in the `changes` frames received, in order (one room's, with
        `room_id`), each as the phone then knows it: an entry that says only
        the counts (and who joined and left) is applied to what the phone knew
        before."""
        known: dict[str, dict[str, Any]] = {}
        out = []
        for m in self.sent:
            if m["type"] in ("welcome", "rooms"):  # `rooms`: the answer
                known.update({r["id"]: r for r in m.get("rooms", [])})
            elif m["type"] in ("room", "room_pending", "room_invited"):
                known[m["room"]["id"]] = m["room"]
            elif m["type"] == "changes":
                for r in m["rooms"]:
                    if "name" not in r:  # what changed: counts (and, to members, who)
                        before = {**known[r["id"]], "online": r["online"], "count": r["count"]}
                        if "joined" in r:
                            members = [u for u in before["members"] if u not in r["left"]]
                            members += [u for u in r["joined"] if u not in members]
                            before["members"] = members
                        r = before
                    known[r["id"]] = r
                    if room_id is None or r["id"] == room_id:
                        out.append(r)
        return out

    def take(self) -> list[dict[str, Any]]:
        out, self.sent = self.sent, []
        return out


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


class Box:
    """Test driver: a hub and helpers to connect users to it."""

    def __init__(self, store: Store) -> None:
        self.clock = Clock()
        self.store = store
        self.hub = Hub(store, clock=self.clock)

    def connect(self, address: str = "") -> RecordingPeer:
        peer = RecordingPeer()
        self.hub.connect(peer, address)
        return peer

    def say(self, peer: RecordingPeer, type_: str, **fields: Any) -> list[dict[str, Any]]:
        """Send a request and return what this peer received in reply."""
        before = len(peer.sent)
        self.clock.advance(60)  # a person's pace, below the rate limit
        self.hub.handle(peer, json.dumps({"type": type_, **fields}))
        return peer.sent[before:]

    def join(self, name: str) -> tuple[RecordingPeer, str, str]:
        peer = self.connect()
        welcome = self.say(peer, "hello", name=name)[0]
        assert welcome["type"] == "welcome", welcome
        return peer, welcome["you"]["id"], welcome["token"]

    def room(self, owner: RecordingPeer, name: str = "Deck", **fields: Any) -> str:
        reply = self.say(owner, "room_create", name=name, **fields)[0]
        assert reply["type"] == "room", reply
        return str(reply["room"]["id"])
