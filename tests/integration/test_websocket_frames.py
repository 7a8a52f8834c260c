"""The box frames what it sends itself (appliance/ws.py): every length class
of RFC 6455 arrives intact, in UTF-8, through the production server, plain or
compressed (permessage-deflate without context takeover, docs/protocol.md).

Payload lengths under 126 carry their length in 7 bits, up to 65535 in 16, and
longer ones in 64. The boundaries are checked on the frames themselves with the
`websockets` library's own parser, and end to end with `websockets` clients:
replies of exactly 125, 126, 65535 and 65536 bytes (`pong`, `history`) to a
client that does not offer compression, and replies and room broadcasts
(framed, and compressed, once for all) to clients that offer it or not.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from ahoytest import AhoyServer, WsClient, unique
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from appliance.ws import DEFLATE_MIN_BYTES, FrameCache, deflated_text_frame, text_frame

# Every width of UTF-8: 1, 2, 3 and 4 bytes.
MIXED = "a\u00e9\u65e5\U0001f6a2"


def parse(data: bytes, deflate: bool = False) -> Frame:
    """One server frame, read as a client reads it (unmasked), decompressed as a
    client that agreed on permessage-deflate without context takeover would."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    extensions = [PerMessageDeflate(True, True, 15, 15)] if deflate else None
    parsing = Frame.parse(reader.read_exact, mask=False, max_size=None, extensions=extensions)
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


@pytest.mark.parametrize("size", [0, 125, 255, 256, 1000, 65535, 65536, 200000])
def test_a_compressed_frame_of_each_size_inflates_to_the_same_text(size: int) -> None:
    text = text_of_bytes(size)
    data = deflated_text_frame(text)
    frame = parse(data, deflate=True)
    assert frame.fin and frame.opcode == Opcode.TEXT
    assert frame.data.decode() == text
    # Small frames go plain; the others compressed (this text repeats: much smaller).
    compressed = size >= DEFLATE_MIN_BYTES
    assert data[0] == (0xC1 if compressed else 0x81)  # FIN, RSV1 when compressed, text
    assert (len(data) < size / 4) if compressed else (len(data) in (size + 2, size + 4))


@pytest.mark.parametrize("rooms", [3, 10, 60, 800])
def test_a_compressed_reply_is_as_small_as_with_zlibs_largest_window(rooms: int) -> None:
    # The box fits the compressor's window to the payload: the phone must get
    # the same bytes on the air as from a 32 KiB window (varied text, from a
    # room's reply of 300 bytes to a welcome listing hundreds of rooms).
    listing = [{"id": f"{i * 7919:012x}", "name": f"Deck {i} {MIXED}", "members": i % 50,
                "online": i % 7, "limit": 50, "call": None} for i in range(rooms)]
    text = json.dumps({"type": "welcome", "rooms": listing}, ensure_ascii=False)
    full = zlib.compressobj(6, zlib.DEFLATED, -15)
    reference = len(full.compress(text.encode()) + full.flush(zlib.Z_SYNC_FLUSH)) - 4
    data = deflated_text_frame(text)
    assert data[0] == 0xC1
    assert parse(data, deflate=True).data.decode() == text
    header = 2 if reference < 126 else 4 if reference < 65536 else 10
    assert len(data) - header <= reference * 1.01 + 2


def test_a_lone_surrogate_goes_as_a_question_mark_not_an_error() -> None:
    text = json.dumps({"text": "a\ud800b"}, ensure_ascii=False)
    assert json.loads(parse(text_frame(text)).data.decode()) == {"text": "a?b"}


def test_a_broadcast_is_framed_once_and_the_cache_stays_bounded() -> None:
    cache = FrameCache(text_frame, max_entries=3, max_bytes=4000)
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


def connect(box: AhoyServer, clients: list[WsClient], name: str,
            compression: str | None = None) -> WsClient:
    client = WsClient(box.ws_url, compression=compression)
    clients.append(client)
    assert client.hello(unique(name))["type"] == "welcome"
    if compression is None:
        assert client.conn.protocol.extensions == []
    else:
        # Offered as browsers offer it; agreed without context takeover either way.
        agreed = client.conn.response.headers["Sec-WebSocket-Extensions"]
        assert agreed.startswith("permessage-deflate")
        assert "server_no_context_takeover" in agreed
        assert "client_no_context_takeover" in agreed
        assert len(client.conn.protocol.extensions) == 1
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


def test_room_broadcasts_and_history_reach_compressing_and_plain_phones_intact(
        box: AhoyServer, clients: list[WsClient]) -> None:
    ana = connect(box, clients, "Ana", compression="deflate")
    members = [connect(box, clients, f"Crew{i}", compression=compression)
               for i, compression in enumerate(["deflate", None, "deflate", None])]
    room = ana.request("room_create", "room", name="Frames")["room"]["id"]
    for member in members:
        assert member.request("room_join", "room", room=room)["type"] == "room"
    texts = ["a", MIXED, MIXED * 30, MIXED * 1000, base64.b85encode(os.urandom(2000)).decode()]
    for n, text in enumerate(texts):
        assert ana.request("send", "ack", id=f"m-frames-{n}", room=room, text=text)["type"] == "ack"
        for member in members:
            assert member.expect("message", id=f"m-frames-{n}")["text"] == text
    for member in members:  # a reply of over 64 KiB, each phone its own
        history = member.request("sync", "history", conv=f"room:{room}", after=0)
        assert [m["text"] for m in history["messages"]] == texts


def test_a_phone_that_offers_deflate_gets_its_big_frames_compressed(box: AhoyServer) -> None:
    """On the wire: the `welcome` (over DEFLATE_MIN_BYTES) has RSV1 set and
    inflates, on its own, to the JSON the phone asked for."""
    sock = socket.create_connection(("127.0.0.1", box.http_port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{box.http_port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
                  ).encode())
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, received = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert (b"permessage-deflate; client_no_context_takeover; server_no_context_takeover"
            in head)
    payload = json.dumps({"type": "hello", "name": unique("Raw")}).encode()
    mask = os.urandom(4)
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask
                 + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    while len(received) < 10 or len(received) < frame_size(received):
        received += sock.recv(65536)
    data = received[:frame_size(received)]
    assert data[0] == 0xC1  # FIN, RSV1 (compressed), text
    welcome = json.loads(parse(data, deflate=True).data)
    assert welcome["type"] == "welcome"
    assert len(data) < len(compact(welcome).encode())
    sock.close()


def frame_size(data: bytes) -> int:
    """The size of the frame `data` begins with, header included."""
    n = data[1] & 0x7F
    if n == 126:
        return 4 + int.from_bytes(data[2:4], "big")
    if n == 127:
        return 10 + int.from_bytes(data[2:10], "big")
    return 2 + n
