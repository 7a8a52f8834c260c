"""The load generator: asyncio `websockets` clients in worker processes.

Each worker owns whole rooms (clients are numbered; small rooms are blocks of
10, big rooms blocks of 50, and block `b` of 50 belongs to worker `b % W`), so
a worker sees every delivery of the messages it sends and can count lost and
duplicate ones itself.

Messages carry their *intended* send time (CLOCK_MONOTONIC, shared by all
processes on Linux) in the text: `B|<ns>|<id>|`. A sender that falls behind
still stamps the time it should have sent, so latency includes the wait
(no coordinated omission).

The orchestrator drives a worker over a pipe: `grow`, `phase`, `close`.
"""

from __future__ import annotations

import asyncio
import json
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

SMALL, BIG = 10, 50
SETUP_CONCURRENCY = 32


@dataclass
class Client:
    idx: int
    ws: ClientConnection | None = None
    seen: set[str] = field(default_factory=set)
    pending: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    sio_acks: int = 0


@dataclass
class Room:
    key: str  # "s<n>" or "b<n>"
    members: list[int]
    server_id: str = ""  # Ahoy's room id


class Worker:
    def __init__(self, url: str, dialect: str, index: int, workers: int,
                 compression: bool = True) -> None:
        self.url = url
        # Browsers always offer permessage-deflate; so do these clients unless told not to.
        self.compression = compression
        self.dialect = dialect
        self.index = index
        self.workers = workers
        self.clients: dict[int, Client] = {}
        self.rooms: dict[str, Room] = {}
        self.n_total = 0
        self.ref = 0
        # Per phase.
        self.latencies = array("q")
        self.receipts: dict[str, int] = {}
        self.duplicates = 0
        self.errors = 0
        self.error_samples: list[str] = []
        self.disconnects = 0
        self.last_receipt = 0
        self.frames = 0  # every frame received, for the cost of arrivals
        self.received = 0  # and their size (characters of text, bytes of binary)

    # -- wire ----------------------------------------------------------------

    def owns(self, idx: int) -> bool:
        return (idx // BIG) % self.workers == self.index

    def _next_ref(self) -> str:
        self.ref += 1
        return f"r{self.ref}"

    async def _read(self, c: Client) -> None:
        assert c.ws is not None
        ws = c.ws
        try:
            async for raw in ws:
                self.frames += 1
                self.received += len(raw)
                if isinstance(raw, bytes):
                    continue
                i = raw.find("B|")
                if i >= 0:
                    now = time.monotonic_ns()
                    j = raw.find("|", i + 2)
                    k = raw.find("|", j + 1)
                    mid = raw[j + 1:k]
                    if mid in c.seen:
                        self.duplicates += 1
                        continue
                    c.seen.add(mid)
                    if mid in self.receipts:
                        self.receipts[mid] += 1
                        self.latencies.append(now - int(raw[i + 2:j]))
                        self.last_receipt = now
                    continue
                if self.dialect == "socketio":
                    await self._socketio_frame(c, raw)
                    continue
                if '"error"' in raw[:40]:
                    self.errors += 1
                    if len(self.error_samples) < 5:
                        self.error_samples.append(raw[:200])
                if '"ref"' in raw:
                    m = json.loads(raw)
                    fut = c.pending.pop(m.get("ref", ""), None)
                    if fut is not None and not fut.done():
                        fut.set_result(m)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.disconnects += 1
            for fut in c.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))

    async def _socketio_frame(self, c: Client, raw: str) -> None:
        assert c.ws is not None
        if raw == "2":
            await c.ws.send("3")
        elif raw.startswith("43"):  # an ack: 43<id>[...]
            n = 2
            while n < len(raw) and raw[n].isdigit():
                n += 1
            fut = c.pending.pop(raw[2:n], None)
            if fut is not None and not fut.done():
                fut.set_result(raw)
        elif raw.startswith("40"):
            fut = c.pending.pop("connect", None)
            if fut is not None and not fut.done():
                fut.set_result(raw)

    async def _request(self, c: Client, payload: dict[str, Any], timeout: float = 60) -> Any:
        assert c.ws is not None
        ref = self._next_ref()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        c.pending[ref] = fut
        if self.dialect == "socketio":
            event = payload.pop("type")
            await c.ws.send(f"42{ref[1:]}" + json.dumps([event, payload]))
            c.pending[ref[1:]] = c.pending.pop(ref)
        else:
            await c.ws.send(json.dumps({**payload, "ref": ref}))
        return await asyncio.wait_for(fut, timeout)

    async def _connect(self, c: Client) -> None:
        url = self.url
        if self.dialect == "socketio":
            url += "/socket.io/?EIO=4&transport=websocket"
        c.ws = await websockets.connect(url, max_size=2**24, open_timeout=60,
                                        ping_interval=None, close_timeout=2,
                                        compression="deflate" if self.compression else None)
        if self.dialect == "socketio":
            await c.ws.recv()  # the Engine.IO open packet
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            c.pending["connect"] = fut
            c.reader = asyncio.create_task(self._read(c))
            await c.ws.send("40")
            await asyncio.wait_for(fut, 60)
        else:
            c.reader = asyncio.create_task(self._read(c))
        if self.dialect == "ahoy":
            reply = await self._request(c, {"type": "hello", "name": f"bench{c.idx}"})
            if reply["type"] != "welcome":
                raise RuntimeError(f"hello failed: {reply}")

    async def _join_rooms(self, c: Client) -> None:
        """Join (Ahoy: create when first) the client's small and big room."""
        keys = [f"s{c.idx // SMALL}", f"b{c.idx // BIG}"]
        if self.dialect != "ahoy":
            await self._request(c, {"type": "join", "rooms": keys})
            return
        for key in keys:
            room = self.rooms[key]
            if room.server_id:
                reply = await self._request(c, {"type": "room_join", "room": room.server_id})
            else:
                reply = await self._request(c, {"type": "room_create", "name": key,
                                                "limit": BIG if key[0] == "b" else SMALL})
                room.server_id = reply["room"]["id"] if reply["type"] == "room" else ""
            if reply["type"] != "room":
                raise RuntimeError(f"{key}: {reply}")

    async def grow(self, n_total: int, rooms: bool = True) -> dict[str, Any]:
        """Connect the clients this worker owns with numbers below `n_total`.

        Each says hello (Ahoy) and, with `rooms`, joins its small and big room.
        """
        started = time.monotonic()
        frames_before, received_before = self.frames, self.received
        new = [i for i in range(self.n_total, n_total) if self.owns(i)]
        self.n_total = n_total
        for i in new:
            for key in (f"s{i // SMALL}", f"b{i // BIG}"):
                self.rooms.setdefault(key, Room(key, [])).members.append(i)
        failures: list[str] = []
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def one(i: int) -> None:
            async with gate:
                c = Client(i)
                try:
                    await self._connect(c)
                    self.clients[i] = c
                except Exception as e:
                    failures.append(f"client {i} connect: {e!r}"[:200])

        await asyncio.gather(*(one(i) for i in new))
        if not rooms:
            return {"connected": len(self.clients), "failures": failures,
                    "seconds": time.monotonic() - started}
        # Rooms: the first member creates, then the others join (concurrently).
        creators = [i for i in new if i % SMALL == 0 and i in self.clients]
        for i in creators:
            try:
                await self._join_rooms(self.clients[i])
            except Exception as e:
                failures.append(f"client {i} rooms: {e!r}"[:200])

        async def join(i: int) -> None:
            async with gate:
                try:
                    await self._join_rooms(self.clients[i])
                except Exception as e:
                    failures.append(f"client {i} rooms: {e!r}"[:200])

        await asyncio.gather(*(join(i) for i in new if i % SMALL and i in self.clients))
        seconds = time.monotonic() - started
        await asyncio.sleep(0.6)  # the frames that tell the others (Ahoy gathers 0.2 s)
        return {"connected": len(self.clients), "failures": failures,
                "seconds": seconds, "frames": self.frames - frames_before,
                "received": self.received - received_before}

    # -- a measured phase ----------------------------------------------------

    def _frame(self, room: Room, mid: str, text: str) -> str:
        if self.dialect == "ahoy":
            return json.dumps({"type": "send", "id": mid, "room": room.server_id, "text": text})
        body = {"room": room.key, "id": mid, "text": text}
        if self.dialect == "socketio":
            return "42" + json.dumps(["send", body])
        return json.dumps({"type": "send", **body})

    async def phase(self, tag: str, kind: str, rate: float, duration: float,
                    drain_max: float) -> dict[str, Any]:
        """Send `rate` messages a second (this worker's share) for `duration` seconds."""
        self.latencies = array("q")
        self.receipts = {}
        self.duplicates = 0
        self.errors = 0
        self.error_samples = []
        disconnects_before = self.disconnects
        rooms = [r for r in self.rooms.values() if r.key[0] == kind
                 and len(r.members) == (SMALL if kind == "s" else BIG)]
        expected = 0
        sent = 0
        late_ns = 0
        if rooms and rate > 0:
            interval = 1e9 / rate
            count = max(1, int(rate * duration))
            t0 = time.monotonic_ns() + 20_000_000
            for k in range(count):
                intended = t0 + int(k * interval)
                delay = intended - time.monotonic_ns()
                if delay > 0:
                    await asyncio.sleep(delay / 1e9)
                else:
                    late_ns = max(late_ns, -delay)
                room = rooms[k % len(rooms)]
                sender = self.clients.get(room.members[(k // len(rooms)) % len(room.members)])
                if sender is None or sender.ws is None:
                    continue
                mid = f"{tag}x{self.index}x{k:07d}"
                self.receipts[mid] = 0
                expected += len(room.members) - 1
                try:
                    await sender.ws.send(self._frame(room, mid, f"B|{intended}|{mid}|"))
                    sent += 1
                except websockets.ConnectionClosed:
                    pass
            t_end = t0 + int(count * interval)
        else:
            t0 = t_end = time.monotonic_ns()
        deadline = time.monotonic() + drain_max
        while time.monotonic() < deadline and sum(self.receipts.values()) < expected:
            await asyncio.sleep(0.05)
        delivered = sum(self.receipts.values())
        span = max(self.last_receipt, t_end) - t0
        return {
            "sent": sent, "expected": expected, "delivered": delivered,
            "duplicates": self.duplicates, "errors": self.errors,
            "error_samples": self.error_samples,
            "disconnects": self.disconnects - disconnects_before,
            "span_ns": span, "sender_late_ms": late_ns / 1e6,
            "latencies": self.latencies,
        }

    async def close(self) -> None:
        for c in self.clients.values():
            if c.ws is not None:
                try:
                    await asyncio.wait_for(c.ws.close(), 2)
                except Exception:
                    pass
        self.clients.clear()


def worker_main(pipe: Connection, url: str, dialect: str, index: int, workers: int,
                compression: bool = True) -> None:
    """Entry point of a load generator process."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))

    async def run() -> None:
        worker = Worker(url, dialect, index, workers, compression)
        loop = asyncio.get_running_loop()
        while True:
            command, args = await loop.run_in_executor(None, pipe.recv)
            if command == "grow":
                pipe.send(await worker.grow(*args))
            elif command == "phase":
                pipe.send(await worker.phase(*args))
            elif command == "close":
                await worker.close()
                pipe.send({})
                return

    asyncio.run(run())
