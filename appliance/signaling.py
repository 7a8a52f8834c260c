"""Call state: one-to-one calls and room calls (a mesh of up to four).

Pure logic. Every operation returns the events to deliver as
`(user_id, message)` pairs; the hub sends them. Times are milliseconds.
A participant whose connection drops is "away" for `grace_ms`: if they come
back in time the call goes on (the phones restart ICE), otherwise they leave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .protocol import MAX_CALL_MEMBERS, REJECT_REASONS, ProtocolError

Event = tuple[str, dict[str, Any]]

RING_TIMEOUT_MS = 45_000
GRACE_MS = 20_000


@dataclass
class Call:
    id: str
    media: str
    room: str | None
    started: int
    caller: str | None = None
    callee: str | None = None
    ringing_until: int | None = None  # set while a one-to-one call rings
    participants: list[str] = field(default_factory=list)
    away: dict[str, int] = field(default_factory=dict)  # user -> deadline

    @property
    def ringing(self) -> bool:
        return self.ringing_until is not None


class Calls:
    def __init__(
        self,
        new_id: Callable[[], str],
        ring_timeout_ms: int = RING_TIMEOUT_MS,
        grace_ms: int = GRACE_MS,
    ) -> None:
        self._new_id = new_id
        self.ring_timeout_ms = ring_timeout_ms
        self.grace_ms = grace_ms
        self._calls: dict[str, Call] = {}
        self._room_calls: dict[str, str] = {}

    # -- queries -------------------------------------------------------------

    def call_of(self, user_id: str) -> Call | None:
        """The call the user is in or is ringing for (as caller or callee)."""
        for call in self._calls.values():
            if user_id in call.participants or (call.ringing and user_id == call.callee):
                return call
        return None

    def is_busy(self, user_id: str) -> bool:
        return self.call_of(user_id) is not None

    def busy_users(self) -> set[str]:
        users: set[str] = set()
        for call in self._calls.values():
            users.update(call.participants)
            if call.ringing and call.callee:
                users.add(call.callee)
        return users

    def get(self, call_id: str) -> Call:
        call = self._calls.get(call_id)
        if call is None:
            raise ProtocolError("unknown_call", "That call is over.")
        return call

    def room_call(self, room_id: str) -> Call | None:
        call_id = self._room_calls.get(room_id)
        return self._calls.get(call_id) if call_id else None

    def room_call_wire(self, room_id: str) -> dict[str, Any] | None:
        call = self.room_call(room_id)
        if call is None:
            return None
        return {"id": call.id, "participants": list(call.participants), "media": call.media}

    def active(self) -> list[Call]:
        return list(self._calls.values())

    # -- one-to-one ----------------------------------------------------------

    def invite(self, caller: str, callee: str, media: str, now: int) -> tuple[Call, list[Event]]:
        """Ring `callee`. The hub has checked that both exist and the callee is online."""
        if caller == callee:
            raise ProtocolError("call_self", "You cannot call yourself.")
        if self.is_busy(caller):
            raise ProtocolError("user_busy", "You are already in a call; hang up first.")
        if self.is_busy(callee):
            raise ProtocolError("user_busy", "They are in another call. Try again later.")
        call = Call(
            id=self._new_id(),
            media=media,
            room=None,
            started=now,
            caller=caller,
            callee=callee,
            ringing_until=now + self.ring_timeout_ms,
            participants=[caller],
        )
        self._calls[call.id] = call
        return call, [
            (caller, {"type": "call_ringing", "call": call.id, "to": callee, "media": media}),
            (
                callee,
                {"type": "call_incoming", "call": call.id, "from": caller, "media": media,
                 "room": None},
            ),
        ]

    def accept(self, user: str, call_id: str) -> list[Event]:
        call = self.get(call_id)
        if call.room is not None:
            raise ProtocolError("bad_request", "Join a room call with 'call_join'.")
        if not call.ringing or call.callee != user:
            raise ProtocolError("not_in_call", "This call is not ringing for you.")
        call.ringing_until = None
        call.participants.append(user)
        return [(p, {"type": "call_accepted", "call": call.id, "by": user})
                for p in call.participants]

    def reject(self, user: str, call_id: str, why: str = "declined") -> list[Event]:
        """The callee turns the call down; `why` is one of protocol.REJECT_WHYS."""
        call = self.get(call_id)
        if not call.ringing or call.callee != user:
            raise ProtocolError("not_in_call", "This call is not ringing for you.")
        return self._end(call, REJECT_REASONS[why], user)

    def cancel(self, user: str, call_id: str) -> list[Event]:
        call = self.get(call_id)
        if call.caller != user or not call.ringing:
            raise ProtocolError("not_in_call", "Only the caller can cancel a ringing call.")
        return self._end(call, "cancelled", user)

    # -- room calls ----------------------------------------------------------

    def join_room(
        self, user: str, room_id: str, media: str, members: list[str], now: int
    ) -> tuple[Call, list[Event]]:
        """Join (or start) the call of a room. `members` are the room's other online members."""
        current = self.call_of(user)
        call = self.room_call(room_id)
        if current is not None and current is not call:
            raise ProtocolError("user_busy", "You are already in a call; hang up first.")
        events: list[Event] = []
        if call is None:
            call = Call(id=self._new_id(), media=media, room=room_id, started=now, caller=user)
            self._calls[call.id] = call
            self._room_calls[room_id] = call.id
            for m in members:
                if m != user and not self.is_busy(m):
                    events.append((m, {"type": "call_incoming", "call": call.id, "from": user,
                                       "media": media, "room": room_id}))
        if user in call.participants:
            call.away.pop(user, None)
        else:
            if len(call.participants) >= MAX_CALL_MEMBERS:
                raise ProtocolError(
                    "call_full", f"Room calls have at most {MAX_CALL_MEMBERS} people."
                )
            for p in call.participants:
                events.append((p, {"type": "call_peer_joined", "call": call.id, "user": user}))
            call.participants.append(user)
        peers = [p for p in call.participants if p != user]
        events.append((user, {"type": "call_joined", "call": call.id, "room": room_id,
                              "peers": peers, "media": call.media}))
        return call, events

    # -- both kinds ----------------------------------------------------------

    def hangup(self, user: str, call_id: str) -> list[Event]:
        call = self.get(call_id)
        if user not in call.participants and user != call.callee:
            raise ProtocolError("not_in_call", "You are not in this call.")
        if call.ringing:
            return self._end(call, "cancelled" if user == call.caller else "rejected", user)
        return self._leave(call, user, "hangup")

    def check_signal(self, user: str, call_id: str, to: str) -> None:
        """Refuse signaling unless both ends are participants of the call."""
        call = self.get(call_id)
        if user not in call.participants or to not in call.participants or user == to:
            raise ProtocolError("not_in_call", "Signaling is only relayed within a call.")

    def user_gone(self, user: str, now: int) -> list[Event]:
        """The user's connection dropped: keep their place for the grace period."""
        call = self.call_of(user)
        if call is None:
            return []
        if call.ringing and user == call.callee:
            # Nobody is there to answer; the caller keeps hearing it ring until the timeout.
            return []
        call.away[user] = now + self.grace_ms
        return []

    def user_back(self, user: str) -> list[Event]:
        """The user reconnected in time: tell their client which call to resume."""
        call = self.call_of(user)
        if call is None:
            return []
        call.away.pop(user, None)
        if call.ringing and user == call.callee and call.caller:
            return [(user, {"type": "call_incoming", "call": call.id, "from": call.caller,
                            "media": call.media, "room": None})]
        peers = [p for p in call.participants if p != user]
        return [(user, {"type": "call_resume", "call": call.id, "peers": peers,
                        "media": call.media, "room": call.room, "ringing": call.ringing})]

    def user_removed(self, user: str) -> list[Event]:
        """The user is gone for good (left a room, removed by a moderator)."""
        call = self.call_of(user)
        if call is None:
            return []
        if call.ringing:
            return self._end(call, "disconnected", user)
        return self._leave(call, user, "disconnected")

    def leave_room_call(self, user: str, room_id: str) -> list[Event]:
        call = self.room_call(room_id)
        if call is None or user not in call.participants:
            return []
        return self._leave(call, user, "hangup")

    def yield_room_call(self, room_id: str, winner: str) -> list[Event]:
        """Another box of the site holds a call of the same room that came first (see
        `appliance.site.link.first_room_call`): end this one, and tell its people
        the call to join instead (the app joins it by itself)."""
        call = self.room_call(room_id)
        if call is None or call.id == winner:
            return []
        audience = list(call.participants)
        self._forget(call)
        return [(u, {"type": "call_ended", "call": call.id, "reason": "merged", "by": None,
                     "room": room_id, "join": winner}) for u in audience]

    def end_room_call(self, room_id: str) -> list[Event]:
        call = self.room_call(room_id)
        return self._end(call, "hangup", None) if call else []

    def tick(self, now: int) -> list[Event]:
        """Expire unanswered rings and participants who did not come back."""
        events: list[Event] = []
        for call in list(self._calls.values()):
            if call.ringing_until is not None and now >= call.ringing_until:
                events += self._end(call, "no_answer", None)
                continue
            for user, deadline in list(call.away.items()):
                if now >= deadline and call.id in self._calls:
                    events += self._leave(call, user, "disconnected")
        return events

    # -- internals -----------------------------------------------------------

    def _leave(self, call: Call, user: str, reason: str) -> list[Event]:
        if user in call.participants:
            call.participants.remove(user)
        call.away.pop(user, None)
        if call.room is None:
            # A one-to-one call is over when either side leaves.
            events = self._end(call, reason, user)
            return [e for e in events if e[0] != user] + [
                (user, {"type": "call_ended", "call": call.id, "reason": reason, "by": user})
            ]
        events = [(p, {"type": "call_peer_left", "call": call.id, "user": user})
                  for p in call.participants]
        events.append((user, {"type": "call_ended", "call": call.id, "reason": reason,
                              "by": user}))
        if not call.participants:
            self._forget(call)
        return events

    def _end(self, call: Call, reason: str, by: str | None) -> list[Event]:
        audience = list(call.participants)
        if call.ringing and call.callee and call.callee not in audience:
            audience.append(call.callee)
        self._forget(call)
        return [(u, {"type": "call_ended", "call": call.id, "reason": reason, "by": by})
                for u in audience]

    def _forget(self, call: Call) -> None:
        self._calls.pop(call.id, None)
        if call.room is not None and self._room_calls.get(call.room) == call.id:
            del self._room_calls[call.room]
