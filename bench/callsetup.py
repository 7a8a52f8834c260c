"""Call set-up: two aiortc peers, offer to ICE connected and to data channel open.

Through Ahoy: both peers are connected to the service; Ana invites Ben, Ben
accepts, then the offer and answer go through `signal` frames. aiortc gathers
its candidates before the offer is sent (no trickle), so the clock starts when
the offer is handed to the signaling channel. The floor does the same through
asyncio queues in this process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription

from .servers import KINDS, Server

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass
class CallTimes:
    connected_ms: list[float]
    channel_ms: list[float]
    failures: int


async def one_call(offer_send: Send, offer_recv: Receive, answer_send: Send,
                   answer_recv: Receive) -> tuple[float, float]:
    """Ana offers, Ben answers; returns (offer→connected, offer→channel open) in ms."""
    ana, ben = RTCPeerConnection(), RTCPeerConnection()
    connected = asyncio.Event()
    opened = asyncio.Event()
    channel = ana.createDataChannel("chat")
    channel.on("open", opened.set)

    @ana.on("connectionstatechange")
    def on_state() -> None:
        if ana.connectionState == "connected":
            connected.set()

    async def ben_side() -> None:
        offer = (await answer_recv())["description"]
        await ben.setRemoteDescription(RTCSessionDescription(**offer))
        await ben.setLocalDescription(await ben.createAnswer())
        await answer_send({"description": {"type": ben.localDescription.type,
                                           "sdp": ben.localDescription.sdp}})

    try:
        await ana.setLocalDescription(await ana.createOffer())
        ben_task = asyncio.create_task(ben_side())
        t0 = time.perf_counter()
        await offer_send({"description": {"type": ana.localDescription.type,
                                          "sdp": ana.localDescription.sdp}})
        answer = (await offer_recv())["description"]
        await ana.setRemoteDescription(RTCSessionDescription(**answer))
        await asyncio.wait_for(connected.wait(), 20)
        t_connected = time.perf_counter()
        await asyncio.wait_for(opened.wait(), 20)
        t_open = time.perf_counter()
        await ben_task
        return (t_connected - t0) * 1000, (t_open - t0) * 1000
    finally:
        await ana.close()
        await ben.close()


async def direct_floor(runs: int) -> CallTimes:
    out = CallTimes([], [], 0)
    for _ in range(runs):
        to_ben: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        to_ana: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        try:
            c, o = await one_call(to_ben.put, to_ana.get, to_ana.put, to_ben.get)
            out.connected_ms.append(c)
            out.channel_ms.append(o)
        except Exception:
            out.failures += 1
    return out


class Phone:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())
        self.user_id = ""

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                await self.inbox.put(json.loads(raw))
        except websockets.ConnectionClosed:
            pass

    async def send(self, type_: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type_, **fields}))

    async def expect(self, type_: str) -> dict[str, Any]:
        while True:
            m = await asyncio.wait_for(self.inbox.get(), 20)
            if m["type"] == type_:
                return m
            if m["type"] == "error":
                raise RuntimeError(m)


async def through_ahoy(url: str, runs: int) -> CallTimes:
    ana = Phone(await websockets.connect(url))
    ben = Phone(await websockets.connect(url))
    for phone, name in ((ana, "BenchAna"), (ben, "BenchBen")):
        await phone.send("hello", name=name)
        phone.user_id = (await phone.expect("welcome"))["you"]["id"]
    out = CallTimes([], [], 0)
    for _ in range(runs):
        try:
            await ana.send("call_invite", to=ben.user_id, media="audio")
            call = (await ana.expect("call_ringing"))["call"]
            await ben.expect("call_incoming")
            await ben.send("call_accept", call=call)
            await ana.expect("call_accepted")

            async def ana_send(data: dict[str, Any], call: str = call) -> None:
                await ana.send("signal", call=call, to=ben.user_id, data=data)

            async def ben_send(data: dict[str, Any], call: str = call) -> None:
                await ben.send("signal", call=call, to=ana.user_id, data=data)

            async def ana_recv() -> dict[str, Any]:
                return dict((await ana.expect("signal"))["data"])

            async def ben_recv() -> dict[str, Any]:
                return dict((await ben.expect("signal"))["data"])

            c, o = await one_call(ana_send, ana_recv, ben_send, ben_recv)
            out.connected_ms.append(c)
            out.channel_ms.append(o)
            await ana.send("call_hangup", call=call)
            await ben.expect("call_ended")
        except Exception as e:
            logging.getLogger(__name__).warning("call failed: %r", e)
            out.failures += 1
    await ana.ws.close()
    await ben.ws.close()
    return out


def summary(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    s = sorted(values)
    return statistics.median(s), s[min(len(s) - 1, round(0.95 * len(s)) - 1)]


def run_callsetup(runs: int, kind_name: str = "ahoy-gevent") -> dict[str, CallTimes]:
    server = Server(KINDS[kind_name]).start()
    try:
        ahoy = asyncio.run(through_ahoy(server.ws_url, runs))
    finally:
        server.stop()
    floor = asyncio.run(direct_floor(runs))
    return {"Ahoy signaling (gevent)": ahoy, "direct in-process relay": floor}
