"""The WebSocket endpoint: a thin edge between sockets and the hub.

Each connection gets a bounded outgoing queue drained by its own writer, so a
client that stops reading never stalls delivery to anyone else nor fills the
box's memory. When its queue holds MAX_QUEUE frames or MAX_QUEUE_BYTES:

- what others send it (messages, presence, call events) is not queued: what
  is queued is still written, then the connection is closed with code 4009,
  and the phone catches up from the store (`hello` with `since`) when it
  reconnects;
- its own requests are not read until the queue is below the limits again, so
  the answers to what it asks (history, search) wait in its socket, not here.

Frames are built here as the bytes that go on the wire, not by simple-websocket:
a broadcast (the same text to many) is encoded, compressed and framed once for
all its recipients. A frame is written at once when the socket takes it without
waiting and nothing waits before it; otherwise it is queued for the writer,
which writes all that waits in one call. What the hub sends inside `gathered()`
(a group commit's acks and messages) goes to each connection in one write at
its end: at 800 messages a second, one write per recipient and message was
most of the box's CPU.
"""

from __future__ import annotations

import _socket
import json
import logging
import socket
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, request
from flask_sock import ConnectionClosed, Sock
from wsproto.extensions import PerMessageDeflate

from .admission import REFUSAL_ENVIRON_KEY
from .hub import Hub
from .protocol import MAX_FRAME_BYTES

log = logging.getLogger(__name__)

# simple-websocket pings every interval and closes a connection whose pong has
# not come by the next ping: a phone that vanished without a goodbye is gone
# (and shown offline to others) within two intervals (docs/protocol.md).
PING_INTERVAL_S = 10
# What may wait for one phone (docs/protocol.md, "Falling behind"). A frame
# is always taken while nothing waits, so any single frame gets through.
MAX_QUEUE = 1000
MAX_QUEUE_BYTES = 4 * 1024 * 1024
# A phone told to catch up has this long to read what was queued and the close.
CLOSE_GRACE_S = 30.0
# The writer writes what waits in one call, up to about this much at a time.
WRITE_BATCH_BYTES = 64 * 1024
# Frames of at least this many bytes go compressed to a phone that agreed on
# permessage-deflate; smaller ones gain little (docs/protocol.md, "Compression").
DEFLATE_MIN_BYTES = 256
DEFLATE_LEVEL = 6
# The offer the box accepts in place of the phone's own (RFC 7692 lets a server
# answer with both parameters whatever was offered).
DEFLATE_OFFER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
# Broadcast frames kept for their next recipients (see `FrameCache`).
FRAME_CACHE_ENTRIES = 256
FRAME_CACHE_BYTES = 4 * 1024 * 1024
RECEIVE_POLL_S = 5
HELLO_TIMEOUT_S = 10.0
# Close codes of docs/protocol.md's table.
CLOSE_TRY_AGAIN_LATER = 1013  # the box refused the connection (too many); the reason says why
CLOSE_NO_HELLO = 4002
CLOSE_TOO_SLOW = 4009


class _Close:
    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


def _frame(first: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


def text_frame(text: str) -> bytes:
    """`text` as one server-to-client WebSocket text frame (RFC 6455, 5.2): FIN
    and opcode 1, unmasked, the payload's length in 7, 7+16 or 7+64 bits.

    A lone surrogate (which JSON can carry) cannot be UTF-8: it goes as "?"
    rather than failing the send.
    """
    return _frame(0x81, text.encode("utf-8", "replace"))


def compressor_for(size: int) -> Any:
    """A raw deflate compressor whose window and hash table fit a payload of
    `size` bytes.

    Setting up zlib's largest ones (32 KiB window, 128 KiB of hash and buffers)
    took longer than compressing a typical reply: 108 of 120 us for a 300-byte
    frame, and 130 against 60 us for a 6.6 KB `welcome` (bench/deflate.py), for
    the same output. A window no larger than the payload finds every match a
    32 KiB one would, and any permessage-deflate reader takes a smaller window
    than the 2^15 it allows (RFC 7692, 7.1.2).
    """
    window_bits = min(15, max(9, (size - 1).bit_length()))
    return zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -window_bits,
                            min(8, max(1, window_bits - 7)))


