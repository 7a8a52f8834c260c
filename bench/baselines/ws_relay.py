"""The Python ceiling: a bare asyncio `websockets` room relay, no storage.

    python -m bench.baselines.ws_relay --port 9000

Speaks a small subset of Ahoy's frames so the load generator can drive it:
`{"type": "join", "rooms": ["a", "b"]}`, then
`{"type": "send", "room": "a", "id": "...", "text": "..."}`, relayed to every
other member of the room as `{"type": "message", "room": ..., "id": ..., "text": ...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

rooms: dict[str, set[ServerConnection]] = defaultdict(set)


async def handler(ws: ServerConnection) -> None:
    joined: list[str] = []
    try:
        async for raw in ws:
            m = json.loads(raw)
            if m.get("type") == "join":
                for room in m["rooms"]:
                    rooms[room].add(ws)
                    joined.append(room)
                await ws.send(json.dumps({"type": "joined", "ref": m.get("ref")}))
            elif m.get("type") == "send":
                out = json.dumps({"type": "message", "room": m["room"], "id": m["id"],
                                  "text": m["text"]}, separators=(",", ":"))
                broadcast([c for c in rooms[m["room"]] if c is not ws], out)
                await ws.send(json.dumps({"type": "ack", "id": m["id"]}))
    finally:
        for room in joined:
            rooms[room].discard(ws)


def health(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/healthz":
        return connection.respond(200, "ok\n")
    return None


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(handler, host, port, process_request=health, max_size=65536,
                     ping_interval=25):
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
