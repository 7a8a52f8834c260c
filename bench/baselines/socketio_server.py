"""The Flask-SocketIO baseline: a room broadcast server as the seeds build it.

    python -m bench.baselines.socketio_server --port 9000

Production set-up as Flask-SocketIO's deployment docs describe it: gevent with
the standard library monkey-patched, WebSocket transport through
simple-websocket, `socketio.run()` serving. Nothing is stored.
Events: `join` {rooms: [...]} (acknowledged), `send` {room, id, text} →
`message` {room, id, text} to the room except the sender.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
from typing import Any  # noqa: E402

from flask import Flask  # noqa: E402
from flask_socketio import SocketIO, emit, join_room  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(app, async_mode="gevent", cors_allowed_origins="*",
                    max_http_buffer_size=65536)


@app.get("/healthz")
def healthz() -> str:
    return "ok\n"


@socketio.on("join")
def on_join(data: dict[str, Any]) -> str:
    for room in data["rooms"]:
        join_room(room)
    return "joined"


@socketio.on("send")
def on_send(data: dict[str, Any]) -> None:
    emit("message", {"room": data["room"], "id": data["id"], "text": data["text"]},
         to=data["room"], include_self=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    socketio.run(app, host=args.host, port=args.port, log_output=False)
