"""The box's durable state in SQLite: identities, rooms, memberships and messages.

Messages are acknowledged only after `append_many` returns, which is after
the transaction commits. The database runs in WAL mode with `synchronous=FULL`,
so a commit that returned survives both a killed process and a pulled plug.
The hub commits all the messages that arrived while the previous commit ran
in one transaction (group commit): one fsync for many messages. While the hub
batches (`batched`), every other write (new identities, rooms, members) also
goes into the one open transaction, each write in a savepoint of its own, and
`commit_pending` commits them all with the next batch of messages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .rooms import Room

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    colour TEXT NOT NULL DEFAULT '',
    status_text TEXT NOT NULL DEFAULT '',
    avatar INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rooms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    max_members INTEGER NOT NULL,
    active INTEGER NOT NULL,
    ephemeral INTEGER NOT NULL,
    owner TEXT NOT NULL,
    created INTEGER NOT NULL,
    visibility TEXT NOT NULL DEFAULT 'public',
    approval INTEGER NOT NULL DEFAULT 0,
    invite_code TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS members (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    joined INTEGER NOT NULL,
    role TEXT NOT NULL DEFAULT 'member',
    PRIMARY KEY (room_id, user_id)
);
-- Invitations sent by the room's owner or moderators, and requests to join
-- rooms that need approval.
CREATE TABLE IF NOT EXISTS room_invites (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('invite', 'request')),
    created INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE TABLE IF NOT EXISTS convs (
    conv TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    user_a TEXT,
    user_b TEXT
);
CREATE INDEX IF NOT EXISTS convs_a ON convs(user_a);
CREATE INDEX IF NOT EXISTS convs_b ON convs(user_b);
CREATE TABLE IF NOT EXISTS messages (
    conv TEXT NOT NULL,
    seq INTEGER NOT NULL,
    msg_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    text TEXT NOT NULL,
    ts INTEGER NOT NULL,
    reply_to INTEGER,
    PRIMARY KEY (conv, seq),
    UNIQUE (sender, msg_id)
);
CREATE INDEX IF NOT EXISTS messages_ts ON messages(ts);
CREATE TABLE IF NOT EXISTS reactions (
    conv TEXT NOT NULL,
    seq INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    emoji TEXT NOT NULL,
    PRIMARY KEY (conv, seq, user_id, emoji),
    FOREIGN KEY (conv, seq) REFERENCES messages(conv, seq) ON DELETE CASCADE
);
"""


@dataclass(frozen=True)
class UserRecord:
    id: str
    name: str
    colour: str = ""
    status_text: str = ""
    avatar: int = 0  # a version number; 0 when there is no picture


@dataclass(frozen=True)
class StoredMessage:
    conv: str
    seq: int
    id: str
    sender: str
    name: str
    text: str
    ts: int
    reply_to: int | None = None
    reactions: tuple[tuple[str, str], ...] = ()  # (emoji, user id)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "type": "message",
            "conv": self.conv,
            "seq": self.seq,
            "id": self.id,
            "from": self.sender,
            "name": self.name,
            "text": self.text,
            "ts": self.ts,
        }
        if self.reply_to is not None:
            wire["reply_to"] = self.reply_to
        if self.reactions:
            grouped: dict[str, list[str]] = {}
            for emoji, user in self.reactions:
                grouped.setdefault(emoji, []).append(user)
            wire["reactions"] = grouped
        return wire


_MESSAGE_COLUMNS = "conv, seq, msg_id, sender, sender_name, text, ts, reply_to"


@dataclass(frozen=True)
class NewMessage:
    """A message to store: everything but its sequence number."""

    conv: str
    id: str
    sender: str
    name: str
    text: str
    ts: int
    reply_to: int | None = None


class Conv(str):
    """A conversation id: `room:<room id>`, or `dm:<a>:<b>` for the one-to-one
    chat of users a and b (sorted). A str, so it goes into SQLite and onto the
    wire as it is."""

    __slots__ = ()

    @classmethod
    def of_room(cls, room_id: str) -> Conv:
        return cls(f"room:{room_id}")

    @classmethod
    def between(cls, a: str, b: str) -> Conv:
        x, y = sorted((a, b))
        return cls(f"dm:{x}:{y}")

    @property
    def room_id(self) -> str | None:
        """The room's id, or None for a one-to-one chat."""
        return self[5:] if self.startswith("room:") else None

    @property
    def people(self) -> tuple[str, ...]:
        """The two user ids of a one-to-one chat; () for a room."""
        return tuple(self.split(":")[1:]) if self.startswith("dm:") else ()


