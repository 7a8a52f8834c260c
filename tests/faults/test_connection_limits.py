"""One device on the Wi-Fi cannot lock new phones out of the box.

Against the production server (gevent) on loopback: a flooder connects from
127.0.0.2, phones from 127.0.0.3 and up (every 127.x address is loopback on
Linux). The server starts with systemd's default soft limit of 1,024 open
files, under which 1,500 half-open requests or 600 idle WebSockets used to take
every descriptor.
"""

from __future__ import annotations

import base64
import os
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ahoytest import AhoyServer, WsClient, unique
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from appliance.admission import Admission, Limits, Refusal, file_limit_connections

FLOODER = "127.0.0.2"
SYSTEMD_DEFAULT_FILES = (1024, 1024)


# -- the decisions, without sockets ------------------------------------------


def test_a_device_over_its_unfinished_requests_is_refused_at_once_others_are_not() -> None:
    admission = Admission(Limits(unfinished_per_client=3))
    tickets = [admission.arrive("10.42.0.66") for _ in range(3)]
    assert all(t.refusal is None for t in tickets)
    refused = admission.arrive("10.42.0.66")
    assert refused.refusal is Refusal.TOO_MANY_UNFINISHED and not refused.counted
    assert admission.arrive("10.42.0.7").refusal is None
    admission.headers_read(tickets[0])
    assert admission.arrive("10.42.0.66").refusal is None


def test_a_device_over_its_connections_is_answered_after_its_request() -> None:
    admission = Admission(Limits(connections_per_client=2, unfinished_per_client=2))
    for _ in range(2):
        admission.headers_read(admission.arrive("10.42.0.66"))
    third = admission.arrive("10.42.0.66")
    assert third.refusal is Refusal.TOO_MANY_CONNECTIONS and third.counted
    admission.leave(third)
    assert admission.open_connections("10.42.0.66") == 2
    assert admission.arrive("10.42.0.7").refusal is None


def test_a_device_far_over_its_connections_is_refused_before_its_request() -> None:
    admission = Admission(Limits(connections_per_client=2, unfinished_per_client=2))
    tickets = []
    for _ in range(4):
        tickets.append(admission.arrive("10.42.0.66"))
        admission.headers_read(tickets[-1])
    assert [t.counted for t in tickets] == [True] * 4
    fifth = admission.arrive("10.42.0.66")
    assert fifth.refusal is Refusal.TOO_MANY_CONNECTIONS and not fifth.counted
    assert admission.open_connections("10.42.0.66") == 4


def test_a_full_box_refuses_everyone_until_a_connection_closes() -> None:
    admission = Admission(Limits(connections=2))
    first, _second = admission.arrive("a"), admission.arrive("b")
    assert admission.arrive("c").refusal is Refusal.BOX_FULL
    admission.leave(first)
    admission.leave(first)  # closing twice frees one place, not two
    assert admission.arrive("c").refusal is None
    assert admission.arrive("d").refusal is Refusal.BOX_FULL
    assert admission.open_connections() == 2


def test_refusals_say_what_happened_in_words() -> None:
    for refusal in Refusal:
        assert refusal.status in (429, 503)
        assert "try again" in refusal.message.lower()


def test_the_file_limit_leaves_two_descriptors_per_websocket() -> None:
    assert file_limit_connections(1024) == 384
    assert file_limit_connections(8192) == 3968
    assert file_limit_connections(10) == 1


# -- the real server ----------------------------------------------------------


@pytest.fixture
def production(tmp_path: Path) -> Iterator[Any]:
    started: list[AhoyServer] = []

    def start(*extra_args: str, file_limit: tuple[int, int] | None = SYSTEMD_DEFAULT_FILES
              ) -> AhoyServer:
        server = AhoyServer(tmp_path / f"data{len(started)}", production=True,
                            extra_args=extra_args, file_limit=file_limit)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def get(server: AhoyServer, path: str, source: str, timeout: float = 5) -> tuple[int, str]:
    """A GET from `source`; returns the status and the body."""
    sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=timeout,
                                    source_address=(source, 0))
    with sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                     .encode())
        data = read_until_eof(sock, timeout)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def read_until_eof(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise TimeoutError(f"no end of the connection within {timeout} s; got {data[:200]!r}")


def open_from(server: AhoyServer, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.http_port), timeout=10,
                                    source_address=(source, 0))


def upgrade_request(server: AhoyServer) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


def read_available(sock: socket.socket, wait: float = 0.0) -> bytes:
    sock.settimeout(wait)
    try:
        return sock.recv(65536)
    except (TimeoutError, BlockingIOError):
        return b""
    except OSError:
        return b""


