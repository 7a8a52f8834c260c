"""A phone that stops reading is told and caught up from the store.

The box keeps at most `ws.MAX_QUEUE` frames / `ws.MAX_QUEUE_BYTES` waiting for
one connection. Past that, the phone gets what was queued, then close code
4009, and on reconnecting with `since` the store gives it the rest: nothing
acknowledged is missing, and the box's memory did not grow with its backlog.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ahoytest import AhoyServer, WsClient

from appliance.ws import CLOSE_TOO_SLOW

SENDERS = 60  # from 127.0.0.2: a device may hold 64 connections
EACH = 55  # within the burst allowance of 60 frames


class RawClient:
    """A WebSocket client on a raw socket with a tiny receive buffer, which
    reads only when told to (a phone whose app froze)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        return data

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self._recv()
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        header = bytes([0x81, 0x80 | len(payload)]) + mask
        self.sock.sendall(header + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """(opcode, payload) of each frame until the close frame (included)."""
        while True:
            first, second = self._take(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._take(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._take(8))
            payload = self._take(length)
            yield first & 0x0F, payload
            if first & 0x0F == 0x8:
                return


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AhoyServer]:
    server = AhoyServer(tmp_path_factory.mktemp("slow") / "data", production=True).start()
    yield server
    server.stop()


def test_a_phone_that_stops_reading_is_closed_with_4009_and_catches_up_with_since(
        box: AhoyServer, tmp_path: Path) -> None:
    senders = [WsClient(box.ws_url, source="127.0.0.2") for _ in range(SENDERS)]
    for i, c in enumerate(senders):
        c.hello(f"Busy{i}")
    # Connected last, so it wakes up before its keep-alive pings go unanswered.
    slow = RawClient(box.http_port)
    slow.send({"type": "hello", "name": "Frozen"})
    welcome = json.loads(next(slow.frames())[1])
    assert welcome["type"] == "welcome"
    me, token = welcome["you"]["id"], welcome["token"]
    text = "x" * 3900

    def burst(index: int, client: WsClient) -> None:
        for n in range(EACH):
            client.send("send", id=f"m-{index:02}-{n:05}", to=me, text=text)
        for _ in range(EACH):  # every message is acknowledged: stored
            client.expect("ack", timeout=60)

    threads = [threading.Thread(target=burst, args=(i, c)) for i, c in enumerate(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    # The box kept delivering to everyone else meanwhile: the others' acks came.
    assert not any(t.is_alive() for t in threads)

    # The phone wakes up: it gets what was queued, then is told to catch up.
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    seen: dict[str, set[int]] = {}
    close_code = None
    for opcode, payload in slow.frames():
        if opcode == 0x8:
            (close_code,) = struct.unpack("!H", payload[:2])
            break
        if opcode != 0x1:  # pings
            continue
        m = json.loads(payload)
        if m["type"] == "message":
            seen.setdefault(m["conv"], set()).add(m["seq"])
    assert close_code == CLOSE_TOO_SLOW
    received = sum(len(s) for s in seen.values())
    assert received < SENDERS * EACH, "the backlog was kept in memory instead of shed"

    # What arrived has no holes: each chat's first messages, in order.
    assert all(seqs == set(range(1, max(seqs) + 1)) for seqs in seen.values())

    back = WsClient(box.ws_url)
    since = {conv: max(seqs) for conv, seqs in seen.items()}
    assert back.hello(token=token, since=since)["you"]["id"] == me
    convs = {f"dm:{':'.join(sorted((me, c.user_id or '')))}" for c in senders}
    behind = {conv for conv in convs if since.get(conv, 0) < EACH}
    assert behind
    for _ in behind:
        history = back.expect("history", timeout=10)
        assert history["conv"] in behind
        seen.setdefault(history["conv"], set()).update(m["seq"] for m in history["messages"])
    assert set(seen) == convs
    assert all(seqs == set(range(1, EACH + 1)) for seqs in seen.values())
    back.close()
    for c in senders:
        c.close()
