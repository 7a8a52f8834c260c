"""The production HTTP server: gevent's pywsgi with the limits a shared Wi-Fi needs.

Imported only in production, after gevent has patched the standard library.
On top of pywsgi:

- every accepted connection asks `Admission` first; refusals are answered in
  words (HTTP 503/429, or a WebSocket close the web app can show);
- the TLS handshake and each request's line and headers must arrive within
  `header_timeout_s` (an idle keep-alive connection is closed after as long);
- a request's body must keep arriving: each read within `header_timeout_s`, and
  the whole body within `header_timeout_s` plus one second per `MIN_BODY_RATE`
  bytes (408 and a closed connection otherwise), also when the application
  never reads it and pywsgi discards it;
- when a WebSocket ends, the TCP connection ends too. pywsgi does not know the
  connection was upgraded: it would wait for another HTTP request on it (and
  parse what is left of an oversized frame as one), so clients never saw the
  connection close after the close handshake.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Any, NoReturn

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer
from werkzeug.exceptions import RequestTimeout

from .admission import REFUSAL_ENVIRON_KEY, Admission, Refusal, Ticket

log = logging.getLogger(__name__)

# After our close frame, how long the client may take to send its own and close.
WEBSOCKET_LINGER_S = 2.0
# How long a connection refused before its request waits for that request,
# and how many may wait at once.
REFUSAL_LINGER_S = 0.5
MAX_LINGERING_REFUSALS = 32
# Refusals are logged at most this often per client address.
LOG_REFUSALS_EVERY_S = 60.0
# The slowest request body the box waits for, in bytes per second (an 8 MiB
# picture may take 8.5 minutes; a 1 KB form, the header timeout).
MIN_BODY_RATE = 16 * 1024
# How long a chunked body (no Content-Length) may take at most: as long as the
# largest body the application accepts would.
CHUNKED_BODY_BYTES = 8 * 1024 * 1024


class GreenThread:
    """A thread as simple-websocket and a connection's writer use one (start,
    is_alive, join, a name), as one greenlet.

    Under gevent a `threading.Thread` is a greenlet already, but starting one
    costs its bookkeeping too (a started Event waited on, the registry of
    threads): 88 us against 12 here, twice for each WebSocket connection.
    """

    def __init__(self, target: Callable[[], Any], name: str = "green", daemon: bool = True) -> None:
        self._target = target
        self.name = name
        self.daemon = daemon
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        if self._greenlet is not None:
            raise RuntimeError("threads can only be started once")
        self._greenlet = gevent.spawn(self._target)

    def is_alive(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def join(self, timeout: float | None = None) -> None:
        if self._greenlet is not None:
            self._greenlet.join(timeout)


class HeadersTooSlow(Exception):
    """The request line and headers did not arrive in time."""


class BodyTooSlow(RequestTimeout):
    """A request's body stalled or dripped in slower than the box waits for.

    An HTTP error, so Flask answers 408 when the application was reading it
    (not an OSError: Werkzeug would take that for a client that went away);
    when pywsgi discards an unread body, `AhoyHandler.handle_error` answers.
    """


class BodyReader:
    """The connection's reader while a request body arrives, under a deadline.

    Each read must return within `idle_s`, and all of them before `deadline`
    (time.monotonic()). On a late read it marks the connection for closing
    (the rest of the body is still on the way) and raises BodyTooSlow.
    """

    def __init__(self, rfile: Any, handler: WSGIHandler, idle_s: float,
                 deadline: float) -> None:
        self._rfile = rfile
        self._handler = handler
        self._idle_s = idle_s
        self._deadline = deadline
        self.allowed_s = max(0.0, deadline - time.monotonic())
        self._late = False

    def read(self, *args: Any) -> bytes:
        return self._timed(self._rfile.read, *args)

    def readline(self, *args: Any) -> bytes:
        return self._timed(self._rfile.readline, *args)

    def _timed(self, reader: Any, *args: Any) -> bytes:
        seconds = min(self._idle_s, self._deadline - time.monotonic())
        if seconds <= 0 or self._late:
            # Late already: the rest is not awaited.
            self._give_up()
        timer = gevent.Timeout(seconds)
        timer.start()
        try:
            data: bytes = reader(*args)
            return data
        except gevent.Timeout as late:
            if late is not timer:
                raise
            self._give_up()
        finally:
            timer.close()

    def _give_up(self) -> NoReturn:
        self._late = True
        self._handler.close_connection = True
        raise BodyTooSlow(f"The request's body did not arrive in time (the box waits "
                          f"{self._idle_s:g} s for each part and {self.allowed_s:.0f} s "
                          "in all).")


def refusal_response(refusal: Refusal, retry_after_s: int = 30) -> bytes:
    """A whole HTTP response for a refused connection, readable in a browser."""
    body = (refusal.message + "\n").encode()
    reason = "Service Unavailable" if refusal.status == 503 else "Too Many Requests"
    return (f"HTTP/1.1 {refusal.status} {reason}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Retry-After: {retry_after_s}\r\n"
            "Connection: close\r\n\r\n").encode() + body


def _timeout_response(seconds: float) -> bytes:
    body = f"The request did not arrive within {seconds:g} seconds.\n".encode()
    return (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body


def _late_body_response(sentence: str) -> bytes:
    body = (sentence + "\n").encode()
    return (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body


class AhoyHandler(WSGIHandler):  # type: ignore[misc]
    """One connection: header timeouts, refusals after the headers, WebSocket endings."""

    server: AhoyWSGIServer
    ticket: Ticket
    _headers_timer: Any = None
    _first_request = True

    def handle_one_request(self) -> Any:
        limit = self.server.limits.header_timeout_s
        seconds = limit
        if self._first_request:
            # The TLS handshake came out of the same allowance.
            self._first_request = False
            seconds = max(0.1, self.ticket.arrived + limit - time.monotonic())
        self._headers_timer = gevent.Timeout(seconds, HeadersTooSlow)
        self._headers_timer.start()
        try:
            return super().handle_one_request()
        finally:
            self._headers_timer.close()

    def read_requestline(self) -> str:
        try:
            line: str = super().read_requestline()
            return line
        except HeadersTooSlow:
            return ""  # nothing (or not even a whole line) in time: close without a word

    def read_request(self, raw_requestline: str) -> Any:
        try:
            return super().read_request(raw_requestline)
        finally:
            self._headers_timer.close()
            self.server.admission.headers_read(self.ticket)

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        body = self.wsgi_input
        if body is not None and (self.content_length or body.chunked_input):
            size = self.content_length or CHUNKED_BODY_BYTES
            idle = self.server.limits.header_timeout_s
            body.rfile = BodyReader(body.rfile, self, idle,
                                    time.monotonic() + idle + size / MIN_BODY_RATE)
        return environ

    def handle_error(self, kind: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, BodyTooSlow):
            super().handle_error(kind, value, tb)
            return
        # Late while pywsgi discarded a body the application left unread: the
        # answer is usually out already; the rest of the body never will be.
        self.close_connection = True
        if not self.response_length:
            try:
                self.socket.sendall(_late_body_response(value.description))
            except OSError:
                pass

    def _handle_client_error(self, ex: Exception) -> Any:
        if isinstance(ex, HeadersTooSlow):
            return ("408", _timeout_response(self.server.limits.header_timeout_s))
        return super()._handle_client_error(ex)

    def _wants_websocket(self) -> bool:
        return str(self.environ.get("HTTP_UPGRADE", "")).lower() == "websocket"

    def handle_one_response(self) -> None:
        refusal = self.ticket.refusal
        websocket = self._wants_websocket()
        if refusal is not None and not websocket:
            self.close_connection = True
            try:
                self.socket.sendall(refusal_response(refusal))
            except OSError:
                pass
            return
        if refusal is not None:
            self.environ[REFUSAL_ENVIRON_KEY] = refusal.message
        super().handle_one_response()
        # flask-sock answers an upgrade on the socket itself: no WSGI status.
        if websocket and self.status is None:
            self.close_connection = True
            # A refused one goes at once: lingering would let a flood hold places.
            self._end_websocket(linger=refusal is None)

    def _end_websocket(self, linger: bool) -> None:
        """Close the TCP connection the way RFC 6455 asks of a server.

        simple-websocket reads and writes a duplicate of this socket, and closing
        the duplicate does not end the connection. The close frame has been
        sent (or received): send FIN, let the client's close frame and FIN
        arrive for a moment, then shut the socket so the duplicate's reader
        wakes up too.
        """
        sock = self.socket
        if sock is None or sock.fileno() < 0:
            return
        if not linger or hasattr(sock, "do_handshake"):
            # TLS: simple-websocket shares this very object (it cannot be
            # duplicated); reading it here too would race its reader.
            _shutdown(sock, socket.SHUT_RDWR)
            return
        _shutdown(sock, socket.SHUT_WR)
        with gevent.Timeout(WEBSOCKET_LINGER_S, False):
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass
        _shutdown(sock, socket.SHUT_RDWR)


def _read_headers(sock: Any, limit: int = 16384) -> None:
    """Read until the end of a request's headers, the end of the data, or `limit` bytes."""
    seen = b""
    while b"\r\n\r\n" not in seen and len(seen) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            return
        seen += chunk