def answers_of(flood: list[socket.socket], settled: Callable[[list[bytes]], bool],
               timeout: float = 30) -> list[bytes]:
    """What each socket of `flood` received, read until `settled(answers)` holds
    (or `timeout` real seconds pass: a loaded server may answer slowly)."""
    answers = [b""] * len(flood)
    deadline = time.monotonic() + timeout
    while True:
        for i, sock in enumerate(flood):
            answers[i] += read_available(sock)
        if settled(answers) or time.monotonic() > deadline:
            return answers
        time.sleep(0.05)


def refused_count(answers: list[bytes]) -> int:
    return sum(1 for a in answers if a.startswith(b"HTTP/1.1 429"))


def chat_between_two_new_phones(server: AhoyServer, sources: tuple[str, str]) -> None:
    ana = WsClient(server.ws_url, source=sources[0])
    ben = WsClient(server.ws_url, source=sources[1])
    try:
        assert ana.hello(unique("Ana"))["type"] == "welcome"
        assert ben.hello(unique("Ben"))["type"] == "welcome"
        room = ana.request("room_create", "room", name="Deck")["room"]["id"]
        assert ben.request("room_join", "room", room=room)["type"] == "room"
        ack = ana.request("send", "ack", id="m-still-here-1", room=room, text="still here")
        assert ack["type"] == "ack", ack
        assert ben.expect("message", text="still here")["seq"] == ack["seq"]
    finally:
        ana.close()
        ben.close()


def open_files_limit(server: AhoyServer) -> tuple[int, int]:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open files limit")


def test_the_server_raises_its_open_files_limit_to_the_hard_limit(production: Any) -> None:
    server = production(file_limit=(1024, 4096))
    assert open_files_limit(server) == (4096, 4096)


def test_the_unit_gives_the_service_room_for_thousands_of_connections() -> None:
    unit = (Path(__file__).resolve().parents[2]
            / "image/files/root/etc/systemd/system/ahoy.service").read_text()
    limits = [line for line in unit.splitlines() if line.startswith("LimitNOFILE=")]
    assert limits, "ahoy.service sets no LimitNOFILE (systemd's 1,024 would apply)"
    assert file_limit_connections(int(limits[0].split("=")[1])) >= 4000 - 100


@pytest.mark.slow
def test_half_open_requests_from_one_address_leave_another_phone_able_to_chat(
        production: Any) -> None:
    server = production()
    flood: list[socket.socket] = []
    try:
        for _ in range(1500):
            sock = open_from(server, FLOODER)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: box\r\n")  # never finished
            flood.append(sock)
        # A newcomer is served at once, and can chat.
        for _ in range(3):
            status, body = get(server, "/healthz", "127.0.0.3")
            assert status == 200, body
        chat_between_two_new_phones(server, ("127.0.0.3", "127.0.0.4"))
        # The flooder was told why, in words.
        answers = answers_of(flood, lambda got: refused_count(got) >= 1400)
        refused = [a for a in answers if a.startswith(b"HTTP/1.1 429")]
        assert len(refused) >= 1400, f"only {len(refused)} of 1500 refused"
        assert b"Too many unfinished requests from this device" in refused[0]
    finally:
        for sock in flood:
            sock.close()


@pytest.mark.slow
def test_idle_websockets_from_one_address_leave_another_phone_able_to_chat(
        production: Any) -> None:
    # A long hello timeout: the per-address limit alone must hold the line.
    server = production("--hello-timeout", "300")
    flood: list[socket.socket] = []
    try:
        for _ in range(600):
            sock = open_from(server, FLOODER)
            sock.sendall(upgrade_request(server))
            flood.append(sock)

        def settled(got: list[bytes]) -> bool:
            # Every socket answered, and every one upgraded beyond the 64 was told to close.
            upgraded_open = sum(1 for a in got if a.startswith(b"HTTP/1.1 101") and b"\x88" not in a)
            return all(got) and upgraded_open <= 64

        answers = answers_of(flood, settled)
        # Other phones connect and chat while the flood holds its sockets.
        status, _ = get(server, "/healthz", "127.0.0.3")
        assert status == 200
        chat_between_two_new_phones(server, ("127.0.0.3", "127.0.0.4"))
        # The device's first 64 WebSockets stay open. Later ones are upgraded
        # only to be told why they close, or refused with HTTP 429.
        kept = [a for a in answers if a.startswith(b"HTTP/1.1 101") and b"\x88" not in a]
        told = [a for a in answers if a.startswith(b"HTTP/1.1 101") and b"\x88" in a]
        refused = [a for a in answers if a.startswith(b"HTTP/1.1 429")]
        assert len(kept) == 64
        assert told and len(told) + len(refused) == 600 - 64, \
            (len(told), len(refused), {a[:12] for a in answers})
        assert b"Too many connections from this device" in told[0]
        frame = told[0][told[0].index(b"\x88"):]
        assert int.from_bytes(frame[2:4], "big") == 1013
        # A 429 only while 16 others are still being told (read by nobody: the
        # device is far over), so how many depends on how fast the box tells them.
        assert all(b"Too many connections from this device" in a for a in refused)
        # The same device with a real WebSocket client gets the code and the reason.
        with pytest.raises(ConnectionClosed) as closed:
            with connect(server.ws_url, source_address=(FLOODER, 0), open_timeout=5) as ws:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        assert "Too many connections from this device" in closed.value.rcvd.reason
    finally:
        for sock in flood:
            sock.close()