def deflated_text_frame(text: str) -> bytes:
    """`text_frame` compressed as permessage-deflate without context takeover
    (RFC 7692: RSV1 set, the deflate stream without its final 00 00 ff ff),
    when it is at least DEFLATE_MIN_BYTES and comes out smaller."""
    payload = text.encode("utf-8", "replace")
    if len(payload) >= DEFLATE_MIN_BYTES:
        deflate = compressor_for(len(payload))
        data = (deflate.compress(payload) + deflate.flush(zlib.Z_SYNC_FLUSH))[:-4]
        if len(data) < len(payload):
            return _frame(0xC1, data)
    return _frame(0x81, payload)


def deflate_negotiated(ws: Any) -> bool:
    """Whether simple-websocket's connection agreed on permessage-deflate (wsproto's
    state; if that ever moves, frames go uncompressed, which is always allowed)."""
    proto = getattr(getattr(ws.ws, "connection", None), "_proto", None)
    return any(isinstance(e, PerMessageDeflate) for e in getattr(proto, "extensions", ()))


class FrameCache:
    """The frames of recent broadcasts, by their text.

    The hub hands the same encoded text to each recipient of a broadcast (and
    of a `changes` frame, one per kind of phone), one after the other: the
    first recipient's frame serves the rest. Bounded in entries and bytes; the
    oldest goes first.
    """

    def __init__(self, build: Callable[[str], bytes], max_entries: int = FRAME_CACHE_ENTRIES,
                 max_bytes: int = FRAME_CACHE_BYTES) -> None:
        self.build = build
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._frames: dict[str, bytes] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def frame(self, text: str) -> bytes:
        frame = self._frames.get(text)  # one step under the GIL: no lock needed
        if frame is not None:
            return frame
        frame = self.build(text)
        size = len(text) + len(frame)
        if size > self.max_bytes // 4:
            return frame  # a rare big one would push out all the others
        with self._lock:
            while self._frames and (len(self._frames) >= self.max_entries
                                    or self._bytes + size > self.max_bytes):
                old = next(iter(self._frames))
                self._bytes -= len(old) + len(self._frames.pop(old))
            if text not in self._frames:
                self._frames[text] = frame
                self._bytes += size
        return frame


BROADCASTS = FrameCache(text_frame)
DEFLATED_BROADCASTS = FrameCache(deflated_text_frame)


class _Gathering(threading.local):
    """The connections that hold frames gathered by this thread (under gevent,
    this greenlet) for one write each; None when not gathering."""

    held: dict[SocketPeer, None] | None = None


_gathering = _Gathering()


@contextmanager
def gathered() -> Iterator[None]:
    """Frames queued inside go to each connection in one write, at the end.

    For the sender's own thread only: what other threads send meanwhile goes
    out as usual (behind the gathered frames, in order). Nested, the
    outermost one writes.
    """
    if _gathering.held is not None:
        yield
        return
    held: dict[SocketPeer, None] = {}
    _gathering.held = held
    try:
        yield
    finally:
        _gathering.held = None
        for peer in held:
            peer.write_gathered()


class WholeFrames:
    """The connection's socket, with `send` writing all it is given.

    simple-websocket writes frames with `socket.send`, which writes only what
    fits in the socket's buffer: to a phone that reads slowly the rest of the
    frame was lost and the stream corrupted. Here each frame is written whole,
    one writer at a time (the writer and the keep-alive pings share the socket).

    `try_send` writes a frame at once when the socket takes it without waiting
    (most frames: a phone that reads keeps its socket's buffer empty), without
    handing it to the connection's writer. What the socket did not take of it
    is written first by the next `send`.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self.rest = b""  # the unwritten end of a frame `try_send` began
        # The kernel's socket, to write to without waiting: gevent's socket
        # wraps it; a plain socket is one. Never under TLS (it would bypass it).
        # (A socket with a timeout would wait for room first: not that either.)
        inner = getattr(sock, "_sock", sock)
        plain = isinstance(inner, _socket.socket) and not hasattr(sock, "do_handshake")
        self._raw = inner if plain and inner.gettimeout() in (None, 0.0) else None

    def send(self, data: bytes) -> int:
        with self._lock:
            if self.rest:
                self._sock.sendall(self.rest)
                self.rest = b""
            self._sock.sendall(data)
        return len(data)

    def try_send(self, data: bytes) -> bool:
        """Begin writing `data` if the socket takes some now; False: nothing written."""
        if self._raw is None or self.rest or not self._lock.acquire(blocking=False):
            return False
        try:
            if self.rest:
                return False
            try:
                n = self._raw.send(data, socket.MSG_DONTWAIT)
            except OSError:  # full (EAGAIN), or gone: the writer finds out
                return False
            if n < len(data):
                self.rest = data[n:]
            return True
        finally:
            self._lock.release()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class SocketPeer:
    """A client connection: `send` queues frames, a writer thread writes them."""

    def __init__(self, ws: Any, max_queue: int = MAX_QUEUE,
                 max_bytes: int = MAX_QUEUE_BYTES, deflate: bool = False,
                 thread_class: Callable[..., Any] = threading.Thread) -> None:
        if not isinstance(ws.sock, WholeFrames):
            ws.sock = WholeFrames(ws.sock)
        self.ws = ws
        self.max_queue = max_queue
        self.max_bytes = max_bytes
        self.frame = deflated_text_frame if deflate else text_frame
        self.broadcasts = DEFLATED_BROADCASTS if deflate else BROADCASTS
        # Unbounded itself: the bound is kept in `_put`, so a close always
        # fits behind what is queued.
        self.pending: deque[bytes | _Close] = deque()
        self.queued = 0  # frames and bytes waiting
        self.queued_bytes = 0
        self.count_lock = threading.Lock()
        self.wake = threading.Event()  # set when something was queued
        self.writing = False  # the writer holds frames it took and has not written
        self.closing = False
        self.fell_behind = False
        self.room = threading.Event()  # set while the queue is below its limits
        self.room.set()
        self.full_since: float | None = None
        self.writer = thread_class(target=self._write, name="ahoy-ws-writer", daemon=True)

    def start(self) -> None:
        self.writer.start()

    def send(self, message: dict[str, Any]) -> None:
        """Queue an answer to this phone's own request (never shed: the phone's
        requests wait instead, see `wait_for_room`)."""
        self._put(self.frame(json.dumps(message, separators=(",", ":"), ensure_ascii=False)),
                  shed=False)

    def send_reply_encoded(self, text: str) -> None:
        """`send` for an answer that is already encoded (a crowd's `welcome`)."""
        self._put(self.frame(text), shed=False)

    def send_encoded(self, text: str) -> None:
        """Queue an already encoded message from someone else (a broadcast
        encodes once for all, and is framed once for all here); a phone too
        far behind is told to catch up."""
        if self.closing:
            return
        self._put(self.broadcasts.frame(text), shed=True)

    def full(self) -> bool:
        return self.queued >= self.max_queue or self.queued_bytes >= self.max_bytes

    def _put(self, frame: bytes, shed: bool) -> None:
        if self.closing:
            return
        with self.count_lock:
            over = shed and self.queued > 0 and (
                self.queued >= self.max_queue or self.queued_bytes + len(frame) > self.max_bytes)
            held = _gathering.held
            if not over:
                if (held is None and not self.pending and not self.writing
                        and self.ws.connected and self.ws.sock.try_send(frame)):
                    # Written at once, in order: nothing else waits to be.
                    if self.ws.sock.rest:
                        self.wake.set()  # the writer writes the rest
                    return
                self.queued += 1
                self.queued_bytes += len(frame)
                if self.full():
                    self.room.clear()
                self.pending.append(frame)
        if over:
            self._fall_behind()
            return
        if held is not None:
            held[self] = None  # `write_gathered` writes it, with the others
        elif not self.wake.is_set():
            self.wake.set()

    def write_gathered(self) -> None:
        """Write what waits at once, in one call, when the socket takes it
        without waiting (as `_put` does with one frame); else the writer does."""
        with self.count_lock:
            if self.pending and not self.writing and self.ws.connected:
                batch, size = self._next_batch()
                if batch and self.ws.sock.try_send(
                        batch[0] if len(batch) == 1 else b"".join(batch)):
                    self._dequeue(len(batch), size)
                    if not self.pending and not self.ws.sock.rest:
                        return
        self.wake.set()  # the rest, or all of it: the writer

    def _next_batch(self) -> tuple[list[bytes], int]:
        """The frames at the head of the queue that go in one write (up to
        WRITE_BATCH_BYTES, none past a close), and their size; left queued.
        Under `count_lock`."""
        batch: list[bytes] = []
        size = 0
        for item in self.pending:
            if isinstance(item, _Close) or size >= WRITE_BATCH_BYTES:
                break
            batch.append(item)
            size += len(item)
        return batch, size

    def _dequeue(self, count: int, size: int) -> None:
        """Take `count` frames of `size` bytes off the head of the queue (what
        `_next_batch` gave). Under `count_lock`."""
        for _ in range(count):
            self.pending.popleft()
        self.queued -= count
        self.queued_bytes -= size
        if not self.full():
            self.room.set()

    def wait_for_room(self, timeout: float) -> bool:
        """Wait until the queue is below its limits; False when it still is not.

        A phone that reads none of its answers for CLOSE_GRACE_S is told to
        catch up later (4009), so what it keeps sending is not held either.
        """
        if not self.full() or self.closing:
            self.full_since = None
            return True
        now = time.monotonic()
        if self.full_since is None:
            self.full_since = now
        elif now - self.full_since > CLOSE_GRACE_S:
            self._fall_behind()
            return False
        return self.room.wait(timeout)

    def _fall_behind(self) -> None:
        """The phone does not read fast enough: let it have what is queued, then
        close (4009) so it catches up from the store instead of from memory."""
        log.warning("a client fell %d frames behind; closing it so it catches up from the store",
                    self.queued)
        self.fell_behind = True
        self.close(CLOSE_TOO_SLOW, "too slow: reconnect to catch up")
        timer = threading.Timer(CLOSE_GRACE_S, self._abort_if_writing)
        timer.daemon = True
        timer.start()

    def _abort_if_writing(self) -> None:
        if self.writer.is_alive():
            self._abort()

    def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        self._put_close(_Close(code, reason))

    def finish(self) -> None:
        """The reading side is done: stop the writer."""
        self.closing = True
        self._put_close(_Close(1000, ""))
        self.writer.join(timeout=5)

    def _abort(self) -> None:
        """Cut the TCP connection; unblocks a writer stuck on a full socket."""
        self.closing = True
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._put_close(_Close(1011, ""))

    def _put_close(self, close: _Close) -> None:
        with self.count_lock:
            self.pending.append(close)
        self.wake.set()

    def _write(self) -> None:
        more = False
        while True:
            if not more:
                self.wake.wait()
                self.wake.clear()
            # All that waits (up to WRITE_BATCH_BYTES) goes in one write.
            close: _Close | None = None
            with self.count_lock:
                batch, size = self._next_batch()
                self._dequeue(len(batch), size)
                pending = self.pending
                head = pending[0] if pending and size < WRITE_BATCH_BYTES else None
                if isinstance(head, _Close):
                    close = head
                    pending.popleft()
                more = bool(pending)
                self.writing = bool(batch)
            try:
                if batch or self.ws.sock.rest:
                    if not self.ws.connected:
                        raise ConnectionClosed(self.ws.close_reason, self.ws.close_message)
                    self.ws.sock.send(batch[0] if len(batch) == 1 else b"".join(batch))
                    self.writing = False
                if close is not None:
                    if self.ws.connected:
                        self.ws.close(reason=close.code, message=close.reason)
                    return
            except (ConnectionClosed, OSError):
                self._abort()
                return


def origin_allowed(origin: str | None, host: str | None, extra: frozenset[str]) -> bool:
    """Browsers always send Origin: it must be this site (or one configured).

    Clients that are not browsers (the terminal client, tests) send none.
    """
    if origin is None:
        return True
    if origin in extra:
        return True
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.scheme in ("http", "https") and parts.netloc == host


def install(app: Flask, hub: Hub, extra_origins: frozenset[str],
            hello_timeout_s: float = HELLO_TIMEOUT_S) -> None:
    # The production server adds its own "thread_class" (wsgiserver.GreenThread):
    # simple-websocket's reader and the connection's writer start as it says.
    options = app.config["SOCK_SERVER_OPTIONS"] = {
        "ping_interval": PING_INTERVAL_S,
        "max_message_size": MAX_FRAME_BYTES,
    }
    sock = Sock(app)
    hub.gathered = gathered

    @app.before_request
    def check_origin() -> None:
        if request.path != "/ws":
            return
        if not origin_allowed(request.headers.get("Origin"), request.host, extra_origins):
            abort(403, "This page may not open a connection to the box.")
        # permessage-deflate only without context takeover, whatever was offered:
        # a frame is then compressed once for all its recipients, and no
        # connection keeps zlib state (about 300 KiB each with it, bench/memory.py).
        offer = request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", "")
        if any(o.split(";")[0].strip().lower() == "permessage-deflate"
               for o in str(offer).split(",")):
            request.environ["HTTP_SEC_WEBSOCKET_EXTENSIONS"] = DEFLATE_OFFER

    @sock.route("/ws")
    def websocket(ws: Any) -> None:
        refusal = request.environ.get(REFUSAL_ENVIRON_KEY)
        if refusal:
            # Upgraded only to say why: a browser shows a close reason, not an HTTP body.
            ws.close(reason=CLOSE_TRY_AGAIN_LATER, message=refusal)
            return
        peer = SocketPeer(ws, deflate=deflate_negotiated(ws),
                          thread_class=options.get("thread_class") or threading.Thread)
        peer.start()
        hub.connect(peer, request.remote_addr or "")
        hello_by: float | None = time.monotonic() + hello_timeout_s
        try:
            while not peer.closing:
                # A timeout, because simple-websocket can drop the wake-up when
                # it closes a connection for an oversized frame.
                wait: float = RECEIVE_POLL_S
                if not peer.wait_for_room(wait):
                    continue  # its answers are not read yet: its requests wait
                if hello_by is not None:
                    wait = min(wait, max(0.01, hello_by - time.monotonic()))
                frame = ws.receive(timeout=wait)
                if frame is None:
                    if not ws.connected:
                        break
                    if hello_by is not None and time.monotonic() >= hello_by:
                        # A connection that never speaks only holds descriptors.
                        peer.close(CLOSE_NO_HELLO, "say hello first")
                        break
                    continue
                hello_by = None  # the first frame must be the hello; the hub checks it
                hub.handle(peer, frame)
        except ConnectionClosed:
            pass
        finally:
            hub.disconnect(peer)
            peer.finish()
            # Werkzeug keeps its own reference to the socket, so closing it is
            # not enough for the client to see the end of the connection. (The
            # production server ends the connection itself: see wsgiserver.py.)
            # Only the sending side: shutting the receiving side too, while a
            # flooder's frames wait unread, makes the close reset the connection,
            # and a reset throws away the error and close frame still on their way.
            try:
                ws.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
