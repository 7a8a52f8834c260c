"""What the hub sends inside `ws.gathered()` (a group commit's acks and
messages) reaches each connection in one write, in order, and nothing is lost
when the socket cannot take it at once.

The connections are real sockets of the SEQPACKET kind: each write arrives as
one packet, so a read shows exactly what one write carried.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.frames import Frame
from websockets.streams import StreamReader

from appliance.ws import SocketPeer, gathered


class Stand:
    """What SocketPeer uses of simple_websocket.Server, on a real socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.connected = True
        self.close_reason = 1000
        self.close_message = ""

    def close(self, reason: int = 1000, message: str = "") -> None:
        self.connected = False


def texts(packet: bytes) -> list[str]:
    """The text frames one packet carries, in order."""
    reader = StreamReader()
    reader.feed_data(packet)
    reader.feed_eof()
    out = []
    while reader.buffer:
        parsing = Frame.parse(reader.read_exact, mask=False, max_size=None)
        try:
            next(parsing)
        except StopIteration as done:
            out.append(done.value.data.decode())
    return out


def packets(far: socket.socket, timeout: float = 5.0) -> Iterator[bytes]:
    far.settimeout(timeout)
    while True:
        yield far.recv(1 << 20)


@contextmanager
def connection() -> Iterator[tuple[SocketPeer, socket.socket]]:
    """A SocketPeer writing to one end of a socket pair, and the other end."""
    near, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    peer = SocketPeer(Stand(near))
    peer.start()
    try:
        yield peer, far
    finally:
        peer.closing = True
        peer.wake.set()
        near.close()
        far.close()


@pytest.fixture
def pair() -> Iterator[tuple[SocketPeer, socket.socket]]:
    with connection() as made:
        yield made


def test_frames_sent_while_gathering_arrive_in_one_write_in_order(
        pair: tuple[SocketPeer, socket.socket]) -> None:
    peer, far = pair
    peer.send_encoded('{"n":0}')  # not gathered: written at once, alone
    assert texts(far.recv(1 << 20)) == ['{"n":0}']
    with gathered():
        for n in range(1, 6):
            peer.send_encoded(f'{{"n":{n}}}')
        peer.send({"type": "ack", "id": "m1"})  # an answer to the phone's own request
        with gathered():  # nested: the outermost one writes
            peer.send_encoded('{"n":6}')
        far.setblocking(False)
        with pytest.raises(BlockingIOError):
            far.recv(1 << 20)  # nothing yet
    far.setblocking(True)
    assert texts(far.recv(1 << 20)) == [
        '{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}', '{"n":5}', '{"type":"ack","id":"m1"}',
        '{"n":6}']
    assert peer.queued == 0 and peer.queued_bytes == 0
    peer.send_encoded('{"n":7}')  # after: one by one again
    assert texts(far.recv(1 << 20)) == ['{"n":7}']


def test_another_thread_is_not_held_by_a_gathering(
        pair: tuple[SocketPeer, socket.socket]) -> None:
    peer, far = pair
    with connection() as (other, far2):
        with gathered():
            peer.send_encoded('{"held":true}')
            sender = threading.Thread(target=other.send_encoded, args=('{"held":false}',))
            sender.start()
            sender.join()
            far2.settimeout(5)
            assert texts(far2.recv(1 << 20)) == ['{"held":false}']  # before the gathering ends
        assert texts(far.recv(1 << 20)) == ['{"held":true}']


def test_what_the_socket_cannot_take_at_once_the_writer_writes_later(
        pair: tuple[SocketPeer, socket.socket]) -> None:
    peer, far = pair
    big = "x" * 30000
    sent: list[str] = []
    # Fill the socket until a frame cannot go at once: it waits for the writer.
    while not peer.queued:
        text = f'{{"n":{len(sent)},"pad":"{big}"}}'
        peer.send_encoded(text)
        sent.append(text)
    with gathered():
        for n in range(len(sent), len(sent) + 5):
            text = f'{{"n":{n}}}'
            peer.send_encoded(text)
            sent.append(text)
    got: list[str] = []
    for packet in packets(far):
        got += texts(packet)
        if len(got) >= len(sent):
            break
    assert got == sent


def test_gathered_frames_keep_the_queue_limits(pair: tuple[SocketPeer, socket.socket]) -> None:
    peer, far = pair
    peer.max_queue = 3
    closes: list[Any] = []
    peer._fall_behind = lambda: closes.append(peer.queued)  # type: ignore[method-assign]
    with gathered():
        for n in range(5):
            peer.send_encoded(f'{{"n":{n}}}')
    # Three were queued; the fourth found the queue full: the phone is told to catch up.
    assert closes and closes[0] == 3
    assert texts(far.recv(1 << 20)) == ['{"n":0}', '{"n":1}', '{"n":2}']
