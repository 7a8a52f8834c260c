"""Who is online: one current connection per user, and the names in use.

The rule that keeps people from being dropped: a user's registration belongs
to their *current* connection. When a device reconnects, the new connection
replaces the old one, and the old connection's late close is ignored instead
of removing the fresh registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .protocol import name_key


class Peer(Protocol):
    """One client connection, as the core sees it."""

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message for the client; never blocks."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection (from any thread)."""


@dataclass
class Session:
    user_id: str
    name: str
    peer: Peer
    since: int


class Presence:
    def __init__(self) -> None:
        self._by_user: dict[str, Session] = {}
        self._by_peer: dict[int, Session] = {}
        self._names: dict[str, str] = {}  # name_key -> user id

    def name_holder(self, name: str) -> str | None:
        """The online user who has `name` (compared case-insensitively), if any."""
        return self._names.get(name_key(name))

    def attach(self, user_id: str, name: str, peer: Peer, now: int) -> Peer | None:
        """Make `peer` the user's current connection; returns the connection it replaces."""
        old = self._by_user.get(user_id)
        if old is not None:
            del self._by_peer[id(old.peer)]
            self._names.pop(name_key(old.name), None)
        session = Session(user_id, name, peer, now)
        self._by_user[user_id] = session
        self._by_peer[id(peer)] = session
        self._names[name_key(name)] = user_id
        return old.peer if old is not None and old.peer is not peer else None

    def detach(self, peer: Peer) -> str | None:
        """Forget `peer`; returns the user who went offline, or None for a stale connection."""
        session = self._by_peer.pop(id(peer), None)
        if session is None or self._by_user.get(session.user_id) is not session:
            return None
        del self._by_user[session.user_id]
        self._names.pop(name_key(session.name), None)
        return session.user_id

    def rename(self, user_id: str, name: str) -> None:
        session = self._by_user[user_id]
        self._names.pop(name_key(session.name), None)
        session.name = name
        self._names[name_key(name)] = user_id

    def user_of(self, peer: Peer) -> str | None:
        session = self._by_peer.get(id(peer))
        return session.user_id if session else None

    def session(self, user_id: str) -> Session | None:
        return self._by_user.get(user_id)

    def peer(self, user_id: str) -> Peer | None:
        session = self._by_user.get(user_id)
        return session.peer if session else None

    def is_online(self, user_id: str) -> bool:
        return user_id in self._by_user

    def sessions(self) -> list[Session]:
        return list(self._by_user.values())

    def __len__(self) -> int:
        return len(self._by_user)