def _shutdown(sock: Any, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass


class AhoyWSGIServer(WSGIServer):  # type: ignore[misc]
    """pywsgi's server, asking `admission` before serving each connection.

    For HTTPS pass `ssl_context` and `do_handshake_on_connect=False`: the
    handshake then runs here, under the header timeout.
    """

    handler_class = AhoyHandler

    def __init__(self, listener: Any, application: Any, admission: Admission,
                 **kwargs: Any) -> None:
        super().__init__(listener, application, **kwargs)
        self.admission = admission
        self.limits = admission.limits
        self._refusals_logged: dict[str, float] = {}
        self._lingering = 0

    def handle(self, sock: Any, address: Any) -> None:
        client = str(address[0]) if isinstance(address, tuple) else "unknown"
        ticket = self.admission.arrive(client)
        try:
            if ticket.refusal is not None:
                self._note_refusal(client, ticket.refusal)
            if not ticket.counted:
                self._refuse_at_once(sock, ticket)
                return
            if hasattr(sock, "do_handshake") and not self._handshake(sock):
                return
            handler = self.handler_class(sock, address, self)
            handler.ticket = ticket
            handler.handle()
        finally:
            self.admission.leave(ticket)

    def _refuse_at_once(self, sock: Any, ticket: Ticket) -> None:
        """Refuse without serving the request (over HTTPS: just close).

        Clients read an answer only after sending their request (and closing
        with the request unread resets the connection), so a few refused
        connections wait a moment for their request's headers. Not more, or a
        flood would hold the descriptors it was refused.
        """
        assert ticket.refusal is not None
        if hasattr(sock, "do_handshake"):
            return
        wait = self._lingering < MAX_LINGERING_REFUSALS
        self._lingering += wait
        try:
            if wait:
                with gevent.Timeout(REFUSAL_LINGER_S, False):
                    _read_headers(sock)
            with gevent.Timeout(REFUSAL_LINGER_S, False):
                sock.sendall(refusal_response(ticket.refusal))
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            self._lingering -= wait

    def _handshake(self, sock: Any) -> bool:
        with gevent.Timeout(self.limits.header_timeout_s, False):
            try:
                sock.do_handshake()
                return True
            except OSError:  # ssl.SSLError is one
                return False
        return False

    def _note_refusal(self, client: str, refusal: Refusal) -> None:
        now = time.monotonic()
        if now - self._refusals_logged.get(client, -LOG_REFUSALS_EVERY_S) < LOG_REFUSALS_EVERY_S:
            return
        if len(self._refusals_logged) > 4096:
            self._refusals_logged.clear()
        self._refusals_logged[client] = now
        log.warning("refused connections from %s: %s (%d refused so far)", client,
                    refusal.name.lower().replace("_", " "), sum(self.admission.refused.values()))
