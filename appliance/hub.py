"""The hub: takes validated requests from connections and routes the results.

It owns presence, rooms, calls and the message store, and serialises every
change behind one lock, so sequence numbers, membership and call state never
disagree. It never touches a socket: connections are `Peer` objects whose
`send` only queues.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Set
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

from . import protocol
from .presence import Peer, Presence
from .protocol import ProtocolError, Request
from .rooms import (
    DEFAULT_LIMIT,
    AddMember,
    Announce,
    DeleteRoom,
    Effect,
    EndCall,
    Gone,
    LeaveCall,
    RemoveMember,
    Reply,
    Room,
    Rooms,
    SaveRoom,
    SendHistory,
    SetInvite,
    SetRole,
    Tell,
    TellRoom,
    Unlist,
)
from .signaling import Calls, Event
from .store import Conv, NewMessage, Store, StoredMessage, UserRecord

log = logging.getLogger(__name__)

HISTORY_ON_JOIN = 100
# How long presence and room changes are gathered before one `changes` frame
# per phone carries them all (when the server runs `changes_loop`).
CHANGES_EVERY_S = 0.2
# How often, at most, phones not in a room are told its new counts when
# nothing else of it changed (while a crowd joins rooms, every room's counts
# change in every gathering period, times every phone).
COUNTS_EVERY_MS = 1000
# Room fields that `welcome` and `changes` leave out when they are so
# (docs/protocol.md, "Rooms").
ROOM_UNSET: dict[str, Any] = {
    "visibility": "public", "approval": False, "moderators": [], "invited": [],
    "requests": [], "description": "", "ephemeral": False, "call": None,
}
DAY_MS = 24 * 3600 * 1000
# At most this many people in an answer to `people` (the first by name).
PEOPLE_LIMIT = 1000
# A room with more members than this comes in `welcome` and `changes` without
# `members`, to its members too (with `member: true`): `room_get` says who.
LISTED_MEMBERS = 50
# What a room's owner may change with `room_update`.
ROOM_SETTINGS = ("name", "description", "limit", "active", "visibility", "approval")


def _now_ms() -> int:
    return int(time.time() * 1000)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class PendingMessage:
    """A message waiting for the next group commit, and who waits for its ack."""

    message: NewMessage
    waiters: list[tuple[Peer, Request]]


@dataclass
class PendingHello:
    """A new identity waiting for the commit that stores it; its `welcome`
    (with the device token) goes out only after."""

    conn: Connection
    req: Request
    user_id: str
    token: str
    name: str
    record: UserRecord


@dataclass
class RateLimit:
    """A token bucket per connection: `rate` frames a second, bursts of `burst`."""

    rate: float = 20.0
    burst: float = 60.0
    strikes_allowed: int = 100

    def new_state(self, now: int) -> list[float]:
        return [self.burst, float(now), 0.0]


@dataclass
class Connection:
    peer: Peer
    bucket: list[float]  # tokens, last refill (ms), strikes
    address: str = ""  # the client's IP address, "" when unknown
    user_id: str | None = None


def _limited_address(address: str) -> bool:
    """Whether new identities from this address count against the hourly limit.

    Loopback is exempt: only programs on the box itself connect from it.
    """
    try:
        return not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# (user id, the phone's address) -> the ICE servers it gets: a box beside an existing
# network names the address on the side the phone is on.
IceProvider = Callable[[str, str], list[dict[str, Any]]]


def _room_delta(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any] | None:
    """What changed from `before` to `after` when only who is in the room and
    how many are online did: `{id, online, count, joined, left}`; `{}` when
    nothing did; None when more changed (send the whole room)."""
    if before is None or set(before) != set(after):
        return None
    if any(before[k] != after[k] for k in after if k not in ("members", "count", "online")):
        return None
    old, new = set(before["members"]), set(after["members"])
    joined = [m for m in after["members"] if m not in old]
    left = [m for m in before["members"] if m not in new]
    if not joined and not left and before["online"] == after["online"]:
        return {}
    return {"id": after["id"], "online": after["online"], "count": after["count"],
            "joined": joined, "left": left}


def _for_others(entry: dict[str, Any]) -> dict[str, Any]:
    """A room entry (whole or delta) as a phone that is not a member gets it:
    without who is in it (its `count` says how many)."""
    return {k: v for k, v in entry.items() if k not in ("members", "joined", "left")}


def _encode(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class Replication:
    """What the hub tells the other boxes of its site, and asks them.

    This one is a box alone: nothing happens. A box in a site has
    `appliance.site.link.SiteLink` (docs/site.md); all calls come under the
    hub's lock.
    """

    box: str | None = None

    def message_stored(self, message: StoredMessage) -> str | None:
        """A new message from a phone here; returns its site-wide position."""
        return None

    def positions(self, conv: str, wires: list[dict[str, Any]]) -> None:
        """Add the site-wide position (`at`) to these messages of `conv`."""

    def missed(self, conv: str, seen: dict[str, int]) -> tuple[list[StoredMessage], bool]:
        """What a phone that has seen these positions has not seen of `conv`."""
        return [], False

    def user_changed(self, user_id: str) -> None:
        """Someone came, went, or changed their name or profile."""

    def rooms_changed(self, effects: list[Effect]) -> None:
        """A room operation was carried out here."""

    def reacted(self, conv: str, seq: int, user_id: str, emoji: str, on: bool) -> None:
        """Someone here added or took back a reaction."""

    def message_deleting(self, conv: str, seq: int) -> None:
        """An admin here is deleting a stored message (it is still in the store). A site
        deletes it from the store itself, in the transaction that shares the deletion."""

    def avatar_changed(self, user_id: str) -> None:
        """Someone here set a new profile picture (it is in the avatars folder)."""

    def calls_changed(self) -> None:
        """A call here started, changed or ended."""

    def forward(self, user_id: str, request: Request) -> bool:
        """Whether a request about a call goes to the box that holds it instead."""
        return False

    def busy_elsewhere(self) -> frozenset[str]:
        """People in (or ringing for) a call that another box of the site holds."""
        return frozenset()


class Hub:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], int] = _now_ms,
        ice_servers: IceProvider = lambda user_id, address: [],
        rate_limit: RateLimit | None = None,
        calls: Calls | None = None,
        retention: tuple[int, int] | None = None,
        default_room: str | None = None,
        default_room_id: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ice_servers = ice_servers
        self.rate_limit = rate_limit or RateLimit()
        # (days to keep, messages per conversation to keep); 0 keeps forever.
        self.retention = retention
        self.lock = threading.RLock()
        self.presence = Presence()
        self.calls = calls or Calls(lambda: new_id("c_"))
        self.site = Replication()
        self.rooms = Rooms(lambda: new_id("r_"), lambda: secrets.token_urlsafe(12))
        self.rooms.load(store.load_rooms(), store.invites())
        # The room every new person joins at first visit (config `default_room`).
        self.default_room: str | None = None
        if default_room:
            room, writes = self.rooms.box_room(default_room, clock(), default_room_id)
            self._apply(writes)
            self.default_room = room.id
        self._conns: dict[int, Connection] = {}
        # Profiles of the people online, so a `welcome` or a `changes` frame
        # needs no query per person.
        self._profiles: dict[str, UserRecord] = {}
        # Who each person has a one-to-one conversation with (loaded from the
        # store when they come online, kept up to date as direct messages are
        # stored): the people their `welcome` and `changes` frames list.
        self._contacts: dict[str, set[str]] = {}
        # Who asked for everyone's changes (`people` with `watch: true`).
        self._watchers: set[str] = set()
        # Who asked for the counts of rooms they are not in (`rooms` with
        # `watch: true`); the others get such a room only when more changed.
        self._room_watchers: set[str] = set()
        # Who was answered `rooms` since the last `changes` frame: like a
        # phone welcomed since, it knows the rooms as they were then, so it
        # gets whole every room that changed since the last frame, also those
        # back as the last frame told them (a leave and a join meanwhile).
        self._rooms_asked: set[str] = set()
        # viewer -> people to tell them about in the next frame although these
        # did not change (they just became the viewer's contacts).
        self._introduce: dict[str, set[str]] = {}
        # How many were online when phones were last told (`online`).
        self._online_told = -1
        # Who came, went or changed, and which rooms changed, since the last
        # `changes` frame (user id -> their name, for those who went offline,
        # and the number of their latest change).
        self._changed_users: dict[str, tuple[str, int]] = {}
        self._changed_rooms: set[str] = set()
        self._user_changes = 0  # people's changes so far, numbered
        # Each room as the last `changes` frame told it, and who was welcomed
        # since (they get whole rooms, not what changed, and of the people only
        # those who changed after their `welcome`: user id -> that change's number).
        self._sent_rooms: dict[str, dict[str, Any]] = {}
        # Rooms whose new counts the phones not in them have not been told
        # yet, and when they last were.
        self._counts_owed: set[str] = set()
        self._counts_told_at = -COUNTS_EVERY_MS
        self._welcomed: dict[str, int] = {}
        # False: each request's changes go out at its end (tests, tools).
        # True: `changes_loop` gathers them for CHANGES_EVERY_S first.
        self.coalesce = False
        self.changes_due = threading.Event()
        # Messages waiting for the next commit, in arrival order, and by
        # (sender, id) so a resent message waits for the same commit.
        self._outbox: list[PendingMessage] = []
        self._outbox_ids: dict[tuple[str, str], PendingMessage] = {}
        self._pending_hellos: list[PendingHello] = []
        # False: each request's messages are committed at its end (tests, tools).
        # True: `commit_loop` commits everything that arrived meanwhile at once.
        self.commits_due = threading.Event()
        self._group_commit = False
        # Where sends are gathered per connection for one write each (the
        # WebSocket layer's `appliance.ws.gathered`); by default sent one by one.
        self.gathered: Callable[[], AbstractContextManager[None]] = nullcontext
        # When each address last made new identities (ms), for the hourly limit.
        self._new_people: dict[str, list[int]] = {}
        self.started = clock()
        self.counters = {"messages": 0, "connections": 0, "errors": 0}
        # Observers (LEDs, admin page) are told when online users or calls change.
        self.on_change: list[Callable[[], None]] = []
        # Every request type after `hello`, and who handles it. `ping` and
        # `hello` are answered before a user is known (see `_dispatch`).
        self._handlers: dict[str, Callable[[Connection, str, Request], None]] = {
            "ice": self._on_ice,
            "people": self._on_people,
            "rooms": self._on_rooms,
            "send": self._on_send,
            "sync": self._on_sync,
            "react": self._on_react,
            "search": self._on_search,
            "profile": self._on_profile,
            "typing": self._on_typing,
            "read": self._on_read,
            "rename": self._on_rename,
            "room_create": self._on_room_create,
            "room_join": self._on_room_join,
            "room_invite": self._on_room_invite,
            "room_invite_link": self._on_room_invite_link,
            "room_approve": self._on_room_approve,
            "room_deny": self._on_room_deny,
            "room_role": self._on_room_role,
            "room_leave": self._on_room_leave,
            "room_get": self._on_room_get,
            "room_update": self._on_room_update,
            "room_kick": self._on_room_kick,
            "room_delete": self._on_room_delete,
            "call_invite": self._on_call_invite,
            "call_join": self._on_call_join,
            "call_accept": self._on_call_accept,
            "call_reject": self._on_call_reject,
            "call_cancel": self._on_call_cancel,
            "call_hangup": self._on_call_hangup,
            "signal": self._on_signal,
        }
        unhandled = set(protocol.SCHEMA) - set(self._handlers) - {"hello", "ping"}
        assert not unhandled, f"request types without a handler: {sorted(unhandled)}"

    @property
    def group_commit(self) -> bool:
        return self._group_commit

    @group_commit.setter
    def group_commit(self, on: bool) -> None:
        """On: every write waits in one open transaction for `flush_messages`,
        which commits it with the messages (one fsync for all)."""
        with self.lock:
            if not on:
                self.flush_messages()
            self._group_commit = on
            self.store.batched = on
            self.store.on_write = self.commits_due.set

    # -- connection lifecycle ------------------------------------------------

    def connect(self, peer: Peer, address: str = "") -> None:
        with self.lock:
            self._conns[id(peer)] = Connection(peer, self.rate_limit.new_state(self.clock()),
                                               address)
            self.counters["connections"] += 1

    def disconnect(self, peer: Peer) -> None:
        """The connection is gone. A stale connection's close changes nothing."""
        with self.lock:
            self._conns.pop(id(peer), None)
            user_id = self.presence.detach(peer)
            if user_id is None:
                return
            self._watchers.discard(user_id)
            self._room_watchers.discard(user_id)
            busy_before = self.calls.busy_users()
            self._deliver(self.calls.user_gone(user_id, self.clock()))
            self._user_changed(user_id)
            self._profiles.pop(user_id, None)
            self._after_calls_changed(busy_before, set())
            self._touch_rooms_of(user_id)
            self._changes_done()
        self._notify()

    def handle(self, peer: Peer, frame: str | bytes) -> None:
        """Process one frame from `peer`; every problem becomes an error reply."""
        ref: str | None = None
        changed = False
        with self.lock:
            conn = self._conns.get(id(peer))
            if conn is None:
                return
            try:
                if not self._take_token(conn, frame):
                    return
                request = protocol.parse_frame(frame)
                ref = request.ref
                changed = self._dispatch(conn, request)
            except ProtocolError as e:
                self.counters["errors"] += 1
                peer.send(protocol.error(e.code, e.message, ref if ref is not None else e.ref))
            except Exception:  # one bad request must not take the box down
                log.exception("request failed")
                self.counters["errors"] += 1
                peer.send(protocol.error(
                    "internal", "Something went wrong on the box; please try again.", ref))
            if not self.group_commit:
                self.flush_messages()
            self._changes_done()
        if changed:
            self._notify()

    def tick(self) -> None:
        """Housekeeping, called about once a second: call timeouts and retention."""
        with self.lock:
            busy_before = self.calls.busy_users()
            rooms_before = self._room_call_snapshot()
            events = self.calls.tick(self.clock())
            self._deliver(events)
            self._forget_old_new_people(self.clock())
            self._after_calls_changed(busy_before, rooms_before)
        self.flush_changes()
        if events:
            self._notify()

    def prune(self) -> int:
        """Apply the retention policy; returns how many messages were deleted."""
        if self.retention is None:
            return 0
        max_days, max_count = self.retention
        older_than = self.clock() - max_days * DAY_MS if max_days > 0 else None
        with self.lock:
            return self.store.prune(older_than, max_count if max_count > 0 else None)

    def _take_token(self, conn: Connection, frame: str | bytes) -> bool:
        now = float(self.clock())
        tokens, last, strikes = conn.bucket
        tokens = min(self.rate_limit.burst, tokens + (now - last) / 1000 * self.rate_limit.rate)
        if tokens >= 1:
            conn.bucket[:] = [tokens - 1, now, max(0.0, strikes - 1)]
            return True
        strikes += 1
        conn.bucket[:] = [tokens, now, strikes]
        if strikes > self.rate_limit.strikes_allowed:
            conn.peer.close(4008, "too many messages")
        elif strikes == 1 or strikes % 20 == 0:
            conn.peer.send(protocol.error(
                "rate_limited", "You are sending too fast; slow down.", protocol.ref_of(frame)))
        return False

    # -- dispatch ------------------------------------------------------------

    def _dispatch(self, conn: Connection, req: Request) -> bool:
        """Run one request; returns True when presence, rooms or calls changed."""
        if req.type == "ping":
            conn.peer.send(self._reply(req, protocol.pong(self.clock())))
            return False
        if req.type == "hello":
            self._hello(conn, req)
            return True
        user = conn.user_id
        if user is None or self.presence.user_of(conn.peer) != user:
            raise ProtocolError("not_joined", "Say hello with your name first.")
        if self.site.forward(user, req):
            return False
        handler = self._handlers[req.type]
        busy_before = self.calls.busy_users()
        rooms_before = self._room_call_snapshot()
        handler(conn, user, req)
        return self._after_calls_changed(busy_before, rooms_before) or req.type.startswith(
            ("room_", "call_")
        )

    def _reply(self, req: Request, message: dict[str, Any]) -> dict[str, Any]:
        if req.ref is not None:
            message["ref"] = req.ref
        return message

    # -- presence ------------------------------------------------------------

    def _hello(self, conn: Connection, req: Request) -> None:
        if conn.user_id is not None:
            raise ProtocolError("bad_request", "You already said hello on this connection.")
        now = self.clock()
        token: str | None = req.get("token")
        raw_name: str | None = req.get("name")
        name = protocol.clean_name(raw_name) if raw_name is not None else None
        if token is not None:
            found = self.store.user_by_token(hash_token(token))
            if found is None:
                raise ProtocolError(
                    "bad_token", "This device is not known to the box any more; pick a name.")
            record: UserRecord | None = found
            user_id, current_name = found.id, found.name
        else:
            if name is None:
                raise ProtocolError("bad_name", "Please enter a name.")
            self._check_new_person_allowed(conn.address, now)
            user_id, current_name = new_id("u_"), name
            record = None
        wanted = name or current_name
        holder = self.presence.name_holder(wanted)
        if holder is not None and holder != user_id:
            raise ProtocolError(
                "name_taken", f"Someone online is already called \"{wanted}\". Pick another name.")
        if token is None:
            token = secrets.token_urlsafe(32)
            self.store.create_user(user_id, hash_token(token), wanted, now)
            self._apply(self.rooms.first_visit(user_id, self.default_room))
            if _limited_address(conn.address):
                self._new_people.setdefault(conn.address, []).append(now)
            # The welcome carries the device token: it goes out once the
            # identity is stored, after the next commit.
            self._pending_hellos.append(
                PendingHello(conn, req, user_id, token, wanted, UserRecord(user_id, wanted)))
            self.commits_due.set()
            return
        if wanted != current_name:
            self.store.rename_user(user_id, wanted)
        assert record is not None
        self._welcome(conn, req, user_id, token, wanted, current_name,
                      replace(record, name=wanted))

    def _welcome(self, conn: Connection, req: Request, user_id: str, token: str, wanted: str,
                 current_name: str, record: UserRecord) -> None:
        """Put the user online on this connection and send `welcome` and what they missed."""
        now = self.clock()
        was_online = self.presence.is_online(user_id)
        replaced = self.presence.attach(user_id, wanted, conn.peer, now)
        conn.user_id = user_id
        self._profiles[user_id] = record
        self._welcomed[user_id] = self._user_changes
        self._watchers.discard(user_id)  # a new connection watches when it asks
        self._room_watchers.discard(user_id)
        self._introduce.pop(user_id, None)  # its welcome has them
        if replaced is not None:
            stale = self._conns.get(id(replaced))
            if stale is not None:
                stale.user_id = None
            replaced.send(protocol.error(
                "replaced", "You opened Ahoy somewhere else on this device; this copy is closed."))
            replaced.close(4001, "replaced")

        contacts = self._contacts_of(user_id)
        busy = self._busy_users()
        users = [self._user_entry(c, busy) for c in sorted(contacts)
                 if self.presence.is_online(c)]
        rooms = self._visible_rooms(user_id)
        welcome = protocol.welcome(
            self._user_wire(user_id), token, users, rooms,
            self.ice_servers(user_id, conn.address), now, default_room=self.default_room)
        welcome["online"] = len(self.presence)
        if self.site.box is not None:
            welcome["box"] = self.site.box
        conn.peer.send(self._reply(req, welcome))
        since_at = None
        if self.site.box is not None and req.get("box") not in (None, self.site.box):
            # The phone's seqs are another box's: what it has seen is said by position.
            since_at = req.get("since_at") or {}
        self._send_missed(conn.peer, user_id, req.get("since") or {}, since_at)
        self._deliver(self.calls.user_back(user_id))
        if not was_online or wanted != current_name:
            self._user_changed(user_id)
        self._touch_rooms_of(user_id)

    def _check_new_person_allowed(self, address: str, now: int) -> None:
        """At most NEW_PEOPLE_PER_ADDRESS_PER_HOUR identities per address an hour."""
        if not _limited_address(address):
            return
        recent = [t for t in self._new_people.get(address, []) if now - t < 3600_000]
        self._new_people[address] = recent
        if len(recent) >= protocol.NEW_PEOPLE_PER_ADDRESS_PER_HOUR:
            raise ProtocolError(
                "too_many_people",
                "This phone made too many new names in the last hour. Open Ahoy where you "
                "used it before, or try again in an hour.")

    def _forget_old_new_people(self, now: int) -> None:
        for address in [a for a, times in self._new_people.items()
                        if not times or now - times[-1] >= 3600_000]:
            del self._new_people[address]

    def _send_missed(self, peer: Peer, user_id: str, since: dict[str, int],
                     since_at: dict[str, dict[str, int]] | None = None) -> None:
        convs = [Conv.of_room(r.id) for r in self.rooms.of_member(user_id)]
        convs += self.store.dm_convs(user_id)
        for conv in convs:
            last = self.store.last_seq(conv)
            if since_at is not None and conv in since_at:
                messages, more = self.site.missed(conv, since_at[conv])
                peer.send(self._history(conv, messages, more))
                continue
            seen = None if since_at is not None else since.get(conv)
            if seen is None:
                if last == 0:
                    continue
                messages, more = self.store.before(conv, last + 1, HISTORY_ON_JOIN)
                more = False
            elif seen < last:
                messages, more = self.store.after(conv, seen, HISTORY_ON_JOIN)
            else:
                continue
            peer.send(self._history(conv, messages, more))

    def _history(self, conv: str, messages: list[StoredMessage], more: bool) -> dict[str, Any]:
        wires = [m.to_wire() for m in messages]
        self.site.positions(conv, wires)
        return protocol.history(conv, wires, more, self.store.last_seq(conv))

    def _status(self, user_id: str) -> str:
        if not self.presence.is_online(user_id):
            return "offline"
        busy = self.calls.is_busy(user_id) or user_id in self.site.busy_elsewhere()
        return "busy" if busy else "online"

    def _busy_users(self) -> set[str]:
        """Who shows as busy: in a call here or in one another box of the site holds."""
        return self.calls.busy_users() | self.site.busy_elsewhere()

    def _user_wire(self, user_id: str) -> dict[str, Any]:
        record = self._profiles.get(user_id) or self.store.user(user_id)
        session = self.presence.session(user_id)
        name = session.name if session else record.name if record else "?"
        wire: dict[str, Any] = {"id": user_id, "name": name, "status": self._status(user_id)}
        if record is not None:
            wire["colour"] = record.colour or None
            wire["status_text"] = record.status_text
            wire["avatar"] = f"/api/avatar/{user_id}?v={record.avatar}" if record.avatar else None
        return wire

    def _name(self, user_id: str) -> str:
        """A person's name as others see it (online or not)."""
        session = self.presence.session(user_id)
        if session is not None:
            return session.name
        record = self._profiles.get(user_id) or self.store.user(user_id)
        return record.name if record is not None else "?"

    def _user_entry(self, user_id: str, busy: Set[str] | None = None) -> dict[str, Any]:
        """A person online as `welcome` and `changes` list them: id, name,
        status when busy (left out: online), and of their profile only what
        they set (a crowd's arrival is mostly these entries, times the people
        online)."""
        if busy is None:
            busy = self._busy_users()
        record = self._profiles.get(user_id) or self.store.user(user_id)
        session = self.presence.session(user_id)
        name = session.name if session else record.name if record else "?"
        entry: dict[str, Any] = {"id": user_id, "name": name}
        if user_id in busy:
            entry["status"] = "busy"
        if record is not None:
            if record.colour:
                entry["colour"] = record.colour
            if record.status_text:
                entry["status_text"] = record.status_text
            if record.avatar:
                entry["avatar"] = f"/api/avatar/{user_id}?v={record.avatar}"
        return entry

    def _contacts_of(self, user_id: str) -> set[str]:
        """The people `user_id` has a one-to-one conversation with."""
        contacts = self._contacts.get(user_id)
        if contacts is None:
            contacts = self._contacts[user_id] = {
                other for conv in self.store.dm_convs(user_id)
                for other in Conv(conv).people if other != user_id}
        return contacts

    def _met(self, conv: str) -> None:
        """A direct message of `conv` was stored: its two people are each
        other's contacts from now on (told of each other in the next frame)."""
        people = Conv(conv).people
        if len(people) != 2:
            return
        for a, b in (people, people[::-1]):
            contacts = self._contacts.get(a)
            if contacts is None or b in contacts:
                continue
            contacts.add(b)
            if self.presence.is_online(a) and self.presence.is_online(b):
                self._introduce.setdefault(a, set()).add(b)
                self.changes_due.set()

    def _people_answer(self, user_id: str, watch: bool) -> dict[str, Any]:
        """Everyone online but `user_id`, by name, at most PEOPLE_LIMIT of them."""
        busy = self._busy_users()
        sessions = sorted((s for s in self.presence.sessions() if s.user_id != user_id),
                          key=lambda s: (s.name.casefold(), s.user_id))
        users = [self._user_entry(s.user_id, busy) for s in sessions[:PEOPLE_LIMIT]]
        return {"type": "people", "users": users, "online": len(self.presence),
                "more": len(sessions) > PEOPLE_LIMIT, "watch": watch}

    def _on_people(self, conn: Connection, user: str, req: Request) -> None:
        watch = req.get("watch")
        if watch is False:
            self._watchers.discard(user)
            conn.peer.send(self._reply(req, {"type": "people", "watch": False,
                                             "online": len(self.presence)}))
            return
        if watch:
            self._watchers.add(user)
        conn.peer.send(self._reply(req, self._people_answer(user, user in self._watchers)))

    def _visible_rooms(self, user_id: str) -> list[dict[str, Any]]:
        """The rooms `user_id` may see as `welcome` lists them (at most
        MAX_ROOMS: the box holds no more)."""
        return [self._room_entry(r, user_id) for r in self.rooms if r.can_see(user_id)]

    def _on_rooms(self, conn: Connection, user: str, req: Request) -> None:
        """The rooms with their counts now; with `watch`, also the counts of
        the rooms one is not in from now on (docs/protocol.md, "Rooms and
        their counts: `rooms`")."""
        watch = req.get("watch")
        if watch is False:
            self._room_watchers.discard(user)
            conn.peer.send(self._reply(req, {"type": "rooms", "watch": False}))
            return
        if watch:
            self._room_watchers.add(user)
        self._rooms_asked.add(user)
        conn.peer.send(self._reply(req, {"type": "rooms", "rooms": self._visible_rooms(user),
                                         "watch": user in self._room_watchers}))

    def _user_changed(self, user_id: str) -> None:
        """Someone came, went, or changed status or profile: tell everyone in
        the next `changes` frame (their state then, not each step)."""
        self.site.user_changed(user_id)
        session = self.presence.session(user_id)
        profile = self._profiles.get(user_id)
        self._user_changes += 1
        self._changed_users[user_id] = (session.name if session else
                                        profile.name if profile else "?", self._user_changes)
        self.changes_due.set()

    def _room_changed(self, room_id: str) -> None:
        self._changed_rooms.add(room_id)
        self.changes_due.set()

    def _changes_done(self) -> None:
        """The end of a request: its changes go out now unless they are gathered."""
        if not self.coalesce:
            self.flush_changes()

    def flush_changes(self) -> None:
        """Send one `changes` frame to each person online with everyone who
        came, went or changed and every room that changed (that they may see)
        since the last one. A crowd arriving at once costs each phone one
        frame per gathering period, not one per arrival."""
        with self.lock:
            self.changes_due.clear()
            now = self.clock()
            online_owed = len(self.presence) != self._online_told
            owed = bool(self._counts_owed) or online_owed
            counts_due = owed and (
                not self.coalesce or now - self._counts_told_at >= COUNTS_EVERY_MS)
            if not self._changed_users and not self._changed_rooms and not counts_due \
                    and not self._introduce:
                if owed:
                    self.changes_due.set()  # come back for them
                return
            busy = self._busy_users()
            users: list[str] = []  # each one encoded
            numbers: list[int] = []  # of each one's latest change
            # viewer -> the indexes in `users` of the people they are told of:
            # their contacts (watchers get everyone).
            told: dict[str, list[int]] = {}
            for user_id, (name, number) in self._changed_users.items():
                if self.presence.is_online(user_id):
                    users.append(_encode(self._user_entry(user_id, busy)))
                else:
                    users.append(_encode({"id": user_id, "name": name, "status": "offline"}))
                audience = self._contacts_of(user_id)  # loaded for people of other boxes
                call = self.calls.call_of(user_id)
                if call is not None:  # and who is in a call with them, while it lasts
                    in_call = {*call.participants, call.callee} - {user_id, None}
                    audience = audience | {p for p in in_call if p is not None}
                for viewer in audience:
                    told.setdefault(viewer, []).append(len(numbers))
                numbers.append(number)
            introduce, self._introduce = self._introduce, {}
            changed_at = {u: i for i, u in enumerate(self._changed_users)}
            for room_id in self._changed_rooms:
                if self.rooms.get(room_id) is None:
                    self._sent_rooms.pop(room_id, None)
            rooms = [r for room_id in self._changed_rooms
                     if (r := self.rooms.get(room_id)) is not None]
            welcomed, self._welcomed = self._welcomed, {}
            asked, self._rooms_asked = self._rooms_asked, set()
            self._changed_users.clear()
            self._changed_rooms.clear()
            # Whole rooms, and for those whose members and online count alone
            # changed, what changed since the last frame. Who is in a room
            # (its members, who joined and left) goes only to its members;
            # the others get its counts. Phones welcomed since then get whole
            # rooms. Each room's forms are encoded once, each frame joined
            # from them.
            wires = {r.id: self._room_entry(r) for r in rooms}
            deltas = {r.id: _room_delta(self._sent_rooms.get(r.id), wires[r.id]) for r in rooms}
            # Rooms that grew past LISTED_MEMBERS or came back to it: their
            # members get them whole (without or with members now).
            crossed = {r.id for r in rooms if deltas[r.id]
                       and (len(self._sent_rooms[r.id]["members"]) > LISTED_MEMBERS)
                       != (len(r.members) > LISTED_MEMBERS)}
            self._sent_rooms.update(wires)
            told_rooms = [r for r in rooms if deltas[r.id] != {}]
            # Rooms that changed and came back as the last frame told them:
            # only phones welcomed or answered `rooms` meanwhile need them
            # (whole: what they were told may be in between).
            quiet: dict[str, tuple[Room, str, str]] = {}
            if welcomed or asked:
                for r in rooms:
                    if deltas[r.id] == {}:
                        theirs = _for_others(wires[r.id])
                        ours = ({**theirs, "member": True} if len(r.members) > LISTED_MEMBERS
                                else wires[r.id])
                        quiet[r.id] = (r, _encode(ours), _encode(theirs))
            # The phones not in a room get its new counts alone at most once
            # every COUNTS_EVERY_MS: then those of every room owed them.
            for r in told_rooms:
                if deltas[r.id] is None:
                    self._counts_owed.discard(r.id)  # told whole below
                else:
                    self._counts_owed.add(r.id)
            counts: dict[str, str] = {}
            counts_now = not self.coalesce or now - self._counts_told_at >= COUNTS_EVERY_MS
            online_owed = len(self.presence) != self._online_told
            online_field = ""
            if counts_now and (self._counts_owed or online_owed):
                if online_owed:
                    self._online_told = len(self.presence)
                    online_field = f',"online":{self._online_told}'
                for room_id in self._counts_owed:
                    if (r := self.rooms.get(room_id)) is not None:
                        counts[room_id] = _encode({"id": room_id, "online": self._room_online(r),
                                                   "count": len(r.members)})
                self._counts_owed.clear()
                self._counts_told_at = now
            # room id -> (members, who joined or left, (whole, whole for
            # others), (delta, counts for others, or None when not now)). Who
            # joined or left gets the room whole: its members now that they
            # are in, none once out.
            forms: dict[str, tuple[frozenset[str], frozenset[str], tuple[str, str],
                                   tuple[str | None, str | None] | None]] = {}
            for r in told_rooms:
                whole, delta = wires[r.id], deltas[r.id]
                moved = frozenset(delta["joined"] + delta["left"]) if delta else frozenset()
                big = len(r.members) > LISTED_MEMBERS
                to_members = (_encode({**_for_others(whole), "member": True}) if big
                              else _encode(whole))
                # When only who is in it changed, the others get its counts;
                # its members the change, or its counts too in a big room, or
                # the room whole when it just crossed the size that lists members.
                change = (None if delta is None else to_members if r.id in crossed
                          else counts.get(r.id) if big else _encode(delta))
                forms[r.id] = (frozenset(r.members), moved,
                               (to_members, _encode(_for_others(whole))),
                               None if delta is None else (change, counts.get(r.id)))
            # Rooms owed counts that did not change now: their members knew.
            for room_id, text in counts.items():
                if room_id not in forms and (r := self.rooms.get(room_id)) is not None:
                    told_rooms.append(r)
                    members_told = "" if len(r.members) <= LISTED_MEMBERS else text
                    forms[room_id] = (frozenset(r.members), frozenset(), ("", text),
                                      (members_told, text))
            public = [r.id for r in told_rooms if r.public]
            hidden = [r for r in told_rooms if not r.public]
            # A phone's frame depends on its welcome, the hidden rooms it may
            # see, and which of these rooms it is in (or joined or left):
            # phones alike share one frame's text, built once.
            where: dict[str, list[tuple[str, bool, bool]]] = {}
            for i, (members, moved, _, _) in forms.items():
                for m in members:
                    where.setdefault(m, []).append((i, True, m in moved))
                for m in moved - members:
                    where.setdefault(m, []).append((i, False, True))
            rooms_texts: dict[tuple[Any, ...], str] = {}
            everyone: dict[int | None, str] = {}  # what watchers are told, by `since`
            for session in self.presence.sessions():
                user_id = session.user_id
                visible = tuple(r.id for r in hidden if r.can_see(user_id))
                # A phone welcomed since the last frame had its contacts' state
                # then: it gets only those who changed after its `welcome`.
                since = welcomed.get(user_id)
                if user_id in self._watchers:
                    text_users = everyone.get(since)
                    if text_users is None:
                        text_users = everyone[since] = ",".join(
                            u for u, number in zip(users, numbers, strict=True)
                            if since is None or number > since)
                else:
                    text_users = ",".join(users[i] for i in told.get(user_id, ())
                                          if since is None or numbers[i] > since)
                mine = told.get(user_id, ())
                met = [m for m in introduce.get(user_id, ()) if self.presence.is_online(m)
                       and not (m in changed_at and changed_at[m] in mine)]
                if met:
                    text_users = ",".join(
                        [t for t in (text_users,) if t]
                        + [_encode(self._user_entry(m, busy)) for m in sorted(met)])
                # The rooms one is not in come with their counts alone only
                # to who watches them; to the others only whole (when more
                # than who is in it changed, or one just left it).
                watching = user_id in self._room_watchers
                fresh = since is not None or user_id in asked
                key = (since, visible, tuple(where.get(user_id, ())), watching, fresh)
                rooms_text = rooms_texts.get(key) if not (fresh and quiet) else None
                if rooms_text is None:
                    entries: list[str] = []
                    if fresh:
                        for back, inside, outside in quiet.values():
                            if user_id in back.members:
                                entries.append(inside)
                            elif watching and back.can_see(user_id):
                                entries.append(outside)
                    for i in public + list(visible):
                        members, moved, whole_form, delta_form = forms[i]
                        whole_now = fresh or delta_form is None or user_id in moved
                        form = whole_form if whole_now or delta_form is None else delta_form
                        if user_id in members:
                            entry = form[0]
                        elif watching or delta_form is None or user_id in moved:
                            entry = form[1]
                        else:
                            entry = ""
                        if entry:  # none: a member told before, or counts not due yet
                            entries.append(entry)
                    rooms_text = rooms_texts[key] = ",".join(entries)
                frame = None if not text_users and not rooms_text and not online_field else (
                    '{"type":"changes","users":[' + text_users + '],"rooms":['
                    + rooms_text + "]" + online_field + "}")
                if frame is None:
                    continue
                send_encoded = getattr(session.peer, "send_encoded", None)
                if send_encoded is None:
                    session.peer.send(json.loads(frame))
                else:
                    send_encoded(frame)
            if self._counts_owed or len(self.presence) != self._online_told:
                self.changes_due.set()  # come back for them

    def changes_loop(self, stop: threading.Event) -> None:
        """Gather changes for CHANGES_EVERY_S, then send them (the server runs this)."""
        self.coalesce = True
        while not stop.is_set():
            if not self.changes_due.wait(1.0):
                continue
            if stop.wait(CHANGES_EVERY_S):
                return
            try:
                self.flush_changes()
            except Exception:
                log.exception("sending changes failed")

    def _on_ice(self, conn: Connection, user: str, req: Request) -> None:
        conn.peer.send(self._reply(req, protocol.ice(self.ice_servers(user, conn.address))))

    # -- messages ------------------------------------------------------------

    def _target_conv(self, user: str, req: Request, posting: bool) -> tuple[Conv, list[str]]:
        """The conversation a send/typing targets and who else is in it."""
        room_id = req.get("room")
        if room_id is not None:
            room = self.rooms.visible(room_id, user)
            if posting:
                room.check_can_post(user)
            else:
                room.check_member(user)
            return Conv.of_room(room.id), [m for m in room.members if m != user]
        to = req.get("to")
        if to == user:
            raise ProtocolError("bad_request", "You cannot send a message to yourself.")
        if not self.presence.is_online(to) and self.store.user(to) is None:
            raise ProtocolError("unknown_user", "There is no such person on this box.")
        return Conv.between(user, to), [to]

    def _on_send(self, conn: Connection, user: str, req: Request) -> None:
        text = protocol.clean_text(req.get("text"))
        conv, _ = self._target_conv(user, req, posting=True)
        session = self.presence.session(user)
        assert session is not None
        reply_to: int | None = req.get("reply_to")
        if reply_to is not None and self.store.message(conv, reply_to) is None:
            raise ProtocolError("unknown_message", "The message you reply to is gone.")
        msg_id: str = req.get("id")
        stored = self.store.find_message(user, msg_id)
        if stored is not None:  # sent again: the same ack as the first time
            conn.peer.send(self._reply(req, protocol.ack(stored.id, stored.conv, stored.seq,
                                                         stored.ts)))
            return
        waiting = self._outbox_ids.get((user, msg_id))
        if waiting is not None:
            waiting.waiters.append((conn.peer, req))
            return
        pending = PendingMessage(
            NewMessage(conv, msg_id, user, session.name, text, self.clock(), reply_to),
            [(conn.peer, req)])
        self._outbox.append(pending)
        self._outbox_ids[(user, msg_id)] = pending
        self.commits_due.set()

    def flush_messages(self) -> None:
        """Commit every waiting message in one transaction (one fsync), then ack
        and deliver them in their order. Never an ack before the commit: when
        the commit fails, nothing of the batch is stored and every sender is
        told to send again."""
        with self.lock:
            self.commits_due.clear()
            batch, self._outbox = self._outbox, []
            self._outbox_ids.clear()
            hellos, self._pending_hellos = self._pending_hellos, []
            batch = [p for p in batch if self._still_postable(p)]
            stored: list[StoredMessage] = []
            try:
                stored = self.store.append_many([p.message for p in batch])
            except Exception:
                log.exception("storing %d messages failed", len(batch))
                self._not_stored(batch)
                batch = []
            try:
                self.store.commit_pending()  # the other writes waiting with them (batched)
            except Exception:
                log.exception("a commit failed; nothing of it was stored")
                self._not_stored(batch)
                for hello in hellos:
                    hello.conn.peer.send(protocol.error(
                        "internal", "The box could not save your name; please try again.",
                        hello.req.ref))
                # Rooms and members changed in memory but not on disk: back to the disk.
                self.rooms.load(self.store.load_rooms(), self.store.invites())
                return
            if batch:
                self.counters["commits"] = self.counters.get("commits", 0) + 1
            with self.gathered():  # each phone gets what this commit brings it in one write
                for pending, message in zip(batch, stored, strict=True):
                    at = self.site.message_stored(message)
                    ack = protocol.ack(message.id, message.conv, message.seq, message.ts)
                    wire = message.to_wire()
                    if at is not None:
                        ack["at"] = wire["at"] = at
                    for peer, req in pending.waiters:
                        peer.send(self._reply(req, dict(ack)))
                    self.counters["messages"] += 1
                    self._met(message.conv)
                    self._send_to(self._recipients(message), wire)
                for hello in hellos:
                    self._finish_hello(hello)
            if hellos:
                self._changes_done()
        if hellos:
            self._notify()

    def _not_stored(self, batch: list[PendingMessage]) -> None:
        if batch:
            self.counters["errors"] += 1
        for pending in batch:
            for peer, req in pending.waiters:
                peer.send(protocol.error(
                    "not_stored", "The box could not store your message; "
                    "it was not sent. Please send it again.", req.ref))

    def _finish_hello(self, hello: PendingHello) -> None:
        """The new identity is stored: welcome it, unless its connection went
        or its name was taken meanwhile."""
        conn = hello.conn
        if self._conns.get(id(conn.peer)) is not conn or conn.user_id is not None:
            return
        holder = self.presence.name_holder(hello.name)
        if holder is not None and holder != hello.user_id:
            conn.peer.send(protocol.error(
                "name_taken", f"Someone online is already called \"{hello.name}\". "
                "Pick another name.", hello.req.ref))
            return
        self._welcome(conn, hello.req, hello.user_id, hello.token, hello.name, hello.name,
                      hello.record)

    def _still_postable(self, pending: PendingMessage) -> bool:
        """A room may have closed, or its sender left, while the message waited."""
        room_id = Conv(pending.message.conv).room_id
        if room_id is None:
            return True
        room = self.rooms.get(room_id)
        try:
            if room is None:
                raise ProtocolError("unknown_room", "That room is gone.")
            room.check_can_post(pending.message.sender)
        except ProtocolError as e:
            for peer, req in pending.waiters:
                peer.send(protocol.error(e.code, e.message, req.ref))
            return False
        return True

    def _recipients(self, message: StoredMessage) -> list[str]:
        conv = Conv(message.conv)
        room_id = conv.room_id
        if room_id is None:
            return [u for u in conv.people if u != message.sender]
        room = self.rooms.get(room_id)
        return [m for m in room.members if m != message.sender] if room else []

    def commit_loop(self, stop: threading.Event) -> None:
        """Group commit (the server runs this): whatever arrived while the last
        commit waited for the disk is committed next, in one transaction."""
        self.group_commit = True
        while not stop.is_set():
            if not self.commits_due.wait(1.0):
                continue
            time.sleep(0)  # one turn of the loop: frames already read reach the hub
            try:
                self.flush_messages()
            except Exception:
                log.exception("group commit failed")

    def _audience(self, user: str, conv: Conv) -> list[str]:
        """Everyone in the conversation, once `user` is known to be one of them."""
        room_id = conv.room_id
        if room_id is not None:
            room = self.rooms.visible(room_id, user)
            room.check_member(user)
            return list(room.members)
        if user not in conv.people:
            raise ProtocolError("not_member", "That conversation is not yours.")
        return list(conv.people)

    def _on_sync(self, conn: Connection, user: str, req: Request) -> None:
        conv = Conv(req.get("conv"))
        self._audience(user, conv)
        limit: int = req.get("limit", HISTORY_ON_JOIN)
        before = req.get("before")
        if before is not None:
            messages, more = self.store.before(conv, before, limit)
        else:
            messages, more = self.store.after(conv, req.get("after", 0), limit)
        conn.peer.send(self._reply(req, self._history(conv, messages, more)))

    def _on_react(self, conn: Connection, user: str, req: Request) -> None:
        conv = Conv(req.get("conv"))
        audience = self._audience(user, conv)
        emoji = protocol.clean_emoji(req.get("emoji"))
        on: bool = req.get("on", True)
        if not self.store.react(conv, req.get("seq"), user, emoji, on):
            raise ProtocolError("unknown_message", "That message is gone.")
        self.site.reacted(conv, req.get("seq"), user, emoji, on)
        event = protocol.reaction(conv, req.get("seq"), user, emoji, on)
        conn.peer.send(self._reply(req, dict(event)))
        self._send_to([m for m in audience if m != user], event)

    def _on_search(self, conn: Connection, user: str, req: Request) -> None:
        conv = Conv(req.get("conv"))
        self._audience(user, conv)
        query = req.get("query").strip()
        if not query:
            raise ProtocolError("bad_request", "Type something to search for.")
        found = self.store.search(conv, query, req.get("limit", 50))
        conn.peer.send(self._reply(req, protocol.search_results(
            conv, query, [m.to_wire() for m in found])))

    def _on_profile(self, conn: Connection, user: str, req: Request) -> None:
        record = self.store.user(user)
        assert record is not None
        colour = req.get("colour", record.colour)
        status_text = protocol.clean_status(req.get("status_text", record.status_text))
        self.store.set_profile(user, colour, status_text, record.avatar)
        self._profile_stored(user)
        conn.peer.send(self._reply(req, protocol.profile(self._user_wire(user))))

    def user_for_token(self, token: str) -> str | None:
        with self.lock:
            record = self.store.user_by_token(hash_token(token))
            return record.id if record else None

    def user_wire(self, user_id: str) -> dict[str, Any]:
        """A person as the protocol shows them (id, name, status, profile)."""
        with self.lock:
            return self._user_wire(user_id)

    def avatar_changed(self, user_id: str) -> dict[str, Any]:
        """A new profile picture was stored: bump its version and tell everyone."""
        with self.lock:
            record = self.store.user(user_id)
            assert record is not None
            self.store.set_profile(user_id, record.colour, record.status_text, record.avatar + 1)
            self.site.avatar_changed(user_id)
            self.profile_changed(user_id)
            return self._user_wire(user_id)

    def profile_changed(self, user_id: str) -> None:
        """Tell everyone online about a new name, colour, status line or picture."""
        with self.lock:
            self._profile_stored(user_id)
            self._changes_done()

    def _profile_stored(self, user_id: str) -> None:
        if self.presence.is_online(user_id):
            record = self.store.user(user_id)
            if record is not None:
                self._profiles[user_id] = record
            self._user_changed(user_id)

    def _on_typing(self, conn: Connection, user: str, req: Request) -> None:
        conv, others = self._target_conv(user, req, posting=False)
        self._send_to(others, {**protocol.typing(conv, user), "name": self._name(user)})

    def _on_read(self, conn: Connection, user: str, req: Request) -> None:
        conv = Conv(req.get("conv"))
        others = [m for m in self._audience(user, conv) if m != user]
        self._send_to(others, {**protocol.read(conv, user, req.get("seq")),
                               "name": self._name(user)})

    # -- rooms ---------------------------------------------------------------

    def _room_online(self, room: Room) -> int:
        return sum(1 for m in room.members if self.presence.is_online(m))

    def _room_wire(self, room: Room) -> dict[str, Any]:
        call = self.calls.room_call_wire(room.id)
        if call is not None:
            # Its few participants' names, for phones that do not know them.
            call["names"] = {p: self._name(p) for p in call["participants"]}
        return room.to_wire(self._room_online(room), call)

    def _room_entry(self, room: Room, viewer: str | None = None) -> dict[str, Any]:
        """A room as `welcome` and `changes` list it: without the fields that
        are as a new room has them (every room goes to every phone, and most
        rooms set few of them), and, for a `viewer` not in it, without who
        is (its `count` says how many)."""
        entry = {k: v for k, v in self._room_wire(room).items()
                 if k not in ROOM_UNSET or ROOM_UNSET[k] != v}
        if viewer is not None and (viewer not in room.members
                                   or len(room.members) > LISTED_MEMBERS):
            del entry["members"]
            if viewer in room.members:
                entry["member"] = True
        return entry

    def _broadcast(self, message: dict[str, Any]) -> None:
        self._send_all([s.peer for s in self.presence.sessions()], message)

    @staticmethod
    def _send_all(peers: list[Peer], message: dict[str, Any]) -> None:
        """Send one message to many connections, encoding it to JSON only once."""
        text: str | None = None
        for peer in peers:
            send_encoded = getattr(peer, "send_encoded", None)
            if send_encoded is None:
                peer.send(message)
                continue
            if text is None:
                text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
            send_encoded(text)

    def _send_to(self, user_ids: Iterable[str], message: dict[str, Any]) -> None:
        """Send to these users where they are online; the others get it from history
        or their next `welcome`."""
        self._send_all([p for u in user_ids if (p := self.presence.peer(u)) is not None],
                       message)

    def _touch_rooms_of(self, user_id: str) -> None:
        """Online counts changed for the rooms this user is in."""
        for room in self.rooms.of_member(user_id):
            self._room_changed(room.id)

    def _apply(self, effects: list[Effect], answer: tuple[Peer, Request] | None = None) -> None:
        """Carry out what a room operation decided, in its order (each write
        before what is told of it). `answer` is the connection and request
        that a `Reply` answers."""
        now = self.clock()
        self.site.rooms_changed(effects)
        for effect in effects:
            match effect:
                case SaveRoom(room):
                    self.store.save_room(room)
                case AddMember(room_id, user_id, role):
                    self.store.add_member(room_id, user_id, now, role)
                case RemoveMember(room_id, user_id):
                    self.store.remove_member(room_id, user_id)
                case SetRole(room_id, user_id, role):
                    self.store.set_role(room_id, user_id, role)
                case SetInvite(room_id, user_id, kind):
                    self.store.set_invite(room_id, user_id, kind, now)
                case DeleteRoom(room_id, delete_messages):
                    self.store.delete_room(room_id, delete_messages)
                case Reply(kind, room, message):
                    assert answer is not None
                    if message is None:
                        assert room is not None
                        message = protocol.room_message(kind, self._room_wire(room))
                    answer[0].send(self._reply(answer[1], dict(message)))
                case Tell(user_id, message):
                    self._send_to([user_id], message)
                case TellRoom(user_id, kind, room, extra):
                    self._send_to([user_id],
                                  protocol.room_message(kind, self._room_wire(room), **extra))
                case SendHistory(user_id, room):
                    peer = self.presence.peer(user_id)
                    conv = Conv.of_room(room.id)
                    last = self.store.last_seq(conv)
                    if peer is not None and last:
                        messages, _ = self.store.before(conv, last + 1, HISTORY_ON_JOIN)
                        peer.send(self._history(conv, messages, False))
                case Announce(room):
                    self._room_changed(room.id)
                case Unlist(room):
                    self._send_all([s.peer for s in self.presence.sessions()
                                    if not room.can_see(s.user_id)],
                                   protocol.room_deleted(room.id))
                case Gone(room_id):
                    self._broadcast(protocol.room_deleted(room_id))
                case LeaveCall(user_id, room_id):
                    self._deliver(self.calls.leave_room_call(user_id, room_id))
                case EndCall(room_id):
                    self._deliver(self.calls.end_room_call(room_id))

    def _on_room_create(self, conn: Connection, user: str, req: Request) -> None:
        self._apply(self.rooms.create(
            user, self.clock(), req.get("name"), req.get("description", ""),
            req.get("limit", DEFAULT_LIMIT), req.get("ephemeral", False),
            req.get("visibility", "public"), req.get("approval", False),
        ), (conn.peer, req))

    def _on_room_join(self, conn: Connection, user: str, req: Request) -> None:
        name = self._user_wire(user)["name"]
        self._apply(self.rooms.join(user, name, req.get("room"), req.get("code")),
                    (conn.peer, req))

    def _on_room_invite(self, conn: Connection, user: str, req: Request) -> None:
        target: str = req.get("user")
        exists = self.store.user(target) is not None
        self._apply(self.rooms.invite(user, req.get("room"), target, exists), (conn.peer, req))

    def _on_room_invite_link(self, conn: Connection, user: str, req: Request) -> None:
        self._apply(self.rooms.invite_link(user, req.get("room"), bool(req.get("reset"))),
                    (conn.peer, req))

    def _on_room_approve(self, conn: Connection, user: str, req: Request) -> None:
        self._apply(self.rooms.approve(user, req.get("room"), req.get("user")), (conn.peer, req))

    def _on_room_deny(self, conn: Connection, user: str, req: Request) -> None:
        self._apply(self.rooms.deny(user, req.get("room"), req.get("user")), (conn.peer, req))

    def _on_room_role(self, conn: Connection, user: str, req: Request) -> None:
        self._apply(self.rooms.set_role(user, req.get("room"), req.get("user"), req.get("role")),
                    (conn.peer, req))

    def _on_room_leave(self, conn: Connection, user: str, req: Request) -> None:
        self._apply(self.rooms.leave(user, req.get("room")), (conn.peer, req))

    def _on_room_get(self, conn: Connection, user: str, req: Request) -> None:
        """A room whole, members included, as it is now (for a phone showing
        a room it is not in: `changes` tell it only the room's counts)."""
        room = self.rooms.visible(req.get("room"), user)
        busy = self._busy_users()
        people = []
        for member in room.members:
            entry = {"id": member, "name": self._name(member), "status": "online"}
            if not self.presence.is_online(member):
                entry["status"] = "offline"
            elif member in busy:
                entry["status"] = "busy"
            people.append(entry)
        conn.peer.send(self._reply(req, protocol.room_message(
            "room", self._room_wire(room), people=people)))

    def _on_room_update(self, conn: Connection, user: str, req: Request) -> None:
        changes = {key: req.get(key) for key in ROOM_SETTINGS if req.get(key) is not None}
        self._apply(self.rooms.update(user, req.get("room"), changes), (conn.peer, req))

    def _on_room_kick(self, conn: Connection, user: str, req: Request) -> None:
        self._apply(self.rooms.kick(user, req.get("room"), req.get("user")), (conn.peer, req))

    def _on_room_delete(self, conn: Connection, user: str, req: Request) -> None:
        self._apply(self.rooms.delete_as_owner(user, req.get("room")), (conn.peer, req))

    # -- calls ---------------------------------------------------------------

    def _on_call_invite(self, conn: Connection, user: str, req: Request) -> None:
        to: str = req.get("to")
        if to != user and not self.presence.is_online(to):
            if self.store.user(to) is None:
                raise ProtocolError("unknown_user", "There is no such person on this box.")
            raise ProtocolError("user_offline", "They are not online right now.")
        _, events = self.calls.invite(user, to, req.get("media", "audio"), self.clock())
        self._deliver(events, ref_for=(user, req))

    def _on_call_accept(self, conn: Connection, user: str, req: Request) -> None:
        self._deliver(self.calls.accept(user, req.get("call")), ref_for=(user, req))

    def _on_call_reject(self, conn: Connection, user: str, req: Request) -> None:
        self._deliver(self.calls.reject(user, req.get("call"), req.get("why") or "declined"),
                      ref_for=(user, req))

    def _on_call_cancel(self, conn: Connection, user: str, req: Request) -> None:
        self._deliver(self.calls.cancel(user, req.get("call")), ref_for=(user, req))

    def _on_call_hangup(self, conn: Connection, user: str, req: Request) -> None:
        self._deliver(self.calls.hangup(user, req.get("call")), ref_for=(user, req))

    def _on_call_join(self, conn: Connection, user: str, req: Request) -> None:
        room = self.rooms.visible(req.get("room"), user)
        room.check_can_post(user)
        online = [m for m in room.members if self.presence.is_online(m)]
        _, events = self.calls.join_room(user, room.id, req.get("media", "video"), online,
                                         self.clock())
        self._deliver(events, ref_for=(user, req))

    def _on_signal(self, conn: Connection, user: str, req: Request) -> None:
        to: str = req.get("to")
        call_id: str | None = req.get("call")
        if call_id is not None:
            self.calls.check_signal(user, call_id, to)
        elif to == user:
            raise ProtocolError("bad_request", "You cannot send to yourself.")
        elif not self.presence.is_online(to):
            # Without a call, signaling sets up a direct transfer (a file or a
            # photo) between two people who are both here right now.
            raise ProtocolError("user_offline", "They are not online right now.")
        self._send_to([to], protocol.signal(call_id, user, req.get("data")))

    def _on_rename(self, conn: Connection, user: str, req: Request) -> None:
        name = protocol.clean_name(req.get("name"))
        holder = self.presence.name_holder(name)
        if holder is not None and holder != user:
            raise ProtocolError(
                "name_taken", f"Someone online is already called \"{name}\". Pick another name.")
        self.store.rename_user(user, name)
        self.presence.rename(user, name)
        profile = self._profiles.get(user)
        if profile is not None:
            self._profiles[user] = replace(profile, name=name)
        self._user_changed(user)
        conn.peer.send(self._reply(req, protocol.profile(self._user_wire(user))))

    # -- delivery ------------------------------------------------------------

    def _deliver(self, events: list[Event], ref_for: tuple[str, Request] | None = None) -> None:
        """Send call events; the first event for the requester carries its `ref`."""
        pending_ref = ref_for
        for user_id, message in events:
            kind = message["type"]
            if kind == "call_incoming":
                message = {**message, "name": self._name(message["from"])}
            elif kind in ("call_peer_joined", "call_peer_left"):
                message = {**message, "name": self._name(message["user"])}
            elif kind == "call_accepted" and message.get("by"):
                message = {**message, "name": self._name(message["by"])}
            elif kind in ("call_joined", "call_resume"):
                message = {**message, "names": {p: self._name(p) for p in message["peers"]}}
            if pending_ref is not None and user_id == pending_ref[0]:
                message = self._reply(pending_ref[1], dict(message))
                pending_ref = None
            self._send_to([user_id], message)

    def _room_call_snapshot(self) -> dict[str, tuple[str, ...]]:
        return {
            c.room: tuple(c.participants) for c in self.calls.active() if c.room is not None
        }

    def _after_calls_changed(
        self, busy_before: set[str], rooms_before: dict[str, tuple[str, ...]] | set[str]
    ) -> bool:
        """Broadcast busy/free presence and room call participants that changed."""
        busy_after = self.calls.busy_users()
        changed = False
        for user_id in busy_before ^ busy_after:
            if self.presence.is_online(user_id):
                self._user_changed(user_id)
            changed = True
        if isinstance(rooms_before, dict):
            rooms_after = self._room_call_snapshot()
            for room_id in set(rooms_before) | set(rooms_after):
                if rooms_before.get(room_id) != rooms_after.get(room_id):
                    changed = True
                    self._room_changed(room_id)
        if changed:
            self.site.calls_changed()
        return changed

    def _notify(self) -> None:
        for observer in list(self.on_change):
            try:
                observer()
            except Exception:
                log.exception("observer failed")

    # -- the other boxes of the site (appliance.site) ----------------------------

    def attach_remote(self, peer: Peer, user_id: str, name: str) -> None:
        """Someone is online on another box of the site; `peer` reaches them there."""
        with self.lock:
            if id(peer) not in self._conns:
                self.connect(peer)
            conn = self._conns[id(peer)]
            replaced = self.presence.attach(user_id, name, peer, self.clock())
            conn.user_id = user_id
            if replaced is not None:
                stale = self._conns.get(id(replaced))
                if stale is not None:
                    stale.user_id = None
                replaced.send(protocol.error(
                    "replaced", "You opened Ahoy on another box of the site; this copy is "
                                "closed."))
                replaced.close(4001, "replaced")
            self._user_changed(user_id)
            self._touch_rooms_of(user_id)
            self._changes_done()
        self._notify()

    def site_busy_changed(self, user_ids: Iterable[str]) -> None:
        """Calls on another box began or ended for these people: show it here."""
        with self.lock:
            for user_id in user_ids:
                if self.presence.is_online(user_id):
                    self._user_changed(user_id)
            self._changes_done()
        self._notify()

    def site_applied(self, messages: list[StoredMessage], positions: dict[tuple[str, int], str],
                     users: list[str], rooms: list[str], deleted_rooms: list[str],
                     reactions: Iterable[tuple[str, int, str, str, bool]] = (),
                     deleted_messages: Iterable[tuple[str, int]] = (),
                     invites: Iterable[tuple[str, str, str, str]] = (),
                     joined: Iterable[tuple[str, str]] = ()) -> None:
        """Changes from other boxes are in the store: tell the phones here."""
        with self.lock:
            for conv, seq in deleted_messages:
                self._send_to(self._conv_audience(conv), protocol.message_deleted(conv, seq))
            for conv, seq, user_id, emoji, on in reactions:
                in_room = Conv(conv).room_id
                room = self.rooms.get(in_room) if in_room is not None else None
                people = list(room.members) if room is not None else list(Conv(conv).people)
                self._send_to(people, protocol.reaction(conv, seq, user_id, emoji, on))
            if rooms or deleted_rooms:
                self.rooms.load(self.store.load_rooms(), self.store.invites())
                for room_id in dict.fromkeys(rooms):
                    room = self.rooms.get(room_id)
                    if room is not None:
                        self._apply([Announce(room)])
                for room_id in deleted_rooms:
                    self._apply([Gone(room_id)])
            for room_id, user_id in joined:
                # Let in on another box (a request approved there): their phone here
                # gets the room and its history, as on approval here.
                room = self.rooms.get(room_id)
                if room is not None and user_id in room.members:
                    self._apply([TellRoom(user_id, "room", room), SendHistory(user_id, room)])
            for room_id, user_id, kind, by in invites:
                room = self.rooms.get(room_id)
                if room is None:
                    continue
                if kind == "invite":
                    self._apply([TellRoom(user_id, "room_invited", room, {"by": by or None})])
                else:
                    record = self.store.user(user_id)
                    name = record.name if record is not None else "?"
                    self._send_to([room.owner, *room.moderators],
                                  protocol.room_request(room_id, user_id, name))
            for user_id in users:
                if self.presence.is_online(user_id):
                    record = self.store.user(user_id)  # changed on another box
                    if record is not None and user_id in self._profiles:
                        self._profiles[user_id] = record
                    self._user_changed(user_id)
            for message in messages:
                in_room = Conv(message.conv).room_id
                if in_room is not None:
                    room = self.rooms.get(in_room)
                    audience = list(room.members) if room is not None else []
                else:
                    audience = list(Conv(message.conv).people)
                    self._met(message.conv)
                wire = message.to_wire()
                at = positions.get((message.conv, message.seq))
                if at is not None:
                    wire["at"] = at
                self._send_to(audience, wire)
            self.counters["messages"] += len(messages)
            self._changes_done()
        if rooms or deleted_rooms or users:
            self._notify()

    # -- moderation (the admin page) -------------------------------------------

    def remove_user(self, user_id: str) -> bool:
        """Disconnect a user, end their calls and forget their device token.

        They can come back only by picking a name again, as a new identity.
        """
        with self.lock:
            if self.store.user(user_id) is None:
                return False
            busy_before = self.calls.busy_users()
            rooms_before = self._room_call_snapshot()
            self._deliver(self.calls.user_removed(user_id))
            peer = self.presence.peer(user_id)
            if peer is not None:
                peer.send(protocol.error("removed", "The box's admin removed you."))
                peer.close(4003, "removed by the admin")
                self.presence.detach(peer)
                conn = self._conns.get(id(peer))
                if conn is not None:
                    conn.user_id = None
                self._user_changed(user_id)
            self._profiles.pop(user_id, None)
            self._watchers.discard(user_id)
            self._room_watchers.discard(user_id)
            self._apply(self.rooms.forget_user(user_id))
            self.store.delete_user(user_id)
            self._after_calls_changed(busy_before, rooms_before)
            self._changes_done()
        self._notify()
        return True

    def yield_room_call(self, room_id: str, winner: str) -> None:
        """End this box's call of a room in favour of another box's (docs/site.md):
        its people are told which call to join instead."""
        with self.lock:
            busy_before, rooms_before = self.calls.busy_users(), self._room_call_snapshot()
            events = self.calls.yield_room_call(room_id, winner)
            if not events:
                return
            self._deliver(events)
            self._after_calls_changed(busy_before, rooms_before)
        self._notify()

    def close_room(self, room_id: str) -> bool:
        """Delete a room as its owner would (the admin's 'close room')."""
        with self.lock:
            room = self.rooms.get(room_id)
            if room is None:
                return False
            busy_before = self.calls.busy_users()
            self._apply(self.rooms.delete(room))
            self._after_calls_changed(busy_before, set())
            self._changes_done()
        self._notify()
        return True

    def delete_message(self, conv: str, seq: int) -> bool:
        """Delete one stored message; online members are told to hide it."""
        with self.lock:
            if self.store.message(conv, seq) is None:
                return False
            # In a site this deletes it too, with the record the other boxes get.
            self.site.message_deleting(conv, seq)
            self.store.delete_message(conv, seq)  # alone; in a site, already gone
            self._send_to(self._conv_audience(conv), protocol.message_deleted(conv, seq))
        return True

    def _conv_audience(self, conv: str) -> list[str]:
        """Who may see a conversation: a room's members, or a direct chat's two people."""
        room_id = Conv(conv).room_id
        if room_id is not None:
            room = self.rooms.get(room_id)
            return list(room.members) if room else []
        return list(Conv(conv).people)

    def online_users(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self._user_wire(s.user_id) for s in self.presence.sessions()]

    def calls_in_progress(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"id": c.id, "room": c.room, "media": c.media, "ringing": c.ringing,
                 "participants": list(c.participants), "started": c.started}
                for c in self.calls.active()
            ]

    def recent_messages(self, conv: str, limit: int = 50) -> list[dict[str, Any]]:
        with self.lock:
            last = self.store.last_seq(conv)
            messages, _ = self.store.before(conv, last + 1, limit)
            return [m.to_wire() for m in messages]

    # -- for the admin page and /healthz -------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "users_online": len(self.presence),
                "connections": len(self._conns),
                "rooms": len(self.rooms),
                "calls": len(self.calls.active()),
                "messages_stored": self.store.message_count(),
                "uptime_s": (self.clock() - self.started) // 1000,
                "counters": dict(self.counters),
            }

    def public_rooms(self) -> list[dict[str, Any]]:
        """Rooms anyone may see (hidden rooms are left out)."""
        with self.lock:
            return [self._room_wire(r) for r in self.rooms if r.public]

    def all_rooms(self) -> list[dict[str, Any]]:
        """Every room, hidden ones included (for the admin page)."""
        with self.lock:
            return [self._room_wire(r) for r in self.rooms]
