"""Who may open another connection: limits per client address and for the whole box.

Plain Python with no sockets, so it is tested fast. The production server
(`wsgiserver.py`) asks `Admission.arrive` for every accepted connection, says
when the request headers are in, and when the connection ends. One phone on
the Wi-Fi must not be able to use up the box's file descriptors: its unfinished
requests and its open connections are counted and capped, and so is the box's
total, below its file limit.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

# A browser opens at most 6 connections per site, a phone's web app two sites
# (http and https) and one WebSocket, and the phone's own portal probes a few:
# 64 is far above what one phone uses.
MAX_CONNECTIONS_PER_CLIENT = 64
# Connections whose request headers (or TLS handshake) are not in yet.
MAX_UNFINISHED_PER_CLIENT = 16
# Box-wide; also kept below half the file limit (a WebSocket takes two descriptors).
MAX_CONNECTIONS = 4000
HEADER_TIMEOUT_S = 10.0
# Environ key the server sets on a request it refuses; the WebSocket endpoint
# answers such a request with a close frame instead of a chat.
REFUSAL_ENVIRON_KEY = "ahoy.refusal"


class Refusal(Enum):
    """Why a connection was refused: the HTTP status and words for a person."""

    BOX_FULL = (503, "The box is serving as many connections as it can. "
                     "Try again in a minute.")
    TOO_MANY_UNFINISHED = (429, "Too many unfinished requests from this device. "
                                "Try again in a moment.")
    TOO_MANY_CONNECTIONS = (429, "Too many connections from this device. "
                                 "Close other Ahoy tabs, then try again.")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]


@dataclass(frozen=True)
class Limits:
    """The settings (`python -m appliance serve --help`, docs/protocol.md)."""

    connections: int = MAX_CONNECTIONS
    connections_per_client: int = MAX_CONNECTIONS_PER_CLIENT
    unfinished_per_client: int = MAX_UNFINISHED_PER_CLIENT
    header_timeout_s: float = HEADER_TIMEOUT_S


@dataclass
class Ticket:
    """One accepted connection, from arrival to close.

    `refusal` with `counted` False: refuse at once, before reading anything
    (the box is full, or this client has too many unfinished requests or far
    too many connections). With `counted` True: read the request, then answer
    it with the refusal (an HTTP status, or a WebSocket close the web app can
    show).
    """

    client: str
    arrived: float
    counted: bool = True
    refusal: Refusal | None = None
    unfinished: bool = True


@dataclass
class Admission:
    """Open and unfinished connections, per client address and in all."""

    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.monotonic
    _open: Counter[str] = field(default_factory=Counter)
    _unfinished: Counter[str] = field(default_factory=Counter)
    _total: int = 0
    refused: Counter[Refusal] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arrive(self, client: str) -> Ticket:
        """A new connection from `client`: count it, or say why not."""
        now = self.clock()
        with self._lock:
            if self._total >= self.limits.connections:
                return self._refuse(Ticket(client, now, counted=False, unfinished=False),
                                    Refusal.BOX_FULL)
            if self._unfinished[client] >= self.limits.unfinished_per_client:
                return self._refuse(Ticket(client, now, counted=False, unfinished=False),
                                    Refusal.TOO_MANY_UNFINISHED)
            if self._open[client] >= (self.limits.connections_per_client
                                      + self.limits.unfinished_per_client):
                # Far over: do not even read the request. A device can hold at
                # most its limit plus the ones it is being told about.
                return self._refuse(Ticket(client, now, counted=False, unfinished=False),
                                    Refusal.TOO_MANY_CONNECTIONS)
            self._total += 1
            self._open[client] += 1
            self._unfinished[client] += 1
            ticket = Ticket(client, now)
            if self._open[client] > self.limits.connections_per_client:
                return self._refuse(ticket, Refusal.TOO_MANY_CONNECTIONS)
            return ticket

    def headers_read(self, ticket: Ticket) -> None:
        """The connection's first request is in (or it gave up): no longer unfinished."""
        with self._lock:
            self._finish(ticket)

    def leave(self, ticket: Ticket) -> None:
        """The connection is closed."""
        with self._lock:
            if not ticket.counted:
                return
            ticket.counted = False
            self._finish(ticket)
            self._total -= 1
            self._decrement(self._open, ticket.client)

    def open_connections(self, client: str | None = None) -> int:
        return self._total if client is None else self._open[client]

    def _refuse(self, ticket: Ticket, refusal: Refusal) -> Ticket:
        ticket.refusal = refusal
        self.refused[refusal] += 1
        return ticket

    def _finish(self, ticket: Ticket) -> None:
        if ticket.unfinished and ticket.counted:
            ticket.unfinished = False
            self._decrement(self._unfinished, ticket.client)

    @staticmethod
    def _decrement(counts: Counter[str], client: str) -> None:
        counts[client] -= 1
        if counts[client] <= 0:
            del counts[client]


def file_limit_connections(file_limit: int, reserved: int = 256) -> int:
    """How many connections `file_limit` descriptors carry: a WebSocket takes two
    (simple-websocket duplicates the socket), and the database, logs, pictures
    and the box's own devices keep `reserved`."""
    return max(1, (file_limit - reserved) // 2)
