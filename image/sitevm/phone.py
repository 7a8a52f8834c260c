"""One simulated phone of `make site-vm-test`, inside the VM, in its own network namespace.

    ip netns exec phone1 python phone.py NAME CA_FILE...

Speaks docs/protocol.md to whichever box `ahoy.internal` is (the DNS server the phone's
DHCP lease named), over wss with the boxes' CAs. Takes one JSON command a line on stdin
from inside.py and answers each with one JSON line on stdout (`"done": <command>`):

    join                      hello with a name (first time) or the saved token, box and
                              positions (after a move: `since_at`, docs/protocol.md
                              "Moving to another box"); answers with who we are, which box
                              and the messages caught up after `welcome`
    wait_user NAME            until NAME is online (welcome or `changes`); their id
    send TO TEXT              a direct message; its ack
    expect FROM COUNT         until COUNT messages from FROM have arrived; their ids
    call TO | answer FROM     an aiortc call with the box's ICE servers; the answering phone
                              counts 25 audio frames, then says "I hear you" in the chat
                              and the caller hangs up
    leave                     close the socket (walking out of reach)
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import sys
import time
import uuid
from typing import Any

import websockets
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from websockets.typing import Origin


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


class Phone:
    def __init__(self, name: str, cas: list[str]) -> None:
        self.name = name
        self.tls = ssl.create_default_context()
        for ca in cas:
            self.tls.load_verify_locations(ca)
        self.token = ""
        self.box = ""
        self.user_id = ""
        self.since: dict[str, int] = {}
        self.seen: dict[str, dict[str, int]] = {}  # conv -> box -> highest n (from `at`)
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ws: Any = None
        self.welcome: dict[str, Any] = {}
        self.online: dict[str, str] = {}  # name -> id
        self.messages: list[dict[str, Any]] = []

    def note(self, m: dict[str, Any]) -> None:
        """Remember a message's or ack's positions, as a client must (protocol.md)."""
        conv, at, seq = m.get("conv"), m.get("at"), m.get("seq")
        if conv and seq:
            self.since[conv] = max(self.since.get(conv, 0), int(seq))
        if conv and at:
            box, n = at.split(":")
            per_box = self.seen.setdefault(conv, {})
            per_box[box] = max(per_box.get(box, 0), int(n))

    def take_users(self, users: list[dict[str, Any]]) -> None:
        for user in users:
            # `status` left out is `online` (docs/protocol.md, `changes`).
            if user.get("status", "online") in ("online", "busy"):
                self.online[user["name"]] = user["id"]

    async def join(self) -> dict[str, Any]:
        box_address = socket.gethostbyname("ahoy.internal")
        hello: dict[str, Any] = {"type": "hello", "name": self.name}
        if self.token:
            hello = {"type": "hello", "token": self.token, "box": self.box,
                     "since": self.since, "since_at": self.seen}
        self.ws = await websockets.connect("wss://ahoy.internal/ws", ssl=self.tls,
                                           origin=Origin("https://ahoy.internal"),
                                           open_timeout=60)
        await self.ws.send(json.dumps(hello))
        while True:
            welcome = json.loads(await asyncio.wait_for(self.ws.recv(), 60))
            if welcome["type"] == "welcome":
                break
            if welcome["type"] == "error":
                raise RuntimeError(f"hello refused: {welcome}")
        self.welcome = welcome
        moved_from = self.box
        self.token = welcome.get("token") or self.token
        self.user_id = str(welcome["you"]["id"])
        self.box = str(welcome.get("box", ""))
        self.take_users(welcome.get("users", []))
        # `welcome` names only contacts: ask for everyone online, and to be
        # told of everyone who comes (docs/protocol.md, "People online").
        await self.ws.send(json.dumps({"type": "people", "watch": True}))
        self.since = {} if moved_from and moved_from != self.box else self.since
        # What follows `welcome` at once: a `history` for each conversation to catch up.
        caught_up: list[dict[str, Any]] = []
        while True:
            try:
                m = json.loads(await asyncio.wait_for(self.ws.recv(), 3))
            except TimeoutError:
                break
            if m["type"] == "history":
                for message in m["messages"]:
                    self.note(message)
                    caught_up.append(message)
                if m.get("last_seq"):
                    self.since[m["conv"]] = max(self.since.get(m["conv"], 0), m["last_seq"])
            else:
                self.dispatch(m)
        self.reader = asyncio.create_task(self._read())
        return {"user": self.user_id, "box": self.box, "box_address": box_address,
                "caught_up": [{"id": m["id"], "from": m["from"], "at": m.get("at"),
                               "text": m.get("text")} for m in caught_up]}

    def dispatch(self, m: dict[str, Any]) -> None:
        if m["type"] in ("changes", "people"):
            self.take_users(m.get("users", []))
        if m["type"] == "message":
            self.note(m)
            self.messages.append(m)
        self.inbox.put_nowait(m)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.dispatch(json.loads(raw))
        except websockets.ConnectionClosed:
            pass

    async def send(self, type_: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type_, **fields}))

    async def expect(self, type_: str, timeout: float = 120, match: Any = None) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                m = await self.inbox.get()
                if m["type"] == type_ and (match is None or match(m)):
                    return m
                if m["type"] == "error":
                    raise RuntimeError(f"{self.name} got {m}")

        return await asyncio.wait_for(wait(), timeout)

    async def wait_user(self, name: str) -> dict[str, Any]:
        end = time.monotonic() + 180
        while name not in self.online:
            if time.monotonic() > end:
                raise RuntimeError(f"{name} did not come online")
            try:
                await self.expect("changes", timeout=5)
            except TimeoutError:
                pass
        return {"id": self.online[name]}

    async def send_dm(self, to: str, text: str) -> dict[str, Any]:
        mid = f"m-{uuid.uuid4().hex[:12]}"
        await self.send("send", id=mid, to=to, text=text)
        ack = await self.expect("ack", match=lambda m: m.get("id") == mid)
        self.note(ack)
        return {"id": mid, "at": ack.get("at"), "conv": ack.get("conv")}

    async def expect_from(self, sender: str, count: int) -> dict[str, Any]:
        end = time.monotonic() + 180
        while len([m for m in self.messages if m.get("from") == sender]) < count:
            if time.monotonic() > end:
                raise RuntimeError(f"fewer than {count} messages from {sender}")
            await asyncio.sleep(0.2)
        got = [m for m in self.messages if m.get("from") == sender]
        return {"ids": [m["id"] for m in got], "texts": [m.get("text") for m in got]}

    def peer_connection(self) -> RTCPeerConnection:
        servers = [RTCIceServer(urls=s["urls"], username=s.get("username"),
                                credential=s.get("credential"))
                   for s in self.welcome.get("ice_servers", [])]
        return RTCPeerConnection(RTCConfiguration(iceServers=servers))

    async def call(self, to: str) -> dict[str, Any]:
        await self.send("call_invite", to=to, media="audio")
        call = (await self.expect("call_ringing"))["call"]
        await self.expect("call_accepted", timeout=120)
        pc = self.peer_connection()
        channel = pc.createDataChannel("chat")
        pc.addTrack(AudioStreamTrack())
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        await self.send("signal", call=call, to=to,
                        data={"description": {"type": "offer", "sdp": offer}})
        answer = await self.expect("signal")
        await pc.setRemoteDescription(RTCSessionDescription(**answer["data"]["description"]))
        await asyncio.wait_for(opened.wait(), 120)
        pair = selected_pair(pc)
        result = {"ice": pc.iceConnectionState, "pair": pair,
                  "host_candidates": offer.count("typ host"),
                  "srflx_candidates": offer.count("typ srflx"),
                  "relay_candidates": offer.count("typ relay")}
        # Talk until the other phone says (in the chat) that our audio arrived.
        heard = await self.expect("message", timeout=180,
                                  match=lambda m: m.get("from") == to
                                  and m.get("text") == "I hear you")
        self.note(heard)
        await self.send("call_hangup", call=call)
        await self.expect("call_ended")
        await pc.close()
        return result

    async def answer(self, caller: str) -> dict[str, Any]:
        incoming = await self.expect("call_incoming", timeout=180)
        pc = self.peer_connection()
        frames: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        counters: list[asyncio.Future[None]] = []

        @pc.on("track")
        def on_track(track: Any) -> None:
            async def count() -> None:
                n = 0
                while n < 25:
                    await track.recv()
                    n += 1
                if not frames.done():
                    frames.set_result(n)

            counters.append(asyncio.ensure_future(count()))

        await self.send("call_accept", call=incoming["call"])
        offer = await self.expect("signal")
        pc.addTrack(AudioStreamTrack())
        await pc.setRemoteDescription(RTCSessionDescription(**offer["data"]["description"]))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.send("signal", call=incoming["call"], to=caller,
                        data={"description": {"type": "answer", "sdp": pc.localDescription.sdp}})
        audio = await asyncio.wait_for(frames, 180)
        pair = selected_pair(pc)
        await self.send_dm(caller, "I hear you")
        await self.expect("call_ended", timeout=120)
        await pc.close()
        return {"audio_frames": audio, "pair": pair}

    async def leave(self) -> dict[str, Any]:
        await self.ws.close()
        self.reader.cancel()
        self.inbox = asyncio.Queue()
        return {"since_at": self.seen}


def selected_pair(pc: RTCPeerConnection) -> dict[str, str]:
    """The ICE candidate pair in use (aiortc's internals; empty when not found)."""
    try:
        for transceiver in pc.getTransceivers():
            ice = transceiver.receiver.transport.transport
            pair = ice._connection._nominated.get(1)
            if pair is not None:
                return {"local": f"{pair.local_candidate.host} {pair.local_candidate.type}",
                        "remote": f"{pair.remote_candidate.host} {pair.remote_candidate.type}"}
    except Exception:  # best effort: only for the timeline
        pass
    return {}


async def main() -> None:
    phone = Phone(sys.argv[1], sys.argv[2:])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit(event="ready", name=phone.name)
    while True:
        raw = await reader.readline()
        if not raw:
            return
        command = json.loads(raw)
        do = command.pop("do")
        try:
            if do == "join":
                result = await phone.join()
            elif do == "wait_user":
                result = await phone.wait_user(command["name"])
            elif do == "send":
                result = await phone.send_dm(command["to"], command["text"])
            elif do == "expect":
                result = await phone.expect_from(command["from"], command["count"])
            elif do == "call":
                result = await phone.call(command["to"])
            elif do == "answer":
                result = await phone.answer(command["to"])
            elif do == "leave":
                result = await phone.leave()
            elif do == "quit":
                emit(done=do)
                return
            else:
                raise RuntimeError(f"unknown command {do}")
            emit(done=do, ok=True, **result)
        except Exception as exc:
            emit(done=do, ok=False, error=f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    asyncio.run(main())
