"""The WebSocket endpoint: a thin edge between sockets and the hub.

Each connection gets a bounded outgoing queue drained by its own writer, so a
client that stops reading never stalls delivery to anyone else: when its queue
overflows it is disconnected, and it catches up from the store when it
reconnects.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, request
from flask_sock import ConnectionClosed, Sock

from .admission import REFUSAL_ENVIRON_KEY
from .hub import Hub
from .protocol import MAX_FRAME_BYTES

log = logging.getLogger(__name__)

# simple-websocket pings every interval and closes a connection whose pong has
# not come by the next ping: a phone that vanished without a goodbye is gone
# (and shown offline to others) within two intervals (docs/protocol.md).
PING_INTERVAL_S = 10
MAX_QUEUE = 2000
RECEIVE_POLL_S = 5
HELLO_TIMEOUT_S = 10.0
# Close codes of docs/protocol.md's table.
CLOSE_TRY_AGAIN_LATER = 1013  # the box refused the connection (too many); the reason says why
CLOSE_NO_HELLO = 4002


class _Close:
    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class SocketPeer:
    """A client connection: `send` queues, a writer thread writes."""

    def __init__(self, ws: Any, max_queue: int = MAX_QUEUE) -> None:
        self.ws = ws
        self.queue: queue.Queue[str | _Close] = queue.Queue(max_queue)
        self.closing = False
        self.writer = threading.Thread(target=self._write, name="ahoy-ws-writer", daemon=True)

    def start(self) -> None:
        self.writer.start()

    def send(self, message: dict[str, Any]) -> None:
        self.send_encoded(json.dumps(message, separators=(",", ":"), ensure_ascii=False))

    def send_encoded(self, text: str) -> None:
        """Queue an already encoded message (a broadcast encodes once for all)."""
        if self.closing:
            return
        try:
            self.queue.put_nowait(text)
        except queue.Full:
            log.warning("client does not read; disconnecting it")
            self._abort()

    def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        try:
            self.queue.put_nowait(_Close(code, reason))
        except queue.Full:
            self._abort()

    def finish(self) -> None:
        """The reading side is done: stop the writer."""
        self.closing = True
        try:
            self.queue.put_nowait(_Close(1000, ""))
        except queue.Full:
            self._abort()
        self.writer.join(timeout=5)

    def _abort(self) -> None:
        """Cut the TCP connection; unblocks a writer stuck on a full socket."""
        self.closing = True
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.queue.put_nowait(_Close(1011, ""))
        except queue.Full:
            pass

    def _write(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if isinstance(item, _Close):
                    if self.ws.connected:
                        self.ws.close(reason=item.code, message=item.reason)
                    return
                self.ws.send(item)
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
    app.config["SOCK_SERVER_OPTIONS"] = {
        "ping_interval": PING_INTERVAL_S,
        "max_message_size": MAX_FRAME_BYTES,
    }
    sock = Sock(app)

    @app.before_request
    def check_origin() -> None:
        if request.path != "/ws":
            return
        if not origin_allowed(request.headers.get("Origin"), request.host, extra_origins):
            abort(403, "This page may not open a connection to the box.")
        # Refuse permessage-deflate: chat frames are small, and each compressed
        # connection keeps about 300 KiB of zlib state (measured in bench/).
        request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)

    @sock.route("/ws")
    def websocket(ws: Any) -> None:
        refusal = request.environ.get(REFUSAL_ENVIRON_KEY)
        if refusal:
            # Upgraded only to say why: a browser shows a close reason, not an HTTP body.
            ws.close(reason=CLOSE_TRY_AGAIN_LATER, message=refusal)
            return
        peer = SocketPeer(ws)
        peer.start()
        hub.connect(peer, request.remote_addr or "")
        hello_by: float | None = time.monotonic() + hello_timeout_s
        try:
            while not peer.closing:
                # A timeout, because simple-websocket can drop the wake-up when
                # it closes a connection for an oversized frame.
                wait: float = RECEIVE_POLL_S
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
            try:
                ws.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
