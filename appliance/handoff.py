"""One-time codes that carry a phone's identity from the plain-http app to the secure one.

The app at http://10.42.0.1 and the one at https://10.42.0.1 are two origins, so
they keep two separate device tokens. "Open the secure address" asks the box
for a code and puts it in the link (after `#`, so it never reaches a server log
or a Referer); the secure page trades the code for the device token once. A
code lives `LIFETIME_S` seconds, works once, and a person holds at most
`PER_USER` at a time, so the token itself never appears in an address.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Long enough to read a certificate warning and tap through it once; short
# enough that a code left in a browser's history is worthless soon after.
LIFETIME_S = 120
PER_USER = 3  # codes one person holds at once; a fourth replaces the oldest
MAX_CODES = 1000  # codes on the box in all (memory bound)
# Codes that were used are remembered until they would have expired, so that
# a second use gets "already used" rather than "unknown".

CODE_USED = "This link to the secure address was already used. Go back to the app at " \
            "the plain address and tap \u201cOpen the secure address\u201d again."
CODE_EXPIRED = "This link to the secure address is too old (links work for {minutes} " \
               "minutes). Go back to the app at the plain address and tap \u201cOpen the " \
               "secure address\u201d again."


class HandoffRefused(Exception):
    """A code the box will not trade; `code` is stable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Code:
    user_id: str
    token: str
    expires: float
    used: bool = False


class Handoffs:
    """The outstanding codes, in memory only (a restart cancels them, which is safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 make_code: Callable[[], str] = lambda: secrets.token_urlsafe(18)) -> None:
        self._clock = clock
        self._make_code = make_code
        self._codes: dict[str, _Code] = {}
        self._lock = threading.Lock()

    def issue(self, user_id: str, token: str) -> str:
        """A fresh code for this person's device token."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            mine = [c for c, v in self._codes.items() if v.user_id == user_id and not v.used]
            for old in mine[: max(0, len(mine) - PER_USER + 1)]:
                del self._codes[old]  # dicts keep insertion order: oldest first
            while len(self._codes) >= MAX_CODES:
                del self._codes[next(iter(self._codes))]
            code = self._make_code()
            self._codes[code] = _Code(user_id, token, now + LIFETIME_S)
            return code

    def redeem(self, code: str) -> tuple[str, str]:
        """(user id, device token) for a good code, which stops working at once."""
        with self._lock:
            now = self._clock()
            entry = self._codes.get(code)
            if entry is None or entry.expires <= now:
                self._codes.pop(code, None)
                raise HandoffRefused("expired", CODE_EXPIRED.format(minutes=LIFETIME_S // 60))
            if entry.used:
                raise HandoffRefused("used", CODE_USED)
            entry.used = True
            token, entry.token = entry.token, ""
            return entry.user_id, token

    def outstanding(self, user_id: str) -> int:
        """How many unused, unexpired codes this person holds (for tests and health)."""
        with self._lock:
            self._prune(self._clock())
            return sum(1 for v in self._codes.values() if v.user_id == user_id and not v.used)

    def _prune(self, now: float) -> None:
        for code in [c for c, v in self._codes.items() if v.expires <= now]:
            del self._codes[code]
