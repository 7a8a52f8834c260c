"""The terminal client's chat with one other device on the same network, without a box.

One side makes a WebRTC offer, the other answers; both texts travel by copy
and paste (or a QR code) and the chat then runs over an aiortc data channel.
There is no STUN server: the devices reach each other through the host
candidates of the network they share.

A signaling text is ``ahoy1:`` followed by the session description as JSON,
zlib-compressed and base64url-encoded, so it fits on one line.

Over the channel each side sends JSON frames:
``{"type": "hello", "name": "Ana"}``,
``{"type": "message", "id": "m-…", "text": "…", "ts": 1732233001000}`` and
``{"type": "ack", "id": "m-…"}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import zlib
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from .conversations import (
    TEXT_LIMIT,
    ChatError,
    Conversation,
    Listener,
    Message,
    new_message_id,
    now_ms,
)

PREFIX = "ahoy1:"
CONV = "direct"
ME, PEER = "me", "peer"


def encode_description(description: RTCSessionDescription) -> str:
    """A session description as one copy-pasteable line."""
    # Browsers and aiortc check the SHA-256 fingerprint; the longer ones only
    # make the line and its QR code bigger.
    sdp = "".join(line for line in description.sdp.splitlines(keepends=True)
                  if not line.startswith(("a=fingerprint:sha-384", "a=fingerprint:sha-512")))
    raw = json.dumps({"type": description.type, "sdp": sdp}, separators=(",", ":")).encode()
    packed = base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")
    return PREFIX + packed


def decode_description(text: str, expect: str) -> RTCSessionDescription:
    """Parse a pasted line (whitespace and line breaks inside are ignored)."""
    line = "".join(text.split())
    what = "an offer" if expect == "offer" else "an answer"
    if not line.startswith(PREFIX):
        raise ChatError(f"that is not {what} from the Ahoy terminal client; paste the whole "
                        f"line starting with {PREFIX}", "bad_signal")
    packed = line[len(PREFIX):]
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)))
        data = json.loads(raw)
        kind, sdp = data["type"], data["sdp"]
    except (binascii.Error, zlib.error, ValueError, KeyError, TypeError) as e:
        raise ChatError(f"{what} was cut short or mistyped; copy the whole line again",
                        "bad_signal") from e
    if kind != expect or not isinstance(sdp, str):
        raise ChatError(f"this is {'an offer' if kind == 'offer' else 'an answer'}, "
                        f"but {what} is needed here", "bad_signal")
    return RTCSessionDescription(sdp=sdp, type=kind)


class DirectChat:
    """The other end of a data channel, shaped like `BoxClient` for the UI."""

    label = "direct"

    def __init__(self, name: str) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.me: dict[str, Any] = {"id": ME, "name": name, "status": "online"}
        self.users: dict[str, dict[str, Any]] = {}
        self.rooms: dict[str, dict[str, Any]] = {}
        self.names: dict[str, str] = {ME: name}
        self.convs: dict[str, Conversation] = {CONV: Conversation(CONV)}
        self.connection = "waiting"
        self.last_error = ""
        self.listeners: list[Listener] = []
        self.channel: RTCDataChannel | None = None
        self._open = asyncio.Event()
        self._closed = asyncio.Event()
        self._stopped = asyncio.Event()
        self._seq = 0
        self._waiters: dict[str, asyncio.Future[Message]] = {}
        self.pc.on("datachannel", self._attach)
        self.pc.on("connectionstatechange", self._on_state)

    @property
    def my_id(self) -> str:
        return ME

    @property
    def my_name(self) -> str:
        return str(self.me["name"])

    @property
    def peer_name(self) -> str:
        return self.names.get(PEER, "the other device")

    # -- signaling ----------------------------------------------------------------

    async def make_offer(self) -> str:
        """Open the data channel and return the offer to hand to the other device."""
        self._attach(self.pc.createDataChannel("ahoy-chat"))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return encode_description(self.pc.localDescription)

    async def take_answer(self, text: str) -> None:
        await self.pc.setRemoteDescription(decode_description(text, "answer"))
        self._set_conn("connecting")

    async def answer(self, offer_text: str) -> str:
        """Take the other device's offer; return the answer to hand back."""
        await self.pc.setRemoteDescription(decode_description(offer_text, "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._set_conn("connecting")
        return encode_description(self.pc.localDescription)

    async def wait_open(self, timeout: float = 30.0) -> None:
        try:
            await asyncio.wait_for(self._open.wait(), timeout)
        except TimeoutError as e:
            raise ChatError(
                "no connection to the other device; both must be on the same network "
                "(a direct chat uses no box and no STUN server)", "unreachable") from e

    async def run(self) -> None:
        """Until `stop()` (the UI runs this like `BoxClient.run`)."""
        await self._stopped.wait()
        await self.close()

    def stop(self) -> None:
        self._stopped.set()

    async def close(self) -> None:
        await self.pc.close()
        self._set_conn("closed")
        self._closed.set()

    # -- chatting -----------------------------------------------------------------

    def send_to_conv(self, conv: str, text: str) -> Message:
        text = text.strip("\r\n")
        if not text.strip():
            raise ChatError("the message is empty", "bad_text")
        if len(text) > TEXT_LIMIT:
            raise ChatError(f"messages are at most {TEXT_LIMIT} characters", "bad_text")
        if self.channel is None or self.channel.readyState != "open":
            raise ChatError("the other device is not connected", "offline")
        self._seq += 1
        message = Message(CONV, new_message_id(), ME, self.my_name, text, now_ms(), self._seq,
                          "sending")
        self.convs[CONV].add(message)
        self.channel.send(json.dumps({"type": "message", "id": message.id, "text": text,
                                      "ts": message.ts}))
        self._emit("message", {"conv": CONV, "message": message, "own": True})
        return message

    async def wait_sent(self, message: Message, timeout: float) -> Message:
        if message.status == "sent":
            return message
        future = self._waiters.setdefault(message.id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError as e:
            raise ChatError("the other device did not confirm the message", "timeout") from e

    def conv_title(self, conv: str) -> str:
        return "@" + self.peer_name

    def conv_topic(self, conv: str) -> str:
        return "direct chat, no box"

    def mark_read(self, conv: str) -> None:
        if conv in self.convs:
            self.convs[conv].unread = 0

    def find_user(self, text: str) -> tuple[dict[str, Any], str]:
        if PEER in self.users:
            return self.users[PEER], ""
        raise ChatError("the other device has not said hello yet", "unknown_user")

    def open_dm(self, user_id: str) -> str:
        return CONV

    def find_room(self, text: str) -> dict[str, Any]:
        raise ChatError("a direct chat has no rooms: it is just the two of you", "no_box")

    async def join_room(self, room_id: str) -> dict[str, Any]:
        raise ChatError("a direct chat has no rooms: it is just the two of you", "no_box")

    async def create_room(self, name: str, description: str = "") -> dict[str, Any]:
        raise ChatError("a direct chat has no rooms: it is just the two of you", "no_box")

    async def leave_room(self, room_id: str) -> None:
        raise ChatError("a direct chat has no rooms; /quit ends it", "no_box")

    async def load_older(self, conv: str, limit: int = 50) -> int:
        return 0  # nothing is stored anywhere: the whole chat is on screen

    def set_name(self, name: str) -> None:
        raise ChatError("names are fixed for a direct chat", "no_box")

    def reconnect_now(self) -> None:
        pass

    # -- the channel --------------------------------------------------------------

    def _attach(self, channel: RTCDataChannel) -> None:
        self.channel = channel

        @channel.on("open")
        def on_open() -> None:
            self._hello()

        @channel.on("message")
        def on_message(raw: str | bytes) -> None:
            self._on_frame(raw)

        @channel.on("close")
        def on_close() -> None:
            self._gone()

        if channel.readyState == "open":
            self._hello()

    def _hello(self) -> None:
        assert self.channel is not None
        self.channel.send(json.dumps({"type": "hello", "name": self.my_name}))
        self._set_conn("online")
        self._open.set()

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._gone()

    def _gone(self) -> None:
        if self.connection not in ("closed", "waiting") and not self._stopped.is_set():
            self._emit("notice", {"text": f"{self.peer_name} left the chat (or the network "
                                          "between you went away). /quit ends it here."})
        self.users.pop(PEER, None)
        self._set_conn("closed")
        self._closed.set()

    def _on_frame(self, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "hello" and isinstance(msg.get("name"), str):
            name = msg["name"][:32] or "peer"
            self.names[PEER] = name
            self.users[PEER] = {"id": PEER, "name": name, "status": "online"}
            self._emit("presence", {"user": self.users[PEER]})
        elif kind == "message" and isinstance(msg.get("text"), str) \
                and isinstance(msg.get("id"), str):
            text = msg["text"][:TEXT_LIMIT]
            ts = msg["ts"] if isinstance(msg.get("ts"), int) else now_ms()
            message = Message(CONV, msg["id"][:64], PEER, self.peer_name, text, ts,
                              self._seq + 1)
            if self.convs[CONV].add(message):
                self._seq += 1
                self.convs[CONV].unread += 1
                self._emit("message", {"conv": CONV, "message": message, "own": False})
            if self.channel is not None and self.channel.readyState == "open":
                self.channel.send(json.dumps({"type": "ack", "id": message.id}))
        elif kind == "ack" and isinstance(msg.get("id"), str):
            mine = self.convs[CONV].by_id.get((ME, msg["id"]))
            if mine is not None and mine.status != "sent":
                mine.status = "sent"
                self.convs[CONV].changed()
                waiter = self._waiters.pop(mine.id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(mine)
                self._emit("sent", {"conv": CONV, "message": mine})

    def _set_conn(self, state: str) -> None:
        if state != self.connection:
            self.connection = state
            self._emit("conn", {"state": state, "error": self.last_error})

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(event, data)
