"""A misbehaving client throws junk at the real service while two others keep chatting.

Junk: text that is not JSON, JSON that is not an object, unknown types, known
types with fields of the wrong type, binary frames, frames over 64 KiB, floods.
Each bad frame must get a clear error (the code the protocol's own parser
gives it) or close the connection with a documented code; the chatters must
not notice; the service's memory must stay bounded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ahoytest import AhoyServer, WsClient, unique
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from appliance.protocol import SCHEMA, ProtocolError, parse_frame

DOCUMENTED_CODES = {
    "bad_json", "bad_frame", "bad_request", "unknown_type", "not_joined", "bad_name",
    "name_taken", "bad_token", "bad_text", "unknown_user", "unknown_room", "unknown_call",
    "not_member", "room_full", "room_inactive", "not_owner", "user_offline", "user_busy",
    "call_self", "call_full", "not_in_call", "rate_limited", "removed", "replaced",
    # Codes for features documented after the first protocol table.
    "not_allowed", "bad_reaction", "bad_picture", "unknown_message", "bad_code",
}
FRAME_LIMIT = 65536
# Below the 20 frames/s budget: each example costs the bad client two frames.
PACE_S = 0.12


def rss_kb(server: AhoyServer) -> int:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Scene:
    """Two chatters in a room and one client that sends junk."""

    def __init__(self, server: AhoyServer) -> None:
        self.server = server
        self.ana = WsClient(server.ws_url)
        self.ben = WsClient(server.ws_url)
        assert self.ana.hello(unique("Ana"))["type"] == "welcome"
        assert self.ben.hello(unique("Ben"))["type"] == "welcome"
        self.room = self.ana.request("room_create", "room", name="Bridge")["room"]["id"]
        assert self.ben.request("room_join", "room", room=self.room)["type"] == "room"
        self.chats = 0
        self.bad = WsClient(server.ws_url)
        self.bad_name = unique("Junk")
        assert self.bad.hello(self.bad_name)["type"] == "welcome"
        self.bad_token = self.bad.token

    def reconnect_bad(self) -> None:
        self.bad.close()
        self.bad = WsClient(self.server.ws_url)
        reply = self.bad.hello(token=self.bad_token)
        assert reply["type"] == "welcome", reply

    def chat(self) -> None:
        """Ana and Ben each send one message and each gets the other's."""
        self.chats += 1
        for sender, receiver in ((self.ana, self.ben), (self.ben, self.ana)):
            text = f"still here {self.chats}"
            ack = sender.request("send", "ack", id=f"m-chat-{self.chats:06}-{id(sender) % 97}",
                                 room=self.room, text=text)
            assert ack["type"] == "ack", ack
            assert receiver.expect("message", timeout=5, text=text)["seq"] == ack["seq"]

    def close(self) -> None:
        for c in (self.ana, self.ben, self.bad):
            c.close()


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    server = AhoyServer(tmp_path_factory.mktemp("fuzz") / "data").start()
    s = Scene(server)
    yield s
    s.close()
    server.stop()


def expected_code(frame: str | bytes) -> str | None:
    """The error the protocol's own parser gives this frame; None if it is well formed."""
    try:
        parse_frame(frame)
    except ProtocolError as e:
        return e.code
    return None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=8,
)
plain_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)
fields = st.sampled_from([(t, f) for t, spec in SCHEMA.items() for f in spec])


@st.composite
def wrong_field(draw: Any) -> str:
    kind, name = draw(fields)
    return json.dumps({"type": kind, name: draw(json_values), "ref": "fz"})


junk = st.one_of(
    plain_text.map(lambda t: ("text", t)),
    json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: ("text", json.dumps(v))),
    st.one_of(plain_text, json_values).map(
        lambda t: ("text", json.dumps({"type": t, "ref": "fz"}))),
    wrong_field().map(lambda t: ("text", t)),
    st.binary(max_size=200).map(lambda b: ("binary", b)),
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(frame=junk)
def test_junk_gets_a_clear_error_or_a_close_and_the_others_keep_chatting(
        scene: Scene, frame: tuple[str, Any]) -> None:
    _, payload = frame
    if scene.bad.conn.state.name != "OPEN":  # an earlier example that failed closed it
        scene.reconnect_bad()
    scene.bad.send_raw(payload)
    want = expected_code(payload)
    pong = scene.bad.request("ping", "pong")
    assert pong["type"] == "pong", pong
    errors = [m for m in scene.bad.inbox if m.get("type") == "error"]
    scene.bad.inbox.clear()
    for e in errors:
        assert e["code"] in DOCUMENTED_CODES and e["code"] != "internal", e
        assert isinstance(e["message"], str) and e["message"], e
    if want is not None:
        assert [e["code"] for e in errors] == [want], (payload, errors)
    scene.chat()
    time.sleep(PACE_S)


def oversized(pad: int) -> str:
    return json.dumps({"type": "ping", "pad": "x" * pad})


@pytest.mark.parametrize("pad", [FRAME_LIMIT, 4 * FRAME_LIMIT])
def test_an_oversized_frame_closes_the_connection_with_1009_and_the_others_keep_chatting(
        scene: Scene, pad: int) -> None:
    scene.bad.send_raw(oversized(pad))
    # Frames far over the limit are closed only when the edge's 5 s receive poll runs.
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            scene.bad.conn.recv(timeout=12)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    scene.chat()
    scene.reconnect_bad()


def test_a_flooding_client_is_slowed_then_cut_off_and_the_others_keep_chatting(
        scene: Scene) -> None:
    for i in range(300):
        try:
            scene.bad.send("ping", ref=f"flood{i}")
        except ConnectionClosed:
            break
    codes: list[str] = []
    seen = 0
    close_code = None
    deadline = time.monotonic() + 30  # the box answers 300 frames first; a loaded one slowly
    while time.monotonic() < deadline:
        try:
            m = json.loads(scene.bad.conn.recv(timeout=deadline - time.monotonic()))
        except ConnectionClosed as e:
            close_code = e.rcvd.code if e.rcvd else None
            break
        except TimeoutError:
            break
        seen += 1
        if m.get("type") == "error":
            codes.append(m["code"])
    # Both must arrive even though the flooder's pings still wait unread at
    # the box: a reset (a socket closed on unread data) would throw them away.
    assert "rate_limited" in codes, f"{seen} frames, then closed with {close_code}"
    assert close_code == 4008
    scene.chat()
    # The flooder may come back and behave.
    time.sleep(1)
    scene.reconnect_bad()
    assert scene.bad.request("ping", "pong")["type"] == "pong"


@pytest.mark.slow
def test_memory_stays_bounded_under_junk(scene: Scene) -> None:
    """Runs last in this module: a further burst of the worst junk must not grow the service."""
    before = rss_kb(scene.server)
    for _ in range(10):
        scene.bad.send_raw(oversized(FRAME_LIMIT))
        with pytest.raises(ConnectionClosed):
            while True:
                scene.bad.conn.recv(timeout=12)
        scene.reconnect_bad()
        scene.bad.send_raw(b"\x00" * 1000)
        scene.bad.send_raw("{" * 10000)
        scene.bad.request("ping", "pong")
        scene.chat()
    grown_mb = (rss_kb(scene.server) - before) / 1024
    assert grown_mb < 20, f"the service grew by {grown_mb:.1f} MB"
