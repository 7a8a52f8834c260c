"""A box's membership of its site, wired into the hub.

`SiteLink` is the hub's `Replication` for a box in a site: the hub tells it
what happened here (a message stored, a person or room changed, presence),
and it tells the hub what happened on the other boxes (through the inbox
that the NATS thread fills). People online on another box are in this hub's
presence as `RemotePeer`s: whatever the hub sends them that their own box
would not make by itself (call events, signaling, typing, read receipts,
answers to forwarded requests) goes to that box for their phone. Call
requests about a call that another box holds go to that box, which handles
them as if the phone were its own.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from provisioning import credentials, site
from provisioning.config import SITE_PORT

from ..hub import Hub, Replication
from ..protocol import Request
from ..rooms import (
    AddMember,
    DeleteRoom,
    Effect,
    RemoveMember,
    Room,
    SaveRoom,
    SetInvite,
    SetRole,
)
from ..store import StoredMessage
from .bridge import SILENT_AFTER_S, Bridge, BridgeConfig
from .channel import Inbox
from .records import BadRecord, decode, decode_live, encode_live, forwarded
from .replica import Applied, Replica

log = logging.getLogger(__name__)

MISSED_LIMIT = 500
DISCOVERY_EVERY_S = 5.0
REMOVED_FILE = "removed-boxes"  # in the site folder: one box id a line


def read_removed(data_dir: Path) -> frozenset[str]:
    """The boxes the admin removed from the site, as this box keeps them."""
    try:
        lines = (site.site_dir(data_dir) / REMOVED_FILE).read_text().split()
    except OSError:
        return frozenset()
    return frozenset(line for line in lines if site.BOX_ID.fullmatch(line))


def first_room_call(one: tuple[int, str], other: tuple[int, str]) -> tuple[int, str]:
    """Of two calls of one room held by two boxes (started in a split, or at the same
    moment), the one that stays: the earlier start (each box's own clock, in ms),
    then the lower box id. Both boxes compare the same pair, so exactly one gives way.
    """
    return min(one, other)


class Refused(Exception):
    """An admin's request about the site that cannot be done, in words, with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RemotePeer:
    """A person whose phone is connected to another box of the site."""

    def __init__(self, link: SiteLink, box: str, user_id: str) -> None:
        self.link = link
        self.box = box
        self.user_id = user_id

    def send(self, message: dict[str, Any]) -> None:
        if forwarded(message):
            self.link.send_live(self.box, "to", self.user_id, message)

    def close(self, code: int, reason: str) -> None:
        """Their own box closes their connection when it learns where they went."""


class SiteLink(Replication):
    """This box's part in its site, for the hub (see module docstring)."""

    def __init__(self, hub: Hub, data_dir: Path, site_name: str, peers: tuple[str, ...],
                 own_port: int, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.box = site.box_id(data_dir)
        self.site_name = site_name
        self.clock = clock
        self.replica = Replica(hub.store, self.box, avatars=data_dir / "avatars")
        self.local_online: dict[str, str] = {}  # people whose phone is on this box: name
        self.snapshot: list[list[str]] = []  # the same as a list, for the NATS thread
        self.heard: dict[str, float] = {}  # box -> when its last presence snapshot came
        self.calls_at: dict[str, str] = {}  # call id -> the box that holds the call
        # Room calls: those held here (room -> call id), as last told to the other
        # boxes, and those the other boxes hold (room -> box).
        self.room_calls_here: dict[str, str] = {}
        self.room_calls_started: dict[str, int] = {}  # room -> when its call here started
        self.room_calls_at: dict[str, str] = {}
        # Who is in a call: those held here (as last told to the other boxes), and
        # those the other boxes hold (box -> people), for the "busy" status.
        self.busy_here: list[str] = []
        self.busy_at: dict[str, frozenset[str]] = {}
        self._busy_elsewhere: frozenset[str] = frozenset()
        self.applying = False
        # Ids of the last messages for phones here (sent two ways, taken once).
        self._seen_live: set[str] = set()
        self._seen_live_order: deque[str] = deque(maxlen=4096)
        # Streams whose records this box failed to apply: ignored until the bridge
        # reads them again from the stored position (positions only move with
        # what was applied, so nothing is skipped).
        self.failed: set[str] = set()
        self.data_dir = data_dir
        self._next_discovery = 0.0
        self.counters = {"applied": 0, "forwarded": 0, "bad_records": 0, "live_in": 0}
        paths = site.SitePaths(site.site_dir(data_dir))

        def tls() -> ssl.SSLContext:
            context = ssl.create_default_context(cafile=str(paths.ca))
            context.check_hostname = False  # the site CA is the identity, not a name
            context.load_cert_chain(str(paths.cert), str(paths.key))
            return context

        def own_url() -> str:
            # The server listens on the backbone address alone (docs/site.md): the
            # rendered config says which; that address is this box's own, so the
            # connection never leaves the box.
            listen = site.rendered_listen(paths)
            return f"tls://{listen[0] if listen else site.LOOPBACK}:{own_port}"

        self.inbox = Inbox(self._handle)
        self.bridge = Bridge(
            BridgeConfig(box=self.box, site_name=site_name, own_url=own_url(),
                         own_url_now=own_url,
                         peer_urls=tuple(f"tls://{peer}" for peer in peers),
                         db_path=Path(hub.store.path), password=site.nats_password(
                             secret, site_name), user=site.NATS_USER, tls=tls),
            deliver=self.inbox.put, waiting=lambda: len(self.inbox),
            online_snapshot=lambda: self.snapshot, room_calls=lambda: self.room_calls_here,
            busy=lambda: self.busy_here, room_calls_started=lambda: self.room_calls_started)
        self.removed = read_removed(data_dir)
        self.bridge.removed = self.removed

    @classmethod
    def for_box(cls, hub: Hub, data_dir: Path, site_name: str, peers: tuple[str, ...],
                own_port: int) -> SiteLink | None:
        """The link for a box in a site, None (with a log line) when it has no secret."""
        secret = credentials.read_site_secret(data_dir)
        if secret is None:
            log.error("site_name is %s but this box has no site secret: it works alone",
                      site_name)
            return None
        return cls(hub, data_dir, site_name, peers, own_port, secret)

    def start(self) -> None:
        with self.hub.lock:
            self.replica.record_own()
            self.hub.site = self
            room = self.hub.rooms.get(self.hub.default_room)
            if room is not None and not self.replica.known(f"room:{room.id}"):
                # Every box makes the site's default room alike (appliance.app.site_room_id).
                self.replica.note_room(room, int(self.clock() * 1000))
        self.bridge.start()
        self.bridge.poke_outbox()

    def stop(self) -> None:
        self.bridge.stop()
        self.inbox.close()

    def status(self) -> dict[str, Any]:
        """For the admin page and /healthz: this box, its links, what waits."""
        with self.hub.lock:
            remote: dict[str, int] = {}
            for session in self.hub.presence.sessions():
                if isinstance(session.peer, RemotePeer):
                    remote[session.peer.box] = remote.get(session.peer.box, 0) + 1
            outbox = self.replica.outbox_size()
        bridge = self.bridge.status()
        for link in bridge["links"]:
            link["phones"] = remote.get(link["box"] or "", 0)
        return {"site": self.site_name, "box": self.box, "phones": len(self.local_online),
                "outbox": outbox, "waiting": len(self.inbox), **bridge,
                "counters": dict(self.counters)}

    def health(self) -> dict[str, Any]:
        """For /healthz, which phones may read: counts, no names or addresses."""
        bridge = self.bridge.status()
        with self.hub.lock:
            outbox = self.replica.outbox_size()
        return {"box": self.box, "own_server": bridge["own"]["state"],
                "linked": sum(1 for link in bridge["links"] if link["state"] == "connected"),
                "refused": sum(1 for link in bridge["links"] if link["state"] == "refused"),
                "boxes": len(bridge["links"]) + 1,
                "lag": sum(link["lag"] for link in bridge["links"]),
                "outbox": outbox, "waiting": len(self.inbox)}

    # -- the admin ------------------------------------------------------------------

    def remove_box(self, box: str) -> None:
        """Take a dead box off the site, as this box sees it: stop reading its stream,
        drop it from the list and its phones from presence. Every message already
        received stays. Raises Refused (with words for the admin)."""
        if not site.BOX_ID.fullmatch(box):
            raise Refused(400, "A box is named by its 8-digit id, as the list shows it.")
        if box == self.box:
            raise Refused(409, "That is this box itself. To take it out of the site, "
                               "remove site_name from its ahoy.txt.")
        if box in self.removed:
            raise Refused(409, "That box is already removed from the site.")
        links = [link for link in self.bridge.status()["links"] if link["box"] == box]
        if not links and box not in self.heard:
            raise Refused(404, "No box with that id is known to this box.")
        if any(link["state"] == "connected" for link in links):
            raise Refused(409, "That box is linked right now: it is not dead. Switch it "
                               "off (or remove site_name from its ahoy.txt) first.")
        self._set_removed(self.removed | {box})
        self._box_gone(box)
        log.info("site: the admin removed box %s from the site", box)

    def add_box_again(self, box: str) -> None:
        """Undo a removal: the box is read again from where this box stopped."""
        if box not in self.removed:
            raise Refused(404, "That box is not removed from the site.")
        self._set_removed(self.removed - {box})
        log.info("site: the admin added box %s to the site again", box)

    def _set_removed(self, boxes: frozenset[str]) -> None:
        from provisioning.datadir import write_file

        text = "".join(f"{box}\n" for box in sorted(boxes))
        write_file(site.site_dir(self.data_dir) / REMOVED_FILE, text.encode())
        self.removed = boxes
        self.bridge.set_removed(boxes)

    # -- the hub tells the site (called under the hub's lock) ---------------------------

    def message_stored(self, message: StoredMessage) -> str | None:
        at = self.replica.number_own(message.conv, message.seq)
        self.inbox.put(("flush",))
        return at

    def positions(self, conv: str, wires: list[dict[str, Any]]) -> None:
        found = self.replica.positions_of(conv, [w["seq"] for w in wires])
        for wire in wires:
            at = found.get(wire["seq"])
            if at is not None:
                wire["at"] = at

    def missed(self, conv: str, seen: dict[str, int]) -> tuple[list[StoredMessage], bool]:
        return self.replica.missed(conv, seen, MISSED_LIMIT)

    def user_changed(self, user_id: str) -> None:
        session = self.hub.presence.session(user_id)
        if session is not None and not isinstance(session.peer, RemotePeer):
            if self.local_online.get(user_id) != session.name:
                self.local_online[user_id] = session.name
                self._snapshot_changed()
                self.send_live(None, "online", None,
                               {"users": [[user_id, session.name]], "full": False})
            if self.replica.note_user(user_id, int(self.clock() * 1000)):
                self.bridge.poke_outbox()
        elif user_id in self.local_online:
            del self.local_online[user_id]
            self._snapshot_changed()
            if session is None:
                # Gone from here; if their phone is on another box now, that box says so.
                self.send_live(None, "offline", user_id, None)

    def _snapshot_changed(self) -> None:
        self.snapshot = [[u, n] for u, n in self.local_online.items()]

    def rooms_changed(self, effects: list[Effect]) -> None:
        if self.applying:
            return
        now = int(self.clock() * 1000)
        noted = False
        for effect in effects:
            match effect:
                case SaveRoom(room):
                    self.replica.note_room(room, now)
                case AddMember(room_id, user_id, role):
                    self.replica.note_member(room_id, user_id, role, now)
                case RemoveMember(room_id, user_id):
                    self.replica.note_member(room_id, user_id, None, now)
                case SetRole(room_id, user_id, role):
                    self.replica.note_member(room_id, user_id, role, now)
                case SetInvite(room_id, user_id, kind, by):
                    self.replica.note_invite(room_id, user_id, kind, now, by)
                case DeleteRoom(room_id, delete_messages):
                    gone = Room(room_id, "", "", 0, False, delete_messages, "-", 0)
                    self.replica.note_room(gone, now, deleted=True)
                case _:
                    continue
            noted = True
        if noted:
            self.bridge.poke_outbox()

    def reacted(self, conv: str, seq: int, user_id: str, emoji: str, on: bool) -> None:
        self.replica.record_own()  # the message must have its position first
        if self.replica.note_reaction(conv, seq, user_id, emoji, on, int(self.clock() * 1000)):
            self.bridge.poke_outbox()

    def avatar_changed(self, user_id: str) -> None:
        try:
            picture = (self.data_dir / "avatars" / f"{user_id}.webp").read_bytes()
        except OSError:
            return
        if self.replica.note_avatar(user_id, picture, int(self.clock() * 1000)):
            self.bridge.poke_outbox()

    def message_deleting(self, conv: str, seq: int) -> None:
        self.replica.record_own()  # the message must have its position first
        if self.replica.note_deletion(conv, seq, int(self.clock() * 1000)):
            self.bridge.poke_outbox()

    def calls_changed(self) -> None:
        """Tell the other boxes which room calls this box holds (one room, one call
        on the whole site: joining it on another box goes to this one), and who is
        in the calls held here (busy on every box)."""
        held = [c for c in self.hub.calls.active() if c.room is not None]
        now = {c.room: c.id for c in held if c.room is not None}
        busy = sorted(self.hub.calls.busy_users())
        if now != self.room_calls_here or busy != self.busy_here:
            self.room_calls_here = now
            self.room_calls_started = {c.room: c.started for c in held if c.room is not None}
            self.busy_here = busy
            self.send_live(None, "calls", None, {"calls": now, "busy": busy,
                                                 "started": self.room_calls_started})

    def busy_elsewhere(self) -> frozenset[str]:
        return self._busy_elsewhere

    def forward(self, user_id: str, request: Request) -> bool:
        """Send a call request to the box that holds the call; True if it went there."""
        if not (request.type.startswith("call_") or request.type == "signal"):
            return False
        call_id = request.get("call")
        box = self.calls_at.get(call_id) if call_id is not None else None
        if request.type == "call_join":
            room_id = request.get("room")
            if self.hub.calls.room_call(room_id) is None:
                box = self.room_calls_at.get(room_id)
        if box is None:
            return False
        if call_id is not None and any(call.id == call_id for call in self.hub.calls.active()):
            return False
        frame = {"type": request.type, **request.fields}
        if request.ref is not None:
            frame["ref"] = request.ref
        session = self.hub.presence.session(user_id)
        self.send_live(box, "frame", user_id, frame,
                       name=session.name if session is not None else None)
        return True

    def send_live(self, box: str | None, kind: str, user_id: str | None,
                  message: dict[str, Any] | None, name: str | None = None) -> None:
        body: dict[str, Any] = {"k": kind, "box": self.box}
        if kind in ("to", "frame"):
            # Sent two ways (see Bridge._publish_live): the id lets the box drop the copy.
            body.update(user=user_id, message=message, n=uuid.uuid4().hex[:16])
            if name is not None:
                body["name"] = name
            subject = f"site.{kind}.{box}"
        elif kind == "offline":
            body["user"] = user_id
            subject = f"site.live.{self.box}"
        else:
            body.update(message or {})
            subject = f"site.live.{self.box}"
        self.bridge.send_live(box, subject, encode_live(body))

    # -- the site tells the hub (the inbox, on the service's side) -------------------------

    def _handle(self, batch: list[tuple[Any, ...]]) -> None:
        records = []
        flush = False
        for item in batch:
            kind = item[0]
            if kind == "record":
                _, server, stream_seq, data = item
                if server in self.failed:
                    continue
                try:
                    records.append((server, stream_seq, decode(data), data))
                except BadRecord as exc:
                    self.counters["bad_records"] += 1
                    log.warning("site: a record from %s (#%d) cannot be used: %s", server,
                                stream_seq, exc)
            elif kind == "flush":
                flush = True
            else:
                if records:
                    self._apply(records)
                    records = []
                if kind == "resume":
                    self.failed.discard(item[1])
                elif kind == "live":
                    self._on_live(item[1])
                elif kind == "gone":
                    self._box_gone(item[1])
        if records:
            self._apply(records)
        elif flush:
            with self.hub.lock:
                if self.replica.record_own():
                    self.bridge.poke_outbox()
        self._forget_silent_boxes()
        if self.clock() >= self._next_discovery:
            self._next_discovery = self.clock() + DISCOVERY_EVERY_S
            self._discover()

    def _discover(self) -> None:
        """Link to the boxes the backbone heard (provisioning.backbone writes them)."""
        from provisioning.backbone import read_status

        status = read_status(self.data_dir) or {}
        for peer in status.get("peers") or []:
            if not isinstance(peer, dict):
                continue
            address, port = peer.get("backbone"), peer.get("nats_port", SITE_PORT)
            try:
                host = str(ip_address(str(address)))
            except ValueError:
                continue
            if isinstance(port, int) and 0 < port < 65536:
                self.bridge.add_peer(f"tls://{host}:{port}")

    def _apply(self, records: list[Any]) -> None:
        with self.hub.lock:
            try:
                applied = self.replica.apply(records)
            except Exception:
                # A full disk, a damaged database: read these streams again from
                # where this box stopped, once the links are made anew.
                log.exception("site: applying %d records failed; reading them again",
                              len(records))
                self.failed |= {server for server, *_ in records}
                self.bridge.reset_links()
                return
            self.counters["applied"] += len(records)
            self.counters["forwarded"] += applied.forwarded
            self._tell_hub(applied)
        self.bridge.poke_outbox()

    def _tell_hub(self, applied: Applied) -> None:
        self.applying = True
        try:
            self.hub.site_applied(applied.messages, applied.positions, applied.users,
                                  applied.rooms, applied.deleted_rooms, applied.reactions,
                                  applied.deleted_messages, applied.invites, applied.joined)
        finally:
            self.applying = False

    def _on_live(self, data: bytes) -> None:
        try:
            body = decode_live(data)
        except BadRecord as exc:
            log.warning("site: a live event cannot be used: %s", exc)
            return
        self.counters["live_in"] += 1
        box = body["box"]
        if box == self.box or box in self.removed:
            return
        kind = body["k"]
        if "n" in body:
            if body["n"] in self._seen_live:
                return  # the second copy of something sent two ways
            if len(self._seen_live_order) == self._seen_live_order.maxlen:
                self._seen_live.discard(self._seen_live_order[0])
            self._seen_live_order.append(body["n"])
            self._seen_live.add(body["n"])
        yielding: list[tuple[str, str]] = []
        with self.hub.lock:
            if kind == "online":
                self.heard[box] = self.clock()
                self._remote_online(box, body["users"], body["full"])
                if body["full"]:
                    yielding = self._remote_calls(box, body.get("calls") or {},
                                                  body.get("started") or {})
                    self._remote_busy(box, body.get("busy") or [])
            elif kind == "calls":
                yielding = self._remote_calls(box, body["calls"], body.get("started") or {})
                self._remote_busy(box, body.get("busy") or [])
            elif kind == "offline":
                self._remote_offline(box, body["user"])
            elif kind == "to":
                peer = self.hub.presence.peer(body["user"])
                if peer is None or isinstance(peer, RemotePeer):
                    return
                message = body["message"]
                call_id = message.get("call")
                if isinstance(call_id, str) and message.get("type", "").startswith("call_"):
                    if not any(c.id == call_id for c in self.hub.calls.active()):
                        self.calls_at[call_id] = box
                        room_id = message.get("room")
                        if isinstance(room_id, str) and message["type"] == "call_incoming":
                            # Ringing for a room call: joining it goes to that box.
                            self.room_calls_at[room_id] = box
                peer.send(message)
            elif kind == "frame":
                peer = self.hub.presence.peer(body["user"])
                if peer is None and "name" in body:
                    # A request from a phone on that box that this box has not heard
                    # of yet (the boxes just linked, its snapshot is on the way).
                    self._remote_online(box, [[body["user"], body["name"]]], full=False)
                    peer = self.hub.presence.peer(body["user"])
                if isinstance(peer, RemotePeer) and peer.box == box:
                    self.hub.handle(peer, json.dumps(body["message"]))
        for room_id, winner in yielding:
            self.hub.yield_room_call(room_id, winner)

    def _remote_online(self, box: str, users: list[list[str]], full: bool) -> None:
        named = {user_id: name for user_id, name in users}
        for user_id, name in named.items():
            current = self.hub.presence.peer(user_id)
            if isinstance(current, RemotePeer) and current.box == box:
                session = self.hub.presence.session(user_id)
                if session is not None and session.name == name:
                    continue
            elif current is not None and full:
                continue  # a snapshot does not take someone from where they just came
            self.hub.attach_remote(RemotePeer(self, box, user_id), user_id, name)
        if full:
            for session in self.hub.presence.sessions():
                peer = session.peer
                if isinstance(peer, RemotePeer) and peer.box == box and \
                        session.user_id not in named:
                    self.hub.disconnect(peer)

    def _remote_calls(self, box: str, calls: dict[str, str],
                      started: dict[str, int]) -> list[tuple[str, str]]:
        """Note the room calls another box holds; returns the rooms whose call here
        must give way to that box's, with the call to join instead."""
        for room_id in [r for r, b in self.room_calls_at.items() if b == box]:
            if room_id not in calls:
                del self.room_calls_at[room_id]
        yielding = []
        for room_id, call_id in calls.items():
            own = self.hub.calls.room_call(room_id)
            if own is not None and own.id != call_id:
                theirs = (started.get(room_id, own.started), box)
                if first_room_call(theirs, (own.started, self.box or "")) != theirs:
                    continue  # ours came first: the other box gives way
                yielding.append((room_id, call_id))
            self.room_calls_at[room_id] = box
            self.calls_at[call_id] = box
        return yielding

    def _remote_busy(self, box: str, users: list[str]) -> None:
        now = frozenset(users)
        before = self.busy_at.get(box, frozenset())
        if now == before:
            return
        if now:
            self.busy_at[box] = now
        else:
            self.busy_at.pop(box, None)
        self._busy_elsewhere = frozenset().union(*self.busy_at.values())
        self.hub.site_busy_changed(now ^ before)

    def _remote_offline(self, box: str, user_id: str) -> None:
        peer = self.hub.presence.peer(user_id)
        if isinstance(peer, RemotePeer) and peer.box == box:
            self.hub.disconnect(peer)

    def _box_gone(self, box: str) -> None:
        self.heard.pop(box, None)
        self._remote_calls(box, {}, {})
        with self.hub.lock:
            self._remote_busy(box, [])
            for session in self.hub.presence.sessions():
                peer = session.peer
                if isinstance(peer, RemotePeer) and peer.box == box:
                    self.hub.disconnect(peer)

    def _forget_silent_boxes(self) -> None:
        now = self.clock()
        for box, heard in list(self.heard.items()):
            if now - heard > SILENT_AFTER_S:
                self._box_gone(box)
