"""The terminal client's chat model: messages, conversations, and the errors people read.

`BoxClient` (a box) and `DirectChat` (one other device) both fill it, so the
UI draws one model whatever it talks to. The text limit is the protocol's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..protocol import MAX_TEXT

TEXT_LIMIT = MAX_TEXT

Listener = Callable[[str, dict[str, Any]], None]


class ChatError(Exception):
    """Something the person asked for could not be done; ``str()`` says what and why."""

    def __init__(self, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Message:
    """One chat message as the client shows it."""

    conv: str
    id: str
    sender: str
    name: str
    text: str
    ts: int
    seq: int | None = None
    status: str = "sent"  # "sending" until acknowledged, "failed" if refused
    error: str = ""


@dataclass
class Conversation:
    """A room or one-to-one chat: messages unique by seq (and by sender and id)."""

    id: str
    by_seq: dict[int, Message] = field(default_factory=dict)
    by_id: dict[tuple[str, str], Message] = field(default_factory=dict)
    unread: int = 0
    _order: list[Message] | None = None

    @property
    def kind(self) -> str:
        return self.id.split(":", 1)[0]

    def add(self, message: Message) -> bool:
        """Take a message; False if it was already here (a duplicate delivery)."""
        if message.seq is not None and message.seq in self.by_seq:
            return False
        key = (message.sender, message.id)
        known = self.by_id.get(key)
        if known is not None:
            if known.seq is None and message.seq is not None:
                # Our own message, stored by the box: it now has its place.
                known.seq, known.ts, known.status, known.error = message.seq, message.ts, "sent", ""
                self.by_seq[message.seq] = known
                self._order = None
            return False
        self.by_id[key] = message
        if message.seq is not None:
            self.by_seq[message.seq] = message
        self._order = None
        return True

    def remove_seq(self, seq: int) -> None:
        message = self.by_seq.pop(seq, None)
        if message is not None:
            self.by_id.pop((message.sender, message.id), None)
            self._order = None

    def messages(self) -> list[Message]:
        """In conversation order; messages still being sent come last."""
        if self._order is None:
            self._order = sorted(
                self.by_id.values(),
                key=lambda m: (m.seq is None, m.seq or 0, m.ts),
            )
        return self._order

    def oldest_seq(self) -> int | None:
        return min(self.by_seq) if self.by_seq else None

    def changed(self) -> None:
        self._order = None


def dm_conv(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"dm:{first}:{second}"


def new_message_id() -> str:
    return "m-" + uuid.uuid4().hex[:20]


def now_ms() -> int:
    return int(time.time() * 1000)
