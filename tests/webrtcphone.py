"""An aiortc phone that talks to the box like the web app does, and a whole call
between two of them (tests/integration/test_webrtc_call.py, tests/site/)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from ahoytest import unique
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack


class Phone:
    """An aiortc peer that talks to the box like the web app does."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pc = RTCPeerConnection()
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.user_id = ""

    async def join(self, name: str) -> None:
        self.ws = await websockets.connect(self.url)
        await self.send("hello", name=name)
        welcome = await self.expect("welcome")
        self.user_id = welcome["you"]["id"]
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            await self.inbox.put(json.loads(raw))

    async def send(self, type_: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type_, **fields}))

    async def expect(self, type_: str, timeout: float = 15) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                if hasattr(self, "reader"):
                    m = await self.inbox.get()
                else:
                    m = json.loads(await self.ws.recv())
                if m["type"] == type_:
                    return m
                if m["type"] == "error":
                    raise AssertionError(m)

        return await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        await self.pc.close()
        await self.ws.close()


async def call_through_the_box(url: str, ben_url: str | None = None) -> dict[str, Any]:
    """Ana calls Ben; Ben's phone is on `ben_url` (another box of a site) if given."""
    ana, ben = Phone(url), Phone(ben_url or url)
    await ana.join(unique("Ana"))
    await ben.join(unique("Ben"))
    results: dict[str, Any] = {}

    for _ in range(300):  # on a site, until Ana's box has heard that Ben is online
        await ana.send("call_invite", to=ben.user_id, media="audio")
        try:
            call = (await ana.expect("call_ringing"))["call"]
            break
        except AssertionError as refused:
            if "user_offline" not in str(refused) and "unknown_user" not in str(refused):
                raise
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("Ana's box never saw Ben online")
    incoming = await ben.expect("call_incoming")
    assert incoming["call"] == call and incoming["from"] == ana.user_id
    await ben.send("call_accept", call=call)
    await ana.expect("call_accepted")

    # Ana offers: a data channel and an audio track.
    channel = ana.pc.createDataChannel("chat")
    ana.pc.addTrack(AudioStreamTrack())
    channel_open = asyncio.Event()
    got_reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    channel.on("open", channel_open.set)
    channel.on("message", lambda m: got_reply.done() or got_reply.set_result(m))

    got_message: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    audio_frames: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @ben.pc.on("datachannel")
    def on_channel(ch: Any) -> None:
        @ch.on("message")
        def on_message(m: str) -> None:
            if not got_message.done():
                got_message.set_result(m)
            ch.send("hello Ana")

    @ben.pc.on("track")
    def on_track(track: Any) -> None:
        async def count() -> None:
            frames = 0
            while frames < 10:
                await track.recv()
                frames += 1
            audio_frames.set_result(frames)

        asyncio.ensure_future(count())

    await ana.pc.setLocalDescription(await ana.pc.createOffer())
    # aiortc gathers all candidates before setLocalDescription returns (no trickle).
    await ana.send("signal", call=call, to=ben.user_id,
                   data={"description": {"type": "offer", "sdp": ana.pc.localDescription.sdp}})
    offer = await ben.expect("signal")
    assert offer["from"] == ana.user_id
    ben.pc.addTrack(AudioStreamTrack())
    await ben.pc.setRemoteDescription(RTCSessionDescription(**offer["data"]["description"]))
    await ben.pc.setLocalDescription(await ben.pc.createAnswer())
    await ben.send("signal", call=call, to=ana.user_id,
                   data={"description": {"type": "answer", "sdp": ben.pc.localDescription.sdp}})
    answer = await ana.expect("signal")
    await ana.pc.setRemoteDescription(RTCSessionDescription(**answer["data"]["description"]))

    await asyncio.wait_for(channel_open.wait(), 20)
    results["ice"] = ana.pc.iceConnectionState
    channel.send("hello Ben")
    results["ben_got"] = await asyncio.wait_for(got_message, 10)
    results["ana_got"] = await asyncio.wait_for(got_reply, 10)
    results["audio_frames"] = await asyncio.wait_for(audio_frames, 10)

    await ana.send("call_hangup", call=call)
    ended = await ben.expect("call_ended")
    results["ended"] = (ended["reason"], ended["by"] == ana.user_id)
    await ana.expect("call_ended")
    await ana.close()
    await ben.close()
    return results


