"""This box's side of replication, in its own SQLite: what it sends, what it applied.

Tables beside the store's (same database, same connection, under the hub's
lock):

- `site_msgs`: for every message, the box that acknowledged it (`origin`)
  and its number there (`n`, 1, 2, 3 ... per origin box, over all
  conversations). (origin, n) is the message's site-wide position; the local
  `seq` stays gap-free per conversation on each box.
- `site_versions`: the version (time, box) of every person, room,
  membership, invitation or join request, and reaction, for last-writer-wins; a deleted room stays
  deleted, and so does a message an admin deleted (`deleted:<sender>:<id>`).
- `site_outbox`: records to publish to this box's own stream, written in the
  same transaction as the change they carry, deleted once JetStream has
  acknowledged them (the bridge does both).
- `site_positions`: how far this box has applied each other box's stream, in
  the same transaction as what it applied.

Own messages are numbered when they are stored (in memory, under the hub's
lock) and written down in batches; a message the box acknowledged but had
not written down before a crash is found at the next start and gets the same
number (the numbers follow the messages' order of storage).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..rooms import Room
from ..store import _MESSAGE_COLUMNS, Conv, Store, StoredMessage
from .records import (
    MAX_AVATAR_BYTES,
    AvatarRecord,
    DeletionRecord,
    InviteRecord,
    MemberRecord,
    MessageRecord,
    ReactionRecord,
    Record,
    RoomRecord,
    UserRecord,
    Version,
    encode,
    subject,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS site_msgs (
    conv TEXT NOT NULL,
    seq INTEGER NOT NULL,
    origin TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (conv, seq),
    UNIQUE (origin, n)
);
CREATE TABLE IF NOT EXISTS site_versions (
    key TEXT PRIMARY KEY,
    ms INTEGER NOT NULL,
    box TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    digest TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS site_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS site_positions (
    server TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS site_parked (
    room TEXT NOT NULL,
    user TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (room, user)
);
"""


def position(origin: str, n: int) -> str:
    """A message's site-wide position as phones see it: "<box>:<n>"."""
    return f"{origin}:{n}"


@dataclass
class Applied:
    """What a batch of records from other boxes changed here."""

    messages: list[StoredMessage] = field(default_factory=list)
    positions: dict[tuple[str, int], str] = field(default_factory=dict)  # (conv, seq) -> at
    users: list[str] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)
    deleted_rooms: list[str] = field(default_factory=list)
    reactions: list[tuple[str, int, str, str, bool]] = field(default_factory=list)
    deleted_messages: list[tuple[str, int]] = field(default_factory=list)  # (conv, seq)
    joined: list[tuple[str, str]] = field(default_factory=list)  # new members (room, person)
    # New invitations and join requests: (room, person, "invite"/"request", inviter).
    invites: list[tuple[str, str, str, str]] = field(default_factory=list)
    forwarded: int = 0


