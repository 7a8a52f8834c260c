"""The faults loop's phones: asyncio WebSocket clients that chat in rooms and
DMs, and after a crash reconnect with their device token and `since`, catch up
with `sync` and resend what was never acknowledged, with the same message ids.

Each phone connects from its own loopback address (127.0.x.y), as phones on the
hotspot do, so limits per client address treat them as separate phones.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from .ledger import Ledger, Stored

PAGE = 500  # the most a `sync` returns
RESEND_GAP_S = 0.03  # under the box's 20 frames a second per phone
ANSWER_TIMEOUT_S = 10.0


class PhoneError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    conv: str
    field: str  # "room" or "to"
    value: str  # room id or user id


@dataclass
class Outgoing:
    target: Target
    text: str
    answered: bool = False  # an error came back: no ack will come for this try


def source_address(index: int) -> str:
    """Phone `index`'s own loopback address: 127.0.0.2, 127.0.0.3, …"""
    return f"127.0.{index // 250}.{index % 250 + 2}"


def dm_conv(a: str, b: str) -> str:
    x, y = sorted((a, b))
    return f"dm:{x}:{y}"


class Phone:
    def __init__(self, index: int, url: str, ledger: Ledger, rng: random.Random,
                 tag: str) -> None:
        self.index = index
        self.name = f"{tag}{index:03d}"
        self.url = url
        self.ledger = ledger
        self.rng = rng
        self.user_id = ""
        self.token = ""
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.refs = 0
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.pending: dict[str, Outgoing] = {}  # message id -> what to resend
        self.view: dict[str, dict[int, str]] = {}  # conv -> seq -> id, all this phone has seen
        self.last_seq: dict[str, int] = {}  # conv -> the box's last seq, from history
        self.more: set[str] = set()  # conversations whose catch-up history said "more"
        self.targets: list[Target] = []
        self.convs: set[str] = set()  # conversations this phone belongs to
        self.counter = 0
        self.errors: Counter[str] = Counter()
        # Since the last reconnect: ids resent, and those the box had stored already.
        self.resent: set[str] = set()
        self.stored_before: dict[str, int] = {}

    # -- wire ----------------------------------------------------------------

    async def connect(self, attempts: int = 20) -> None:
        for attempt in range(attempts):
            try:
                self.ws = await connect(self.url, local_addr=(source_address(self.index), 0),
                                        compression=None, open_timeout=5, close_timeout=0.5,
                                        ping_interval=None, max_size=2**23)
                break
            except (OSError, InvalidHandshake, TimeoutError) as e:
                if attempt == attempts - 1:
                    raise PhoneError(f"{self.name} cannot connect: {e}") from e
                await asyncio.sleep(0.1 * (attempt + 1))
        self.reader = asyncio.create_task(self._read())

    @property
    def connected(self) -> bool:
        return self.reader is not None and not self.reader.done()

    async def gone(self) -> None:
        """Wait until the connection has closed (the box died)."""
        if self.reader is not None:
            await self.reader

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                self._handle(json.loads(raw))
        except (ConnectionClosed, OSError):
            pass
        finally:
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(PhoneError(f"{self.name}: connection closed"))
            self.waiting.clear()

    def top(self, conv: str) -> int:
        """The highest seq of `conv` this phone has seen (0 for none)."""
        return max(self.view.get(conv) or [0])

    def _seen(self, m: dict[str, Any]) -> None:
        self.view.setdefault(m["conv"], {})[m["seq"]] = m["id"]

    def _handle(self, m: dict[str, Any]) -> None:
        kind, ref = m.get("type"), m.get("ref")
        if kind == "ack":
            self.ledger.record_ack(m["id"], m["conv"], m["seq"])
            self._seen(m)
            self.pending.pop(m["id"], None)
        elif kind == "error":
            self.errors[m.get("code", "?")] += 1
            if ref in self.pending:
                self.pending[ref].answered = True
        elif kind == "message":
            self._seen(m)
        elif kind == "history" and not (ref or "").startswith("v"):
            # Replies to the checker's reads ("v…") are not what this phone saw.
            for h in m["messages"]:
                self._seen(h)
            if "last_seq" in m:
                self.last_seq[m["conv"]] = m["last_seq"]
            if m.get("more") and ref is None:
                self.more.add(m["conv"])
        if ref is not None and ref in self.waiting and not self.waiting[ref].done():
            self.waiting[ref].set_result(m)

    async def _send(self, message: dict[str, Any]) -> None:
        if self.ws is None:
            raise PhoneError(f"{self.name} is not connected")
        await self.ws.send(json.dumps(message))

    async def request(self, type_: str, prefix: str = "q", **fields: Any) -> dict[str, Any]:
        """Send with a fresh ref; the reply (or its error) to it."""
        self.refs += 1
        ref = f"{prefix}{self.refs}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[ref] = future
        try:
            await self._send({"type": type_, "ref": ref, **fields})
            return await asyncio.wait_for(future, ANSWER_TIMEOUT_S)
        except TimeoutError as e:
            raise PhoneError(f"{self.name}: no answer to {type_}") from e
        except ConnectionClosed as e:
            raise PhoneError(f"{self.name}: connection closed during {type_}") from e
        finally:
            self.waiting.pop(ref, None)

    async def _send_message(self, msg_id: str) -> None:
        out = self.pending[msg_id]
        await self._send({"type": "send", "id": msg_id, "ref": msg_id,
                          out.target.field: out.target.value, "text": out.text})

    # -- joining -------------------------------------------------------------

    async def join(self) -> None:
        """First connection: a new identity, kept as a device token."""
        await self.connect()
        welcome = await self.request("hello", name=self.name)
        if welcome.get("type") != "welcome":
            raise PhoneError(f"{self.name}: hello refused: {welcome.get('message')}")
        self.user_id, self.token = welcome["you"]["id"], welcome["token"]

    async def create_room(self, name: str) -> str:
        reply = await self.request("room_create", name=name, limit=200)
        if reply.get("type") != "room":
            raise PhoneError(f"{self.name}: room_create refused: {reply.get('message')}")
        room_id: str = reply["room"]["id"]
        self.convs.add(f"room:{room_id}")
        return room_id

    async def join_room(self, room_id: str) -> None:
        reply = await self.request("room_join", room=room_id)
        if reply.get("type") != "room":
            raise PhoneError(f"{self.name}: room_join refused: {reply.get('message')}")
        self.convs.add(f"room:{room_id}")

    def talk_to(self, rooms: list[str], partners: list[str]) -> None:
        """Where this phone's messages go: its rooms and DMs with its partners."""
        self.targets = [Target(f"room:{r}", "room", r) for r in rooms]
        self.targets += [Target(dm_conv(self.user_id, p), "to", p) for p in partners]

    def knows_dm_with(self, other: str) -> None:
        self.convs.add(dm_conv(self.user_id, other))

    # -- chatting ------------------------------------------------------------

    def in_flight(self) -> int:
        return sum(1 for o in self.pending.values() if not o.answered)

    async def chat(self, stop: asyncio.Event, rate: float, window: int) -> None:
        """New messages at about `rate` a second, at most `window` unacknowledged,
        until `stop` or the connection drops."""
        while not stop.is_set() and self.connected:
            if self.in_flight() >= window:
                await asyncio.sleep(0.01)
                continue
            target = self.rng.choice(self.targets)
            self.counter += 1
            msg_id = f"{self.name}-{self.counter:06d}"
            text = f"{self.name} #{self.counter} " + "~" * self.rng.randrange(0, 200)
            self.ledger.record_sent(msg_id, self.user_id, target.conv, text)
            self.pending[msg_id] = Outgoing(target, text)
            try:
                await self._send_message(msg_id)
            except (ConnectionClosed, OSError, PhoneError):
                return
            try:
                await asyncio.wait_for(stop.wait(), self.rng.expovariate(rate))
            except TimeoutError:
                pass

    # -- after a crash -------------------------------------------------------

    async def reconnect(self) -> None:
        """Back with the device token and `since`; then `sync` while history says more."""
        await self.connect()
        since = {conv: self.top(conv) for conv in self.convs}
        self.more.clear()
        self.last_seq.clear()
        self.resent.clear()
        self.stored_before.clear()
        welcome = await self.request("hello", token=self.token, since=since)
        if welcome.get("type") != "welcome":
            raise PhoneError(f"{self.name}: hello with token refused: {welcome.get('message')}")
        # The catch-up history follows `welcome` at once; a pong means it is all in.
        await self.request("ping")
        for conv in sorted(self.more):
            while True:
                after = self.top(conv)
                page = await self.request("sync", conv=conv, after=after, limit=PAGE)
                if page.get("type") != "history" or not page["more"] or not page["messages"]:
                    break

    async def settle(self) -> None:
        """Wait for the acks of what is out (after chatting with the box up)."""
        deadline = asyncio.get_running_loop().time() + ANSWER_TIMEOUT_S
        while self.in_flight() and self.connected and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    async def resend(self, tries: int = 3) -> None:
        """Send every unacknowledged message again, same id, until each is acked."""
        known = {conv: max(self.last_seq.get(conv, 0), self.top(conv)) for conv in self.convs}
        now: set[str] = set()
        for attempt in range(tries):
            if not self.pending:
                break
            for msg_id in list(self.pending):
                self.pending[msg_id].answered = False
                now.add(msg_id)
                await self._send_message(msg_id)
                await asyncio.sleep(RESEND_GAP_S)
            deadline = asyncio.get_running_loop().time() + ANSWER_TIMEOUT_S
            while self.in_flight() and asyncio.get_running_loop().time() < deadline:
                if not self.connected:
                    raise PhoneError(f"{self.name}: connection closed while resending")
                await asyncio.sleep(0.01)
            if self.pending and attempt < tries - 1:
                await asyncio.sleep(1.0 * (attempt + 1))  # errors came back: try again
        # An ack at or below the last seq seen before resending is the box answering
        # for a message it had stored, but whose ack the fault swallowed.
        for msg_id in now:
            ack = self.ledger.acks.get(msg_id)
            if ack is not None and ack.seq <= known.get(ack.conv, 0):
                self.stored_before[msg_id] = ack.seq
        self.resent |= now

    # -- checking ------------------------------------------------------------

    async def read_conv(self, conv: str) -> tuple[list[Stored], int]:
        """Every stored message of `conv`, page by page, and the box's last seq."""
        out: list[Stored] = []
        after = last = 0
        while True:
            page = await self.request("sync", prefix="v", conv=conv, after=after, limit=PAGE)
            if page.get("type") != "history":
                raise PhoneError(f"{self.name}: sync {conv} refused: {page.get('message')}")
            out += [Stored(m["conv"], m["seq"], m["id"], m["from"], m["text"])
                    for m in page["messages"]]
            last = max(last, page.get("last_seq", 0))
            if not page["more"] or not page["messages"]:
                return out, last
            after = page["messages"][-1]["seq"]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader
