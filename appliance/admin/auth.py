"""The admin page's security core: sessions, CSRF tokens, origin checks, login limits.

Plain Python with no Flask, sockets or files, so it is tested fast. Times are
`time.monotonic()` seconds passed in by the caller: the admin can set the
box's wall clock from the browser, and that must neither end sessions nor lift
a login lockout.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SESSION_IDLE_S = 30 * 60
SESSION_MAX_S = 12 * 3600
MAX_SESSIONS = 32

FREE_FAILURES = 4  # the 5th wrong password in a row starts the lockout
FIRST_LOCKOUT_S = 30
MAX_LOCKOUT_S = 3600
FORGET_AFTER_S = 24 * 3600
MAX_TRACKED_CLIENTS = 4096
# Box-wide, whatever the addresses: one phone can take many addresses, and 40
# addresses with 4 free guesses each made 160 guesses without a lockout.
BOX_FAILURES = 20
BOX_WINDOW_S = 10 * 60


@dataclass
class Session:
    """One signed-in admin browser."""

    id: str
    csrf_token: str
    created: float
    last_seen: float

    def csrf_ok(self, token: str | None) -> bool:
        """True if `token` is this session's CSRF token (compared in constant time)."""
        return bool(token) and hmac.compare_digest(
            self.csrf_token.encode(), str(token).encode()
        )


class Sessions:
    """Server-side sessions: the cookie holds only a random id."""

    def __init__(self, idle_s: float = SESSION_IDLE_S, max_s: float = SESSION_MAX_S,
                 limit: int = MAX_SESSIONS) -> None:
        self.idle_s = idle_s
        self.max_s = max_s
        self.limit = limit
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, now: float) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._drop_expired(now)
            while len(self._sessions) >= self.limit:
                self._sessions.popitem(last=False)  # the least recently used goes
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None, now: float) -> Session | None:
        """The live session with this id, touched; None if unknown or expired."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[session_id]
                return None
            session.last_seen = now
            self._sessions.move_to_end(session_id)
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def end_all_except(self, keep: str | None) -> int:
        """Sign out every other browser (after a password change); how many were ended."""
        with self._lock:
            others = [sid for sid in self._sessions if sid != keep]
            for sid in others:
                del self._sessions[sid]
            return len(others)

    def __len__(self) -> int:
        return len(self._sessions)

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen > self.idle_s or now - session.created > self.max_s

    def _drop_expired(self, now: float) -> None:
        for sid in [s.id for s in self._sessions.values() if self._expired(s, now)]:
            del self._sessions[sid]


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass
class LoginLimiter:
    """Wrong passwords per client address: a few are free, then the wait doubles.

    The 5th failure in a row locks that address out for 30 s, the 6th for 60 s,
    and so on up to an hour. A right password clears the count. Beside that,
    the whole box takes at most `box_failures` wrong passwords in `box_window_s`
    from all addresses together; then nobody may try (not even with the right
    password) until the oldest of them is that old.
    """

    free_failures: int = FREE_FAILURES
    first_lockout_s: float = FIRST_LOCKOUT_S
    max_lockout_s: float = MAX_LOCKOUT_S
    box_failures: int = BOX_FAILURES
    box_window_s: float = BOX_WINDOW_S
    _clients: OrderedDict[str, _Failures] = field(default_factory=OrderedDict)
    _recent: deque[float] = field(default_factory=deque)  # box-wide failure times
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_seconds(self, client: str, now: float) -> int:
        """How long `client` must wait before trying again (0: may try now)."""
        with self._lock:
            entry = self._clients.get(client)
            own = 0.0 if entry is None else entry.locked_until - now
            return _whole_seconds(max(own, self._box_wait(now)))

    def box_wait_seconds(self, now: float) -> int:
        """How long everyone must wait because of the box-wide limit (0: no wait)."""
        with self._lock:
            return _whole_seconds(self._box_wait(now))

    def failed(self, client: str, now: float) -> int:
        """Record a wrong password; returns the lockout it starts in seconds (0: none)."""
        with self._lock:
            self._forget_old(now)
            self._recent.append(now)
            while len(self._recent) > self.box_failures:  # only the latest ones matter
                self._recent.popleft()
            box_wait = self._box_wait(now)
            entry = self._clients.pop(client, None) or _Failures()
            self._clients[client] = entry
            entry.count += 1
            entry.last = now
            over = entry.count - self.free_failures
            if over <= 0:
                return _whole_seconds(box_wait)
            lockout = min(self.max_lockout_s, self.first_lockout_s * 2 ** (over - 1))
            entry.locked_until = now + lockout
            return _whole_seconds(max(lockout, box_wait))

    def _box_wait(self, now: float) -> float:
        while self._recent and self._recent[0] <= now - self.box_window_s:
            self._recent.popleft()
        if len(self._recent) < self.box_failures:
            return 0.0
        # Free again when only box_failures - 1 of them are left in the window.
        return self._recent[-self.box_failures] + self.box_window_s - now

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def _forget_old(self, now: float) -> None:
        while self._clients:
            oldest = next(iter(self._clients.values()))
            stale = now - oldest.last > FORGET_AFTER_S and oldest.locked_until <= now
            if not stale and len(self._clients) < MAX_TRACKED_CLIENTS:
                break
            self._clients.popitem(last=False)


def _whole_seconds(wait: float) -> int:
    return 0 if wait <= 0 else max(1, math.ceil(wait))


def describe_wait(seconds: int) -> str:
    """"30 seconds", "2 minutes", "1 hour": how long to wait, for a person."""
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    hours = math.ceil(minutes / 60)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def lockout_message(seconds: int, everyone: bool = False) -> str:
    """Why signing in is refused, for a person; `everyone`: the box-wide limit."""
    if everyone:
        return (
            "Too many wrong passwords on this box lately, from several devices. "
            f"Nobody can sign in for {describe_wait(seconds)}; then try again."
        )
    return (
        f"Too many wrong passwords from this device. Wait {describe_wait(seconds)}, "
        "then try again."
    )


def same_origin(origin: str | None, referer: str | None, scheme: str, host: str) -> bool:
    """True if a state-changing request comes from the admin page itself.

    `Origin` decides when the browser sent a real one; otherwise `Referer`
    must point at this box. A request with neither is refused: every browser
    that can run the admin page sends at least one on a POST from it.
    """
    expected = f"{scheme}://{host}".lower()
    if origin and origin != "null":
        return origin.lower().rstrip("/") == expected
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() == expected
    return False


def cookie_name(secure: bool) -> str:
    """The session cookie's name; over HTTPS the `__Host-` prefix pins it to this host.

    A `__Host-` cookie must be Secure, have Path=/ and no Domain, so a page
    over plain HTTP cannot plant or overwrite it.
    """
    return "__Host-ahoy-admin" if secure else "ahoy-admin"