class Replica:
    """The site tables of one box's database. Not thread-safe: the hub's lock."""

    def __init__(self, store: Store, box: str, avatars: Path | None = None) -> None:
        self.store = store
        self.db = store.db
        self.box = box
        self.avatars = avatars  # the folder of profile pictures (<user id>.webp)
        self.db.executescript(SCHEMA)
        # Own messages numbered but not yet written to site_msgs: (conv, seq) -> n.
        self.pending: dict[tuple[str, int], int] = {}
        self.next_n = self._last_own_n() + 1

    def _last_own_n(self) -> int:
        row = self.db.execute(
            "SELECT MAX(n) FROM site_msgs WHERE origin = ?", (self.box,)).fetchone()
        return int(row[0] or 0)

    def _transaction(self, work: Any) -> Any:
        """`work` as one atomic write, committed before this returns (in the hub's
        group commit when it batches: what the bridge publishes must be on disk)."""
        result = self.store.write(work)
        if self.store.batched:
            self.store.commit_pending()
        return result

    # -- own messages ------------------------------------------------------------

    def number_own(self, conv: str, seq: int) -> str:
        """Number a message this box just acknowledged; its position."""
        n = self.next_n
        self.next_n += 1
        self.pending[(conv, seq)] = n
        return position(self.box, n)

    def record_own(self) -> int:
        """Write down the numbered own messages, and any the box acknowledged but
        never wrote down (a crash), with their records in the outbox. Returns how many."""
        self.pending.clear()
        rows = self.db.execute(
            f"SELECT {', '.join('m.' + c.strip() for c in _MESSAGE_COLUMNS.split(','))}"
            " FROM messages m LEFT JOIN site_msgs s ON s.conv = m.conv AND s.seq = m.seq"
            " WHERE s.conv IS NULL ORDER BY m.rowid LIMIT 5000").fetchall()
        if not rows:
            return 0
        first = self._last_own_n() + 1

        def work() -> None:
            for offset, row in enumerate(rows):
                message = StoredMessage(*row)
                n = first + offset
                self.db.execute("INSERT INTO site_msgs (conv, seq, origin, n) VALUES (?, ?, ?, ?)",
                                (message.conv, message.seq, self.box, n))
                self._to_outbox(MessageRecord(
                    origin=self.box, n=n, conv=message.conv, id=message.id,
                    sender=message.sender, name=message.name, text=message.text,
                    ts=message.ts, reply_to=self._reply_key(message.conv, message.reply_to)))

        self._transaction(work)
        self.next_n = max(self.next_n, first + len(rows))
        return len(rows)

    def _reply_key(self, conv: str, seq: int | None) -> tuple[str, str] | None:
        if seq is None:
            return None
        row = self.db.execute("SELECT sender, msg_id FROM messages WHERE conv = ? AND seq = ?",
                              (conv, seq)).fetchone()
        return (row[0], row[1]) if row else None

    def _to_outbox(self, record: Record, body: bytes | None = None) -> None:
        self.db.execute("INSERT INTO site_outbox (subject, msg_id, body) VALUES (?, ?, ?)",
                        (subject(record), record.msg_id, body or encode(record)))

    # -- positions -----------------------------------------------------------------

    def positions_of(self, conv: str, seqs: Iterable[int]) -> dict[int, str]:
        """The site-wide position of these messages of `conv` (those that have one)."""
        wanted = sorted(set(seqs))
        if not wanted:
            return {}
        found = {seq: position(self.box, n) for (c, seq), n in self.pending.items()
                 if c == conv and seq in wanted}
        for seq, origin, n in self.db.execute(
            "SELECT seq, origin, n FROM site_msgs WHERE conv = ? AND seq BETWEEN ? AND ?",
            (conv, wanted[0], wanted[-1]),
        ):
            found[seq] = position(origin, n)
        return found

    def missed(self, conv: str, seen: dict[str, int],
               limit: int) -> tuple[list[StoredMessage], bool]:
        """The messages of `conv` a phone that has seen, of every box, the messages
        numbered up to `seen[box]` has not: its exact catch-up on this box.

        Works because every box applies each other box's messages in their
        numbering order (a box's stream keeps that order), so what a phone has
        seen of any one box is always a prefix.
        """
        self.record_own()
        known = [(box, n) for box, n in seen.items()]
        clauses = " AND ".join(["NOT (s.origin = ? AND s.n <= ?)"] * len(known)) or "1"
        params: list[Any] = [conv]
        for box, n in known:
            params += [box, n]
        rows = self.db.execute(
            f"SELECT {', '.join('m.' + c.strip() for c in _MESSAGE_COLUMNS.split(','))}"
            " FROM messages m JOIN site_msgs s ON s.conv = m.conv AND s.seq = m.seq"
            f" WHERE m.conv = ? AND {clauses} ORDER BY m.seq LIMIT ?",
            (*params, limit + 1),
        ).fetchall()
        messages = [StoredMessage(*r) for r in rows[:limit]]
        return messages, len(rows) > limit

    def stream_position(self, server: str) -> int:
        row = self.db.execute("SELECT seq FROM site_positions WHERE server = ?",
                              (server,)).fetchone()
        return int(row[0]) if row else 0

    # -- own changes to people and rooms -----------------------------------------

    def _newer_version(self, key: str, now: int) -> Version:
        row = self.db.execute("SELECT ms FROM site_versions WHERE key = ?", (key,)).fetchone()
        return Version(max(now, int(row[0]) + 1) if row else now, self.box)

    def note_user(self, user_id: str, now: int) -> bool:
        """Publish a person's record if it changed since this box last did."""
        row = self.db.execute(
            "SELECT token_hash, name, created, colour, status_text FROM users WHERE id = ?",
            (user_id,)).fetchone()
        if row is None:
            return False
        digest = hashlib.sha256(repr(tuple(row)).encode()).hexdigest()[:16]
        key = f"user:{user_id}"
        old = self.db.execute("SELECT digest FROM site_versions WHERE key = ?", (key,)).fetchone()
        if old is not None and old[0] == digest:
            return False
        version = self._newer_version(key, now)
        record = UserRecord(user_id, row[0], row[1], row[2], row[3], row[4], version)

        def work() -> None:
            self._set_version(key, version, digest=digest)
            self._to_outbox(record)

        self._transaction(work)
        return True

    def note_room(self, room: Room, now: int, deleted: bool = False) -> None:
        key = f"room:{room.id}"
        version = self._newer_version(key, now)
        record = RoomRecord(room.id, room.name, room.description, room.limit, room.active,
                            room.ephemeral, room.owner, room.created, room.visibility,
                            room.approval, room.invite_code, deleted, version)

        def work() -> None:
            self._set_version(key, version, deleted=deleted)
            self._to_outbox(record)

        self._transaction(work)

    def note_member(self, room_id: str, user_id: str, role: str | None, now: int) -> None:
        key = f"member:{room_id}:{user_id}"
        version = self._newer_version(key, now)

        def work() -> None:
            self._set_version(key, version)
            self._to_outbox(MemberRecord(room_id, user_id, role, version))

        self._transaction(work)

    def note_invite(self, room_id: str, user_id: str, invite: str | None, now: int,
                    by: str = "") -> None:
        key = f"invite:{room_id}:{user_id}"
        version = self._newer_version(key, now)

        def work() -> None:
            self._set_version(key, version)
            self._to_outbox(InviteRecord(room_id, user_id, invite, version, by))

        self._transaction(work)

    def note_avatar(self, user_id: str, picture: bytes, now: int) -> bool:
        """A person here set a new profile picture: every box shows it (the later wins)."""
        if not 0 < len(picture) <= MAX_AVATAR_BYTES:
            return False  # cannot happen with the box's own re-encoding; not sent
        key = f"avatar:{user_id}"
        record = AvatarRecord(user_id, base64.b64encode(picture).decode(),
                              self._newer_version(key, now))

        def work() -> None:
            self._set_version(key, record.version)
            self._to_outbox(record)

        self._transaction(work)
        return True

    def known(self, key: str) -> bool:
        """Whether this box has a version of the person, room or membership `key`."""
        return self.db.execute("SELECT 1 FROM site_versions WHERE key = ?",
                               (key,)).fetchone() is not None

    def note_reaction(self, conv: str, seq: int, user_id: str, emoji: str, on: bool,
                      now: int) -> bool:
        target = self._reply_key(conv, seq)
        if target is None:
            return False
        probe = ReactionRecord(conv, target[0], target[1], user_id, emoji, on, Version(0, ""))
        version = self._newer_version(probe.key, now)
        record = ReactionRecord(conv, target[0], target[1], user_id, emoji, on, version)

        def work() -> None:
            self._set_version(record.key, version)
            self._to_outbox(record)

        self._transaction(work)
        return True

    def note_deletion(self, conv: str, seq: int, now: int) -> bool:
        """An admin here is deleting a message: delete it on every box, for good.

        The message goes from this box's store in the same transaction that
        records the deletion for the others: a crash cannot keep it here while
        the site deletes it, nor share a deletion this box did not make."""
        target = self._reply_key(conv, seq)
        if target is None:
            return False
        probe = DeletionRecord(conv, target[0], target[1], Version(0, ""))
        record = DeletionRecord(conv, target[0], target[1], self._newer_version(probe.key, now))

        def work() -> None:
            self._set_version(record.key, record.version, deleted=True)
            self._to_outbox(record)
            self.db.execute("DELETE FROM messages WHERE conv = ? AND seq = ?", (conv, seq))

        self._transaction(work)
        return True

    def _set_version(self, key: str, version: Version, *, deleted: bool = False,
                     digest: str = "") -> None:
        self.db.execute(
            "INSERT INTO site_versions (key, ms, box, deleted, digest) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET ms = excluded.ms, box = excluded.box,"
            " deleted = excluded.deleted, digest = excluded.digest",
            (key, version.ms, version.box, int(deleted), digest))

    def _wins(self, key: str, version: Version) -> bool:
        """Whether a change of `version` replaces what this box has (last writer wins;
        nothing replaces a deleted room)."""
        row = self.db.execute("SELECT ms, box, deleted FROM site_versions WHERE key = ?",
                              (key,)).fetchone()
        if row is None:
            return True
        if row[2]:
            return False
        return version > Version(int(row[0]), row[1])

    # -- applying other boxes' records -------------------------------------------

    def apply(self, batch: list[tuple[str, int, Record, bytes]]) -> Applied:
        """Apply records from other boxes' streams (server, stream seq, record, raw
        body) in one transaction, with the stream positions; re-publish what was new."""
        applied = Applied()
        self.record_own()

        def work() -> None:
            furthest: dict[str, int] = {}
            for server, stream_seq, record, body in batch:
                furthest[server] = max(furthest.get(server, 0), stream_seq)
                if self._apply_one(record, applied):
                    self._to_outbox(record, body)
                    applied.forwarded += 1
            for server, seq in furthest.items():
                self.db.execute(
                    "INSERT INTO site_positions (server, seq) VALUES (?, ?) ON CONFLICT(server)"
                    " DO UPDATE SET seq = MAX(seq, excluded.seq)", (server, seq))

        self._transaction(work)
        return applied

    def _apply_one(self, record: Record, applied: Applied) -> bool:
        if isinstance(record, MessageRecord):
            return self._apply_message(record, applied)
        if isinstance(record, UserRecord):
            return self._apply_user(record, applied)
        if isinstance(record, RoomRecord):
            return self._apply_room(record, applied)
        if isinstance(record, ReactionRecord):
            return self._apply_reaction(record, applied)
        if isinstance(record, DeletionRecord):
            return self._apply_deletion(record, applied)
        if isinstance(record, InviteRecord):
            return self._apply_invite(record, applied)
        if isinstance(record, AvatarRecord):
            return self._apply_avatar(record, applied)
        return self._apply_member(record, applied)

    def _apply_avatar(self, record: AvatarRecord, applied: Applied) -> bool:
        if self.avatars is None or not self._wins(record.key, record.version):
            return False
        self.avatars.mkdir(parents=True, exist_ok=True)
        draft = self.avatars / f"{record.user}.site.tmp"
        draft.write_bytes(record.image())
        os.replace(draft, self.avatars / f"{record.user}.webp")
        self._set_version(record.key, record.version)
        # A new version number: phones fetch the new picture, not their cached one.
        self.db.execute("UPDATE users SET avatar = avatar + 1 WHERE id = ?", (record.user,))
        applied.users.append(record.user)
        return True

    def _apply_invite(self, record: InviteRecord, applied: Applied) -> bool:
        if self._is_deleted(f"room:{record.room}") or not self._wins(record.key,
                                                                      record.version):
            return False
        self._set_version(record.key, record.version)
        if self.db.execute("SELECT 1 FROM rooms WHERE id = ?", (record.room,)).fetchone():
            self._write_invite(record)
            applied.rooms.append(record.room)
            if record.invite is not None:
                applied.invites.append((record.room, record.user, record.invite, record.by))
        else:  # the room's own record is on its way
            self.db.execute(
                "INSERT INTO site_parked (room, user, body) VALUES (?, ?, ?)"
                " ON CONFLICT(room, user) DO UPDATE SET body = excluded.body",
                (record.room, f"invite:{record.user}", encode(record)))
        return True

    def _write_invite(self, record: InviteRecord) -> None:
        if record.invite is None:
            self.db.execute("DELETE FROM room_invites WHERE room_id = ? AND user_id = ?",
                            (record.room, record.user))
        else:
            self.db.execute(
                "INSERT INTO room_invites (room_id, user_id, kind, created) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(room_id, user_id) DO UPDATE SET kind = excluded.kind",
                (record.room, record.user, record.invite, record.version.ms))

    def _apply_deletion(self, record: DeletionRecord, applied: Applied) -> bool:
        if self._is_deleted(record.key):
            return False
        # Kept even before the message is here: it is not stored when it comes.
        self._set_version(record.key, record.version, deleted=True)
        row = self.db.execute(
            "SELECT seq FROM messages WHERE conv = ? AND sender = ? AND msg_id = ?",
            (record.conv, record.sender, record.id)).fetchone()
        if row is not None:
            self.db.execute("DELETE FROM messages WHERE conv = ? AND seq = ?",
                            (record.conv, int(row[0])))
            applied.deleted_messages.append((record.conv, int(row[0])))
        return True

    def _apply_reaction(self, record: ReactionRecord, applied: Applied) -> bool:
        row = self.db.execute(
            "SELECT seq FROM messages WHERE conv = ? AND sender = ? AND msg_id = ?",
            (record.conv, record.sender, record.id)).fetchone()
        if row is None or not self._wins(record.key, record.version):
            return False  # a message this box no longer has (retention), or an older change
        self._set_version(record.key, record.version)
        seq = int(row[0])
        if record.on:
            self.db.execute("INSERT OR IGNORE INTO reactions (conv, seq, user_id, emoji)"
                            " VALUES (?, ?, ?, ?)", (record.conv, seq, record.user, record.emoji))
        else:
            self.db.execute("DELETE FROM reactions WHERE conv = ? AND seq = ? AND user_id = ?"
                            " AND emoji = ?", (record.conv, seq, record.user, record.emoji))
        applied.reactions.append((record.conv, seq, record.user, record.emoji, record.on))
        return True

    def _apply_message(self, record: MessageRecord, applied: Applied) -> bool:
        if record.origin == self.box:
            return False
        if self._is_deleted(f"deleted:{record.sender}:{record.id}"):
            return False  # an admin deleted it before it reached this box
        if self.db.execute("SELECT 1 FROM messages WHERE sender = ? AND msg_id = ?",
                           (record.sender, record.id)).fetchone():
            return False
        if self.db.execute("SELECT 1 FROM site_msgs WHERE origin = ? AND n = ?",
                           (record.origin, record.n)).fetchone():
            return False
        reply_to = None
        if record.reply_to is not None:
            row = self.db.execute(
                "SELECT seq FROM messages WHERE conv = ? AND sender = ? AND msg_id = ?",
                (record.conv, *record.reply_to)).fetchone()
            reply_to = int(row[0]) if row else None
        people = Conv(record.conv).people
        users = (people[0], people[1]) if people else (None, None)
        self.db.execute(
            "INSERT INTO convs (conv, last_seq, user_a, user_b) VALUES (?, 1, ?, ?)"
            " ON CONFLICT(conv) DO UPDATE SET last_seq = last_seq + 1", (record.conv, *users))
        (seq,) = self.db.execute("SELECT last_seq FROM convs WHERE conv = ?",
                                 (record.conv,)).fetchone()
        self.db.execute(
            f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record.conv, seq, record.id, record.sender, record.name, record.text, record.ts,
             reply_to))
        self.db.execute("INSERT INTO site_msgs (conv, seq, origin, n) VALUES (?, ?, ?, ?)",
                        (record.conv, seq, record.origin, record.n))
        message = StoredMessage(record.conv, int(seq), record.id, record.sender, record.name,
                                record.text, record.ts, reply_to)
        applied.messages.append(message)
        applied.positions[(record.conv, int(seq))] = position(record.origin, record.n)
        return True

    def _apply_user(self, record: UserRecord, applied: Applied) -> bool:
        key = f"user:{record.id}"
        if not self._wins(key, record.version):
            return False
        # Another person may hold this token hash only if it is a copy of this
        # one; a clash would be a bug elsewhere, and the newer record wins.
        self.db.execute("DELETE FROM users WHERE token_hash = ? AND id != ?",
                        (record.token_hash, record.id))
        self.db.execute(
            "INSERT INTO users (id, token_hash, name, created, colour, status_text)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
            " token_hash = excluded.token_hash, name = excluded.name,"
            " colour = excluded.colour, status_text = excluded.status_text",
            (record.id, record.token_hash, record.name, record.created, record.colour,
             record.status_text))
        if self.avatars is not None and (self.avatars / f"{record.id}.webp").exists():
            # Their picture came before them (from another box's stream).
            self.db.execute("UPDATE users SET avatar = MAX(avatar, 1) WHERE id = ?",
                            (record.id,))
        row = self.db.execute(
            "SELECT token_hash, name, created, colour, status_text FROM users WHERE id = ?",
            (record.id,)).fetchone()
        digest = hashlib.sha256(repr(tuple(row)).encode()).hexdigest()[:16]
        self._set_version(key, record.version, digest=digest)
        applied.users.append(record.id)
        return True

    def _apply_room(self, record: RoomRecord, applied: Applied) -> bool:
        key = f"room:{record.id}"
        if not self._wins(key, record.version) and not (
                record.deleted and not self._is_deleted(key)):
            return False
        if record.deleted:
            self.db.execute("DELETE FROM rooms WHERE id = ?", (record.id,))
            if record.ephemeral:
                conv = Conv.of_room(record.id)
                self.db.execute("DELETE FROM messages WHERE conv = ?", (conv,))
            self._set_version(key, record.version, deleted=True)
            applied.deleted_rooms.append(record.id)
            return True
        self.db.execute(
            "INSERT INTO rooms (id, name, description, max_members, active, ephemeral, owner,"
            " created, visibility, approval, invite_code)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
            " name=excluded.name, description=excluded.description,"
            " max_members=excluded.max_members, active=excluded.active, owner=excluded.owner,"
            " visibility=excluded.visibility, approval=excluded.approval,"
            " invite_code=excluded.invite_code",
            (record.id, record.name, record.description, record.limit, int(record.active),
             int(record.ephemeral), record.owner, record.created, record.visibility,
             int(record.approval), record.invite_code))
        self._set_version(key, record.version)
        applied.rooms.append(record.id)
        from .records import decode

        for (body,) in self.db.execute("SELECT body FROM site_parked WHERE room = ?",
                                       (record.id,)).fetchall():
            parked = decode(body)
            if isinstance(parked, InviteRecord):
                self._write_invite(parked)
            else:
                assert isinstance(parked, MemberRecord)
                self._write_member(parked)
        self.db.execute("DELETE FROM site_parked WHERE room = ?", (record.id,))
        return True

    def _is_deleted(self, key: str) -> bool:
        row = self.db.execute("SELECT deleted FROM site_versions WHERE key = ?",
                              (key,)).fetchone()
        return bool(row and row[0])

    def _apply_member(self, record: MemberRecord, applied: Applied) -> bool:
        if self._is_deleted(f"room:{record.room}"):
            return False
        key = f"member:{record.room}:{record.user}"
        if not self._wins(key, record.version):
            return False
        self._set_version(key, record.version)
        if self.db.execute("SELECT 1 FROM rooms WHERE id = ?", (record.room,)).fetchone():
            if record.role is not None and not self.db.execute(
                    "SELECT 1 FROM members WHERE room_id = ? AND user_id = ?",
                    (record.room, record.user)).fetchone():
                applied.joined.append((record.room, record.user))
            self._write_member(record)
            applied.rooms.append(record.room)
        else:
            # The room's own record is on its way (from another box's stream).
            self.db.execute(
                "INSERT INTO site_parked (room, user, body) VALUES (?, ?, ?)"
                " ON CONFLICT(room, user) DO UPDATE SET body = excluded.body",
                (record.room, record.user, encode(record)))
        return True

    def _write_member(self, record: MemberRecord) -> None:
        if record.role is None:
            self.db.execute("DELETE FROM members WHERE room_id = ? AND user_id = ?",
                            (record.room, record.user))
            return
        self.db.execute(
            "INSERT INTO members (room_id, user_id, joined, role) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(room_id, user_id) DO UPDATE SET role = excluded.role",
            (record.room, record.user, record.version.ms, record.role))
        self.db.execute("DELETE FROM room_invites WHERE room_id = ? AND user_id = ?",
                        (record.room, record.user))

    # -- the outbox, read by the bridge thread on its own connection ----------------

    def outbox_size(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM site_outbox").fetchone()[0])
