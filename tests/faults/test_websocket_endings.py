"""The production server ends the TCP connection when a WebSocket ends.

gevent's pywsgi did not know the connection had been upgraded: after a clean
close handshake it waited for another HTTP request on it (clients waited out
their close timeouts, 10 s for a `websockets` client), and after an oversized
frame it parsed the frame's unread rest as the next request line. A rest over
8 KiB got a 414 and a reset; a shorter one (65,537 or 70,000-byte frames) waited
for its newline forever, so the client saw no reply and no close.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ahoytest import AhoyServer, WsClient, unique
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

FRAME_LIMIT = 65536
EOF_WITHIN_S = 15.0  # generous for a loaded machine: the fix closes at once, the bug never did


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AhoyServer]:
    box = AhoyServer(tmp_path_factory.mktemp("endings") / "data", production=True).start()
    yield box
    box.stop()


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def raw_websocket(server: AhoyServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def until_eof(sock: socket.socket, timeout: float = EOF_WITHIN_S) -> bytes:
    """Everything the server sends until it ends the connection."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"the server kept the connection open; got {data[:40]!r}") from None
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def test_the_server_ends_tcp_after_a_clean_close_handshake(server: AhoyServer) -> None:
    for _ in range(20):
        with raw_websocket(server) as sock:
            sock.sendall(frame(0x8, (1000).to_bytes(2, "big")))
            # The close frame comes back, then the end of the connection.
            assert until_eof(sock)[:4] == b"\x88\x02\x03\xe8"


def test_a_websockets_client_closes_without_waiting_out_its_close_timeout(
        server: AhoyServer) -> None:
    # Far apart, so a loaded machine cannot blur them: the bug waits 60 s.
    with connect(server.ws_url, close_timeout=60) as ws:
        started = time.monotonic()
        ws.close()
        assert time.monotonic() - started < 30
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000


def test_the_server_ends_tcp_after_it_closes_a_replaced_connection(
        server: AhoyServer) -> None:
    first = WsClient(server.ws_url)
    assert first.hello(unique("Ana"))["type"] == "welcome"
    assert first.token is not None
    second = WsClient(server.ws_url)
    try:
        assert second.hello(token=first.token)["type"] == "welcome"
        with pytest.raises(ConnectionClosed) as closed:
            first.expect("never", timeout=EOF_WITHIN_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("size", [65537, 70000, 99999, 100000, 1000000])
def test_every_frame_over_the_limit_is_closed_with_1009(server: AhoyServer, size: int) -> None:
    with connect(server.ws_url, max_size=2**22, close_timeout=EOF_WITHIN_S) as ws:
        ws.send("x" * size)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=EOF_WITHIN_S)
    assert closed.value.rcvd is not None, "no close frame"
    assert closed.value.rcvd.code == 1009


@pytest.mark.parametrize("size", [70000, 1000000])
def test_after_an_oversized_frame_the_connection_ends(server: AhoyServer, size: int) -> None:
    with raw_websocket(server) as sock:
        sock.sendall(frame(0x1, b"x" * size))
        answer = until_eof(sock)
    assert answer.startswith(b"\x88") and int.from_bytes(answer[2:4], "big") == 1009
    assert b"HTTP/1.1" not in answer  # the rest of the frame is not read as a request


def test_a_frame_at_the_limit_is_read(server: AhoyServer) -> None:
    client = WsClient(server.ws_url)
    try:
        client.send_raw("x" * FRAME_LIMIT)
        assert client.expect("error", timeout=5)["code"] == "bad_json"
    finally:
        client.close()


def test_the_server_holds_no_descriptors_for_closed_websockets(server: AhoyServer) -> None:
    assert server.process is not None
    fds = Path(f"/proc/{server.process.pid}/fd")
    before = len(list(fds.iterdir()))
    for _ in range(50):
        with connect(server.ws_url, close_timeout=EOF_WITHIN_S) as ws:
            ws.send('{"type": "ping"}')
            ws.recv(timeout=5)
    deadline = time.monotonic() + EOF_WITHIN_S
    while len(list(fds.iterdir())) > before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(list(fds.iterdir())) <= before + 5
