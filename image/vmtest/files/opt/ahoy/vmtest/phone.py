"""One simulated phone, run by agent.py inside its network namespace (behind its own radio).

    phone.py portal BOX                 captive portal: probe redirected, accept, probe answered;
                                        the app over HTTPS, verified with the box CA
    phone.py ana BOX | ben BOX          join, a direct message each way, an aiortc call with the
                                        box's ICE servers (ana calls, ben answers)
    phone.py burst BOX SECONDS          as ana again (saved device token): send messages to ben
                                        as fast as acks come, printing each ack
    phone.py history BOX                as ana: every message id in the conversation with ben

Prints JSON lines; the last one is the result. Needs the vmtest venv (aiortc, websockets).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import ssl
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import websockets
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from websockets.typing import Origin

CA = Path("/data/ahoy/tls/ahoy-ca.crt")
STATE = Path("/data/vmtest")  # device tokens survive the pulled plug like a phone's storage


def uptime() -> float:
    return round(float(Path("/proc/uptime").read_text().split()[0]), 2)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(CA))


def http_get(host: str, path: str, https: bool = False, method: str = "GET",
             headers: dict[str, str] | None = None,
             body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn: http.client.HTTPConnection
    if https:
        conn = http.client.HTTPSConnection(host, 443, timeout=30, context=tls_context())
    else:
        conn = http.client.HTTPConnection(host, 80, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def portal(box: str) -> dict[str, Any]:
    # Android's probe, by name: dnsmasq answers every name with the box.
    probe = "connectivitycheck.gstatic.com"
    before, headers, _ = http_get(probe, "/generate_204")
    redirect = headers.get("location", "")
    _, _, page = http_get(box, "/portal")
    nonce = re.search(rb'name="nonce" value="([^"]*)"', page)
    accepted, _, _ = http_get(box, "/portal/continue", method="POST",
                              body=b"nonce=" + (nonce.group(1) if nonce else b""),
                              headers={"Origin": f"http://{box}",
                                       "Content-Type": "application/x-www-form-urlencoded"})
    after, _, _ = http_get(probe, "/generate_204")
    app, _, page = http_get("ahoy.internal", "/", https=True)
    return {"probe_before": before, "redirect": redirect, "continue": accepted,
            "probe_after": after, "https_app": app, "https_bytes": len(page)}


class Phone:
    """Talks to the box like the web app does (see docs/protocol.md)."""

    def __init__(self, box: str, name: str) -> None:
        self.url = "wss://ahoy.internal/ws"
        self.origin = "https://ahoy.internal"
        self.name = name
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.backlog: list[dict[str, Any]] = []  # frames read while waiting for others
        self.welcome: dict[str, Any] = {}

    async def join(self) -> None:
        token_file = STATE / f"{self.name}.token"
        hello: dict[str, Any] = {"type": "hello", "name": self.name}
        if token_file.exists():
            hello = {"type": "hello", "token": token_file.read_text().strip()}
        # The hotspot (and so the lease) can be up before the service listens: a
        # Python start under TCG on a busy host took 150 s. Like the app, try again.
        deadline = time.monotonic() + 240
        while True:
            try:
                self.ws = await websockets.connect(self.url, ssl=tls_context(),
                                                   origin=Origin(self.origin), open_timeout=30)
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise
                emit(event="retry", why=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(3)
        await self.ws.send(json.dumps(hello))
        self.welcome = await self.expect("welcome", read_direct=True)
        STATE.mkdir(parents=True, exist_ok=True)
        token_file.write_text(self.welcome["token"])
        self.reader = asyncio.create_task(self._read())

    @property
    def user_id(self) -> str:
        return str(self.welcome["you"]["id"])

    async def _read(self) -> None:
        async for raw in self.ws:
            await self.inbox.put(json.loads(raw))

    async def send(self, type_: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type_, **fields}))

    async def expect(self, type_: str, timeout: float = 60, read_direct: bool = False,
                     match: Any = None) -> dict[str, Any]:
        def wanted(m: dict[str, Any]) -> bool:
            return bool(m["type"] == type_ and (match is None or match(m)))

        # Frames that came while waiting for another are kept, not dropped: the
        # box sends a message at once but the `changes` frame announcing its
        # sender up to 0.2 s later, so Ben can have Ana's message first.
        for i, m in enumerate(self.backlog):
            if wanted(m):
                return self.backlog.pop(i)

        async def wait() -> dict[str, Any]:
            while True:
                m = json.loads(await self.ws.recv()) if read_direct else await self.inbox.get()
                if wanted(m):
                    return m
                if m["type"] == "error":
                    raise RuntimeError(f"{self.name} got {m}")
                self.backlog.append(m)

        return await asyncio.wait_for(wait(), timeout)

    async def user_named(self, name: str) -> str:
        def online(user: dict[str, Any]) -> bool:
            # `status` left out is `online` (docs/protocol.md, `changes`).
            return user.get("name") == name and user.get("status", "online") in ("online", "busy")

        # `welcome` names only contacts; everyone online is asked for, and
        # watching them brings each arrival in `changes` frames
        # (docs/protocol.md, "People online").
        await self.send("people", watch=True, ref="people")
        answer = await self.expect("people", match=lambda m: m.get("ref") == "people")
        for user in answer.get("users", []):
            if online(user):
                return str(user["id"])
        event = await self.expect("changes", timeout=120,
                                  match=lambda m: any(online(u) for u in m.get("users", [])))
        return str(next(u["id"] for u in event["users"] if online(u)))

    def peer_connection(self) -> RTCPeerConnection:
        servers = [RTCIceServer(urls=s["urls"], username=s.get("username"),
                                credential=s.get("credential"))
                   for s in self.welcome.get("ice_servers", [])]
        return RTCPeerConnection(RTCConfiguration(iceServers=servers))


async def ana(box: str) -> dict[str, Any]:
    me = Phone(box, "Ana")
    await me.join()
    emit(event="joined", name="Ana", t=uptime())
    ben = await me.user_named("Ben")
    (STATE / "peers.json").write_text(json.dumps([ben]))
    await me.send("send", id=f"m-{uuid.uuid4().hex[:12]}", to=ben, text="hello Ben")
    await me.expect("ack")
    reply = await me.expect("message", match=lambda m: m.get("from") == ben)
    await me.send("call_invite", to=ben, media="audio")
    call = (await me.expect("call_ringing"))["call"]
    await me.expect("call_accepted")
    pc = me.peer_connection()
    channel = pc.createDataChannel("chat")
    pc.addTrack(AudioStreamTrack())
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await pc.setLocalDescription(await pc.createOffer())
    offer_sdp = pc.localDescription.sdp
    await me.send("signal", call=call, to=ben,
                  data={"description": {"type": "offer", "sdp": offer_sdp}})
    answer = await me.expect("signal")
    await pc.setRemoteDescription(RTCSessionDescription(**answer["data"]["description"]))
    await asyncio.wait_for(opened.wait(), 60)
    result = {"dm_reply": reply.get("text"), "ice": pc.iceConnectionState,
              "srflx_candidates": offer_sdp.count("typ srflx"),
              "relay_candidates": offer_sdp.count("typ relay")}
    await asyncio.sleep(5)  # let audio flow to ben (25 frames are 0.5 s; a loaded VM is slow)
    await me.send("call_hangup", call=call)
    await me.expect("call_ended")
    await pc.close()
    await me.ws.close()
    return result


async def ben(box: str) -> dict[str, Any]:
    me = Phone(box, "Ben")
    await me.join()
    emit(event="joined", name="Ben", t=uptime())
    ana_id = await me.user_named("Ana")
    hello = await me.expect("message", match=lambda m: m.get("from") == ana_id, timeout=120)
    await me.send("send", id=f"m-{uuid.uuid4().hex[:12]}", to=ana_id, text="hello Ana")
    await me.expect("ack")
    incoming = await me.expect("call_incoming", timeout=120)
    pc = me.peer_connection()
    frames: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    counters: list[asyncio.Future[None]] = []

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def count() -> None:
            n = 0
            try:
                while n < 25:
                    await track.recv()
                    n += 1
            except MediaStreamError:  # the call ended first: say how many came
                pass
            if not frames.done():
                frames.set_result(n)

        counters.append(asyncio.ensure_future(count()))

    await me.send("call_accept", call=incoming["call"])
    offer = await me.expect("signal")
    pc.addTrack(AudioStreamTrack())
    await pc.setRemoteDescription(RTCSessionDescription(**offer["data"]["description"]))
    await pc.setLocalDescription(await pc.createAnswer())
    await me.send("signal", call=incoming["call"], to=ana_id,
                  data={"description": {"type": "answer", "sdp": pc.localDescription.sdp}})
    audio = await asyncio.wait_for(frames, 60)
    await me.expect("call_ended", timeout=60)
    await pc.close()
    # Ben stays offline from now on: the burst goes to him and is stored for later.
    await me.ws.close()
    return {"dm_got": hello.get("text"), "audio_frames": audio}


async def burst(box: str, seconds: float) -> dict[str, Any]:
    me = Phone(box, "Ana")
    await me.join()
    ben = str(json.loads((STATE / "peers.json").read_text())[0])
    acked = 0
    end = time.monotonic() + seconds
    window = 8  # messages in flight, like a fast typist on a slow link
    pending: set[str] = set()
    while time.monotonic() < end:
        while len(pending) < window:
            mid = f"m-{uuid.uuid4().hex[:12]}"
            pending.add(mid)
            await me.send("send", id=mid, to=ben, text=f"burst {mid}")
        ack = await me.expect("ack")
        pending.discard(ack["id"])
        acked += 1
        emit(event="ack", id=ack["id"], seq=ack["seq"])
    return {"acked": acked}


async def history(box: str) -> dict[str, Any]:
    me = Phone(box, "Ana")
    await me.join()
    ben = str(json.loads((STATE / "peers.json").read_text())[0])
    conv = "dm:" + ":".join(sorted([me.user_id, ben]))
    ids: list[str] = []
    after = 0
    while True:
        await me.send("sync", conv=conv, after=after, limit=500)
        page = await me.expect("history", match=lambda m: m["conv"] == conv)
        ids += [m["id"] for m in page["messages"]]
        if not page["messages"] or not page.get("more"):
            break
        after = page["messages"][-1]["seq"]
    await me.ws.close()
    return {"conv": conv, "ids": ids}


def main() -> None:
    command, box = sys.argv[1], sys.argv[2]
    if command == "portal":
        result = portal(box)
    elif command in ("ana", "ben"):
        result = asyncio.run(asyncio.wait_for((ana if command == "ana" else ben)(box), 300))
    elif command == "burst":
        result = asyncio.run(burst(box, float(sys.argv[3])))
    elif command == "history":
        result = asyncio.run(asyncio.wait_for(history(box), 360))
    else:
        raise SystemExit(f"unknown command {command}")
    emit(event="result", command=command, **result)


if __name__ == "__main__":
    main()