class Store:
    """All SQLite access. Not thread-safe on its own: the hub serialises calls."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        # How a commit that waits for the disk is run. Under gevent the server
        # swaps in its thread pool, so an fsync does not freeze every connection.
        self.run_blocking: Callable[[Callable[[], Any]], Any] = lambda work: work()
        # Batched: writes wait in one open transaction for `commit_pending`;
        # `on_write` is called after each, so the committer knows.
        self.batched = False
        self.on_write: Callable[[], None] = lambda: None
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        if self.db.in_transaction:
            self._commit()
        self.db.close()

    def commit_pending(self) -> None:
        """Commit what batched writes gathered (one fsync); on failure roll all of
        it back and raise."""
        if not self.db.in_transaction:
            return
        try:
            self.run_blocking(self._commit)
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    @contextmanager
    def _transaction(self, offload: bool = True) -> Iterator[None]:
        """One SQLite transaction: all of the block's writes commit together or none do.

        The connection is in autocommit mode (isolation_level=None), where
        `with self.db:` would commit every statement on its own; BEGIN IMMEDIATE
        takes the write lock up front so the block never fails half-way on a busy
        database. With `offload`, the COMMIT (the fsync) goes to `run_blocking`,
        so the event loop keeps serving while the disk works.
        """
        if self.batched:
            if not self.db.in_transaction:
                self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("SAVEPOINT write")
            try:
                yield
                self.db.execute("RELEASE write")
            except BaseException:
                self.db.execute("ROLLBACK TO write")
                self.db.execute("RELEASE write")
                raise
            self.on_write()
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            if offload:
                self.run_blocking(self._commit)
            else:
                self._commit()
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def write(self, work: Callable[[], Any]) -> Any:
        """Run `work` (statements on `db`) as one atomic write and return its
        result: in batched mode in a savepoint of the open transaction (stored
        with the next `commit_pending`), otherwise in a transaction of its own
        committed through `run_blocking`."""
        if self.batched:
            with self._transaction():
                return work()

        def run() -> Any:
            with self._transaction(offload=False):
                return work()

        return self.run_blocking(run)

    def _commit(self) -> None:
        self.db.execute("COMMIT")

    # -- users ---------------------------------------------------------------

    def create_user(self, user_id: str, token_hash: str, name: str, now: int) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT INTO users (id, token_hash, name, created) VALUES (?, ?, ?, ?)",
                (user_id, token_hash, name, now),
            )

    def user_by_token(self, token_hash: str) -> UserRecord | None:
        row = self.db.execute(
            "SELECT id, name, colour, status_text, avatar FROM users WHERE token_hash = ?",
            (token_hash,),
        ).fetchone()
        return UserRecord(*row) if row else None

    def user(self, user_id: str) -> UserRecord | None:
        row = self.db.execute(
            "SELECT id, name, colour, status_text, avatar FROM users WHERE id = ?", (user_id,)
        ).fetchone()
        return UserRecord(*row) if row else None

    def set_profile(self, user_id: str, colour: str, status_text: str, avatar: int) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE users SET colour = ?, status_text = ?, avatar = ? WHERE id = ?",
                (colour, status_text, avatar, user_id),
            )

    def rename_user(self, user_id: str, name: str) -> None:
        with self._transaction():
            self.db.execute("UPDATE users SET name = ? WHERE id = ?", (name, user_id))

    def delete_user(self, user_id: str) -> None:
        """Forget an identity (its token stops working); its messages stay."""
        with self._transaction():
            self.db.execute("DELETE FROM members WHERE user_id = ?", (user_id,))
            self.db.execute("DELETE FROM users WHERE id = ?", (user_id,))

    # -- rooms ---------------------------------------------------------------

    def load_rooms(self) -> list[Room]:
        members: dict[str, list[str]] = {}
        roles: dict[str, list[tuple[str, str]]] = {}
        for room_id, user_id, role in self.db.execute(
            "SELECT room_id, user_id, role FROM members ORDER BY joined, rowid"
        ):
            members.setdefault(room_id, []).append(user_id)
            if role != "member":
                roles.setdefault(room_id, []).append((user_id, role))
        return [
            Room(
                id=r[0],
                name=r[1],
                description=r[2],
                limit=r[3],
                active=bool(r[4]),
                ephemeral=bool(r[5]),
                owner=r[6],
                created=r[7],
                members=list(members.get(r[0], ())),
                visibility=r[8],
                approval=bool(r[9]),
                invite_code=r[10],
                moderators={user for user, role in roles.get(r[0], ()) if role == "moderator"},
            )
            for r in self.db.execute(
                "SELECT id, name, description, max_members, active, ephemeral, owner, created,"
                " visibility, approval, invite_code FROM rooms ORDER BY created, id"
            )
        ]

    def save_room(self, room: Room) -> None:
        """Insert or update a room's settings (not its members)."""
        with self._transaction():
            self.db.execute(
                "INSERT INTO rooms (id, name, description, max_members, active, ephemeral, owner,"
                " created, visibility, approval, invite_code)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
                " name=excluded.name, description=excluded.description,"
                " max_members=excluded.max_members, active=excluded.active, owner=excluded.owner,"
                " visibility=excluded.visibility, approval=excluded.approval,"
                " invite_code=excluded.invite_code",
                (
                    room.id,
                    room.name,
                    room.description,
                    room.limit,
                    int(room.active),
                    int(room.ephemeral),
                    room.owner,
                    room.created,
                    room.visibility,
                    int(room.approval),
                    room.invite_code,
                ),
            )

    def add_member(self, room_id: str, user_id: str, now: int, role: str = "member") -> None:
        with self._transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO members (room_id, user_id, joined, role)"
                " VALUES (?, ?, ?, ?)",
                (room_id, user_id, now, role),
            )
            self.db.execute(
                "DELETE FROM room_invites WHERE room_id = ? AND user_id = ?", (room_id, user_id)
            )

    def set_role(self, room_id: str, user_id: str, role: str) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE members SET role = ? WHERE room_id = ? AND user_id = ?",
                (role, room_id, user_id),
            )

    def set_invite(self, room_id: str, user_id: str, kind: str | None, now: int) -> None:
        """Record an invitation or a join request (`kind`), or remove it (None)."""
        with self._transaction():
            if kind is None:
                self.db.execute(
                    "DELETE FROM room_invites WHERE room_id = ? AND user_id = ?",
                    (room_id, user_id),
                )
            else:
                self.db.execute(
                    "INSERT INTO room_invites (room_id, user_id, kind, created) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT(room_id, user_id) DO UPDATE SET kind = excluded.kind",
                    (room_id, user_id, kind, now),
                )

    def invites(self) -> list[tuple[str, str, str]]:
        """Every open (room id, user id, kind), oldest first."""
        return list(self.db.execute(
            "SELECT room_id, user_id, kind FROM room_invites ORDER BY created, rowid"
        ))

    def remove_member(self, room_id: str, user_id: str) -> None:
        with self._transaction():
            self.db.execute(
                "DELETE FROM members WHERE room_id = ? AND user_id = ?", (room_id, user_id)
            )

    def delete_room(self, room_id: str, delete_messages: bool) -> None:
        conv = Conv.of_room(room_id)
        with self._transaction():
            self.db.execute("DELETE FROM rooms WHERE id = ?", (room_id,))
            if delete_messages:
                self.db.execute("DELETE FROM messages WHERE conv = ?", (conv,))
                self.db.execute("DELETE FROM convs WHERE conv = ?", (conv,))

    # -- messages ------------------------------------------------------------

    def append(
        self,
        conv: str,
        msg_id: str,
        sender: str,
        sender_name: str,
        text: str,
        now: int,
        reply_to: int | None = None,
    ) -> tuple[StoredMessage, bool]:
        """Store a message and return it with True, or the earlier copy and False.

        A message is a duplicate when the same sender already used `msg_id`;
        the earlier copy (with its original sequence number) is returned so the
        sender gets the same acknowledgement again.
        """
        found = self.find_message(sender, msg_id)
        if found is not None:
            return found, False
        (stored,) = self.append_many(
            [NewMessage(conv, msg_id, sender, sender_name, text, now, reply_to)])
        return stored, True

    def find_message(self, sender: str, msg_id: str) -> StoredMessage | None:
        """The message `sender` already stored under `msg_id`, if any."""
        found = self.db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE sender = ? AND msg_id = ?",
            (sender, msg_id),
        ).fetchone()
        return self._with_reactions([StoredMessage(*found)])[0] if found else None

    def append_many(self, messages: list[NewMessage]) -> list[StoredMessage]:
        """Store messages in one transaction (one fsync), numbered in their order.

        All are stored or, when anything fails, none (the error is raised).
        The caller has checked that no (sender, id) is stored already.
        """

        def commit() -> list[StoredMessage]:
            stored = []
            with self._transaction(offload=False):
                for m in messages:
                    people = Conv(m.conv).people
                    users = (people[0], people[1]) if people else (None, None)
                    (seq,) = self.db.execute(
                        "INSERT INTO convs (conv, last_seq, user_a, user_b) VALUES (?, 1, ?, ?)"
                        " ON CONFLICT(conv) DO UPDATE SET last_seq = last_seq + 1"
                        " RETURNING last_seq",
                        (m.conv, *users),
                    ).fetchone()
                    self.db.execute(
                        f"INSERT INTO messages ({_MESSAGE_COLUMNS})"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (m.conv, seq, m.id, m.sender, m.name, m.text, m.ts, m.reply_to),
                    )
                    stored.append(StoredMessage(m.conv, int(seq), m.id, m.sender, m.name,
                                                m.text, m.ts, m.reply_to))
            return stored

        if not messages:
            return []
        if self.batched:  # only inserts: `commit_pending` waits for the disk
            return commit()
        result: list[StoredMessage] = self.run_blocking(commit)
        return result

    def last_seq(self, conv: str) -> int:
        row = self.db.execute("SELECT last_seq FROM convs WHERE conv = ?", (conv,)).fetchone()
        return int(row[0]) if row else 0

    def after(self, conv: str, seq: int, limit: int) -> tuple[list[StoredMessage], bool]:
        """Messages of `conv` newer than `seq`, oldest first, and whether more follow."""
        rows = self.db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages"
            " WHERE conv = ? AND seq > ? ORDER BY seq LIMIT ?",
            (conv, seq, limit + 1),
        ).fetchall()
        return self._with_reactions([StoredMessage(*r) for r in rows[:limit]]), len(rows) > limit

    def before(self, conv: str, seq: int, limit: int) -> tuple[list[StoredMessage], bool]:
        """The `limit` messages just older than `seq`, oldest first, and whether older exist."""
        rows = self.db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages"
            " WHERE conv = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (conv, seq, limit + 1),
        ).fetchall()
        messages = [StoredMessage(*r) for r in reversed(rows[:limit])]
        return self._with_reactions(messages), len(rows) > limit

    def message(self, conv: str, seq: int) -> StoredMessage | None:
        row = self.db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conv = ? AND seq = ?", (conv, seq)
        ).fetchone()
        return self._with_reactions([StoredMessage(*row)])[0] if row else None

    def search(self, conv: str, query: str, limit: int) -> list[StoredMessage]:
        """The newest messages of `conv` whose text contains `query` (any case), oldest first."""
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conv = ?"
            " AND (text LIKE ? ESCAPE '\\' OR sender_name LIKE ? ESCAPE '\\')"
            " ORDER BY seq DESC LIMIT ?",
            (conv, pattern, pattern, limit),
        ).fetchall()
        return self._with_reactions([StoredMessage(*r) for r in reversed(rows)])

    def react(self, conv: str, seq: int, user_id: str, emoji: str, on: bool) -> bool:
        """Add or remove a reaction; False when the message does not exist."""
        if self.db.execute(
            "SELECT 1 FROM messages WHERE conv = ? AND seq = ?", (conv, seq)
        ).fetchone() is None:
            return False
        with self._transaction():
            if on:
                self.db.execute(
                    "INSERT OR IGNORE INTO reactions (conv, seq, user_id, emoji)"
                    " VALUES (?, ?, ?, ?)",
                    (conv, seq, user_id, emoji),
                )
            else:
                self.db.execute(
                    "DELETE FROM reactions WHERE conv = ? AND seq = ? AND user_id = ?"
                    " AND emoji = ?",
                    (conv, seq, user_id, emoji),
                )
        return True

    def _with_reactions(self, messages: list[StoredMessage]) -> list[StoredMessage]:
        if not messages:
            return messages
        conv = messages[0].conv
        low, high = messages[0].seq, messages[-1].seq
        found: dict[int, list[tuple[str, str]]] = {}
        for seq, emoji, user in self.db.execute(
            "SELECT seq, emoji, user_id FROM reactions WHERE conv = ? AND seq BETWEEN ? AND ?"
            " ORDER BY rowid",
            (conv, min(low, high), max(low, high)),
        ):
            found.setdefault(seq, []).append((emoji, user))
        if not found:
            return messages
        return [
            StoredMessage(m.conv, m.seq, m.id, m.sender, m.name, m.text, m.ts, m.reply_to,
                          tuple(found.get(m.seq, ())))
            if m.conv == conv else m
            for m in messages
        ]

    def dm_convs(self, user_id: str) -> list[Conv]:
        rows = self.db.execute(
            "SELECT conv FROM convs WHERE user_a = ? OR user_b = ?", (user_id, user_id)
        )
        return [Conv(r[0]) for r in rows]

    def delete_message(self, conv: str, seq: int) -> bool:
        with self._transaction():
            cur = self.db.execute("DELETE FROM messages WHERE conv = ? AND seq = ?", (conv, seq))
        return cur.rowcount > 0

    def prune(self, older_than: int | None, keep_per_conv: int | None) -> int:
        """Delete messages older than `older_than` (ms) and beyond the newest
        `keep_per_conv` of each conversation; None for either means no limit.
        Sequence numbers are never reused."""
        n = 0
        with self._transaction():
            if older_than is not None:
                n += self.db.execute("DELETE FROM messages WHERE ts < ?", (older_than,)).rowcount
            if keep_per_conv is not None:
                n += self.db.execute(
                    "DELETE FROM messages WHERE rowid IN (SELECT m.rowid FROM messages m"
                    " JOIN convs c ON c.conv = m.conv WHERE m.seq <= c.last_seq - ?)",
                    (keep_per_conv,),
                ).rowcount
        return n

    def message_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
