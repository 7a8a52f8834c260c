"""A phone's WebRTC peer (aiortc), run inside the phone's network namespace.

    turn_peer.py gather ICE_JSON         make an offer; print {"sdp": ...} and exit
    turn_peer.py offer NAME ICE_JSON     print the offer, read the answer, call
    turn_peer.py answer NAME ICE_JSON    read the offer, print the answer, call

offer and answer take an optional last argument, the ICE transport policy
("all" or "relay", as in RTCConfiguration.iceTransportPolicy).

ICE_JSON is the `ice_servers` list the Ahoy service hands phones in `welcome`.
The test talks to the peer in JSON lines: the peer prints its description
({"type", "sdp"}), reads the other side's, opens (or accepts) the data channel
"chat", sends "hello from NAME", and once the other side's hello has arrived
prints {"received", "state", "pair"}. It keeps the call up until its stdin
closes, so neither side hangs up while the other is still checking.
Any failure is printed as {"error": ...}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

CALL_TIMEOUT_S = 20


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _read() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def _peer(ice_json: str, policy: str = "all") -> RTCPeerConnection:
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"),
                            credential=s.get("credential")) for s in json.loads(ice_json)]
    return RTCPeerConnection(RTCConfiguration(
        iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy(policy)))


def _candidate(candidate: Any) -> dict[str, Any]:
    return {"type": candidate.type, "ip": candidate.host, "port": candidate.port,
            "protocol": candidate.transport}


def _selected_pair(pc: RTCPeerConnection) -> dict[str, Any]:
    # aiortc has no getSelectedCandidatePair(); the nominated pair lives in aioice.
    assert pc.sctp is not None
    connection = pc.sctp.transport.transport._connection
    pair = connection._nominated[1]
    return {"local": _candidate(pair.local_candidate),
            "remote": _candidate(pair.remote_candidate)}


async def gather(ice_json: str) -> None:
    pc = _peer(ice_json)
    pc.createDataChannel("chat")
    await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
    _emit({"type": "offer", "sdp": pc.localDescription.sdp})
    await pc.close()


async def call(role: str, name: str, ice_json: str, policy: str = "all") -> None:
    pc = _peer(ice_json, policy)
    received: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def talk(channel: RTCDataChannel) -> None:
        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            if not received.done():
                received.set_result(str(message))

        if channel.readyState == "open":
            channel.send(f"hello from {name}")
        else:
            channel.on("open", lambda: channel.send(f"hello from {name}"))

    try:
        if role == "offer":
            talk(pc.createDataChannel("chat"))
            await pc.setLocalDescription(await pc.createOffer())
            _emit({"type": "offer", "sdp": pc.localDescription.sdp})
            await pc.setRemoteDescription(RTCSessionDescription(**json.loads(await _read())))
        else:
            pc.on("datachannel", talk)
            await pc.setRemoteDescription(RTCSessionDescription(**json.loads(await _read())))
            await pc.setLocalDescription(await pc.createAnswer())
            _emit({"type": "answer", "sdp": pc.localDescription.sdp})
        try:
            message = await asyncio.wait_for(received, CALL_TIMEOUT_S)
        except TimeoutError:
            raise TimeoutError(f"no hello from the other side in {CALL_TIMEOUT_S} s") from None
        _emit({"received": message, "state": pc.connectionState, "pair": _selected_pair(pc)})
        await _read()  # hang up when the test says so (stdin closed)
    except Exception as exc:  # reported to the test, which shows it
        _emit({"error": f"{type(exc).__name__}: {exc}", "state": pc.connectionState})
    finally:
        await pc.close()


if __name__ == "__main__":
    if sys.argv[1] == "gather":
        asyncio.run(gather(sys.argv[2]))
    else:
        asyncio.run(call(*sys.argv[1:]))