def test_a_request_whose_headers_never_finish_gets_408_and_is_closed(production: Any) -> None:
    server = production("--header-timeout", "1")
    slow = open_from(server, "127.0.0.5")
    silent = open_from(server, "127.0.0.5")
    with slow, silent:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: box\r\n")
        answer = read_until_eof(slow, 10)
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"did not arrive within 1 seconds" in answer
        assert read_until_eof(silent, 10) == b""
    # The same goes for an HTTPS connection that never starts its handshake.
    tls = socket.create_connection(("127.0.0.1", server.https_port), timeout=10)
    with tls:
        assert read_until_eof(tls, 10) == b""
    # A keep-alive connection is served, then closed when idle.
    idle = open_from(server, "127.0.0.5")
    with idle:
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_until_eof(idle, 10).startswith(b"HTTP/1.1 200")


def same_origin(server: AhoyServer) -> bytes:
    """Host and Origin headers of a request the admin page itself would send."""
    return (f"Host: 127.0.0.1:{server.http_port}\r\n"
            f"Origin: http://127.0.0.1:{server.http_port}\r\n").encode()


def test_a_request_body_that_stalls_gets_408_and_is_closed(production: Any) -> None:
    server = production("--header-timeout", "1")
    # A sign-in whose body stops after 10 of its 1000 bytes: the application is
    # reading it, and answers 408 in words.
    stalled = open_from(server, "127.0.0.6")
    with stalled:
        stalled.sendall(b"POST /admin/api/login HTTP/1.1\r\n" + same_origin(server) +
                        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                        b'{"passwor')
        answer = read_until_eof(stalled, 10)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
        assert b"did not arrive in time" in answer
    # A body nobody reads (the route answers without it) is still only waited
    # for so long: the connection closes instead of waiting for the rest.
    unread = open_from(server, "127.0.0.6")
    with unread:
        unread.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Content-Length: 1000\r\n\r\nabc")
        assert read_until_eof(unread, 10).startswith(b"HTTP/1.1 405")


def test_a_request_body_that_arrives_in_parts_is_served(production: Any) -> None:
    server = production()
    steady = open_from(server, "127.0.0.6")
    with steady:
        steady.sendall(b"POST /admin/api/login HTTP/1.1\r\n" + same_origin(server) +
                       b"Content-Type: application/json\r\nContent-Length: 2\r\n"
                       b"Connection: close\r\n\r\n{")
        time.sleep(0.5)  # well inside the 10 s allowed for each part
        steady.sendall(b"}")
        answer = read_until_eof(steady, 10)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:300]


def test_a_websocket_that_never_says_hello_is_closed_with_4002(production: Any) -> None:
    server = production("--hello-timeout", "1")
    with connect(server.ws_url, open_timeout=5) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4002
    assert closed.value.rcvd.reason == "say hello first"
    # Saying hello in time keeps the connection.
    client = WsClient(server.ws_url)
    try:
        assert client.hello(unique("Cat"))["type"] == "welcome"
        # Past the 1 s hello timeout (a slow server could only close it later
        # than this, so the check may miss a wrong close, never fail a right one).
        time.sleep(1.5)
        assert client.request("ping", "pong")["type"] == "pong"
    finally:
        client.close()


def test_a_full_box_tells_newcomers_so(production: Any) -> None:
    server = production("--max-connections", "8")
    held = [open_from(server, f"127.0.0.{10 + i}") for i in range(8)]
    try:
        # The box counts the 8 once it has accepted them: ask until it says full.
        deadline = time.monotonic() + 20
        while (answer := get(server, "/healthz", "127.0.0.30"))[0] != 503:
            assert time.monotonic() < deadline, answer
            time.sleep(0.1)
        status, body = answer
        assert status == 503
        assert "The box is serving as many connections as it can" in body
        with pytest.raises(InvalidStatus) as refused:
            connect(server.ws_url, source_address=("127.0.0.31", 0), open_timeout=5)
        assert refused.value.response.status_code == 503
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while True:
        try:
            with urllib.request.urlopen(server.http_url + "/healthz", timeout=5) as r:
                assert r.status == 200
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
