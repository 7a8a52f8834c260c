"""The box frames what it sends itself (appliance/ws.py): every length class
of RFC 6455 arrives intact, in UTF-8, through the production server.

Payload lengths under 126 carry their length in 7 bits, up to 65535 in 16, and
longer ones in 64. The boundaries are checked on the frames themselves with the
`websockets` library's own parser, and each class end to end: replies (`pong`,
`history`) and broadcasts (a room's `message`, framed once for all) received by
`websockets` clients, which offer permessage-deflate as browsers do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from ahoytest import AhoyServer, WsClient, unique
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from appliance.ws import FrameCache, text_frame

# Every width of UTF-8: 1, 2, 3 and 4 bytes.
MIXED = "a\u00e9\u65e5\U0001f6a2"


def parse(data: bytes) -> Frame:
    """One server frame, read as a client reads it (unmasked)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parsing = Frame.parse(reader.read_exact, mask=False, max_size=None)
    try:
        next(parsing)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("the frame is incomplete")


def text_of_bytes(n: int) -> str:
    """A text of exactly `n` UTF-8 bytes, mostly multi-byte characters."""
    text = MIXED * (n // 10) + "\u00e9" * (n % 10 // 2)
    return text + "x" * (n - len(text.encode()))


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_frame_of_each_length_class_parses_as_the_same_text(size: int) -> None:
    text = text_of_bytes(size)
    data = text_frame(text)
    header = 2 if size < 126 else 4 if size < 65536 else 10
    assert len(data) == header + size  # the shortest length field, as RFC 6455 asks
    frame = parse(data)
    assert frame.fin and frame.opcode == Opcode.TEXT
    assert not (frame.rsv1 or frame.rsv2 or frame.rsv3)  # not compressed
    assert frame.data.decode() == text


def test_a_lone_surrogate_goes_as_a_question_mark_not_an_error() -> None:
    text = json.dumps({"text": "a\ud800b"}, ensure_ascii=False)
    assert json.loads(parse(text_frame(text)).data.decode()) == {"text": "a?b"}


def test_a_broadcast_is_framed_once_and_the_cache_stays_bounded() -> None:
    cache = FrameCache(max_entries=3, max_bytes=4000)
    text = json.dumps({"type": "message", "text": MIXED})
    first = cache.frame(text)
    assert cache.frame(text) is first
    assert cache.frame("".join(text)) is first  # equal text, same frame
    for i in range(10):
        cache.frame(f'{{"n":{i}}}')
    assert cache.frame(text) is not first  # pushed out by newer ones
    assert cache.frame(text) == first
    big = "x" * 1500  # over a quarter of the bytes: framed, not kept
    assert cache.frame(big) is not cache.frame(big)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AhoyServer]:
    server = AhoyServer(tmp_path_factory.mktemp("frames") / "data", production=True).start()
    yield server
    server.stop()


@pytest.fixture
def clients(box: AhoyServer) -> Iterator[list[WsClient]]:
    made: list[WsClient] = []
    yield made
    for c in made:
        c.close()


def connect(box: AhoyServer, clients: list[WsClient], name: str) -> WsClient:
    client = WsClient(box.ws_url)
    clients.append(client)
    assert client.hello(unique(name))["type"] == "welcome"
    # Offered, as browsers do, and refused: what follows is plain frames.
    assert client.conn.protocol.extensions == []
    return client


def reply_and_length(client: WsClient, type_: str, ref: str, **fields: Any
                     ) -> tuple[dict[str, Any], int]:
    """Send a request; its reply and the reply's payload length in bytes."""
    client.send(type_, ref=ref, **fields)
    while True:
        text = client.conn.recv(timeout=30)
        assert isinstance(text, str)
        reply = json.loads(text)
        if reply.get("ref") == ref:
            return reply, len(text.encode())


def compact(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def test_replies_of_125_126_65535_and_65536_bytes_arrive_whole(
        box: AhoyServer, clients: list[WsClient]) -> None:
    ana = connect(box, clients, "Ana")
    # A `pong` echoes its `ref` (up to 64 characters): its length is the ref's.
    _, base = reply_and_length(ana, "ping", "r")
    for size in (125, 126):
        ref = text_of_bytes(size - base + 1)
        assert len(ref) <= 64
        pong, length = reply_and_length(ana, "ping", ref)
        assert (pong["type"], pong["ref"], length) == ("pong", ref, size)

    # A `history` is as long as its messages: a 16-bit length and a 64-bit one,
    # each exactly at the boundary, the last message's text making up the rest.
    long_text = MIXED * 1000  # 4000 characters, 10,000 bytes
    for size, name in ((65535, "Ben"), (65536, "Cy")):
        other = connect(box, clients, name)
        for n in range(6):
            conv = ana.request("send", "ack", id=f"m-frames-{name}-{n}", to=other.user_id,
                               text=long_text)["conv"]
        six, length = reply_and_length(ana, "sync", f"s-{name}", conv=conv, after=0, limit=7)
        assert length == len(compact(six).encode())  # the box's own encoding
        # The same with a seventh message, whose seq, time and id have as many
        # characters as the sixth's; its text is what is missing.
        seventh = dict(six["messages"][-1], seq=7, id=f"m-frames-{name}-6", text="")
        seven = dict(six, messages=six["messages"] + [seventh], last_seq=7)
        text = text_of_bytes(size - len(compact(seven).encode()))
        assert ana.request("send", "ack", id=f"m-frames-{name}-6", to=other.user_id,
                           text=text)["type"] == "ack"
        got, length = reply_and_length(ana, "sync", f"s-{name}", conv=conv, after=0, limit=7)
        assert [m["text"] for m in got["messages"]] == [long_text] * 6 + [text]
        assert length == size


def test_a_room_broadcast_reaches_each_member_intact_in_utf8(
        box: AhoyServer, clients: list[WsClient]) -> None:
    ana = connect(box, clients, "Ana")
    members = [connect(box, clients, f"Crew{i}") for i in range(3)]
    room = ana.request("room_create", "room", name="Frames")["room"]["id"]
    for member in members:
        assert member.request("room_join", "room", room=room)["type"] == "room"
    for n, text in enumerate(["a", MIXED, MIXED * 30, MIXED * 1000]):
        assert ana.request("send", "ack", id=f"m-frames-{n}", room=room, text=text)["type"] == "ack"
        for member in members:
            assert member.expect("message", id=f"m-frames-{n}")["text"] == text
