"""The floor of Ahoy's own stack: the room relay of `ws_relay`, on Flask and
flask-sock under gevent's pywsgi, as Ahoy's production server runs them.

    python -m bench.baselines.flask_sock_relay --port 9000

Nothing is stored, nobody is told who arrives: what connecting costs here is
what the mandated parts cost before Ahoy does anything (the HTTP request parsed
by pywsgi, Flask's dispatch, simple-websocket's handshake and its reader
thread, a WebSocket frame parsed by wsproto). Same frames as `ws_relay`;
simple-websocket frames and compresses what is sent (permessage-deflate as
offered), and pings every 10 s as Ahoy has it do.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
from collections import defaultdict  # noqa: E402
from typing import Any  # noqa: E402

from flask import Flask  # noqa: E402
from flask_sock import ConnectionClosed, Sock  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

app = Flask(__name__)
app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 10, "max_message_size": 65536}
sock = Sock(app)
rooms: dict[str, set[Any]] = defaultdict(set)


@app.get("/healthz")
def healthz() -> str:
    return "ok\n"


@sock.route("/")
def relay(ws: Any) -> None:
    joined: list[str] = []
    try:
        while True:
            m = json.loads(ws.receive())
            if m.get("type") == "join":
                for room in m["rooms"]:
                    rooms[room].add(ws)
                    joined.append(room)
                ws.send(json.dumps({"type": "joined", "ref": m.get("ref")}))
            elif m.get("type") == "send":
                out = json.dumps({"type": "message", "room": m["room"], "id": m["id"],
                                  "text": m["text"]}, separators=(",", ":"))
                for other in list(rooms[m["room"]]):
                    if other is not ws:
                        try:
                            other.send(out)
                        except (ConnectionClosed, OSError):
                            pass
                ws.send(json.dumps({"type": "ack", "id": m["id"]}))
    except ConnectionClosed:
        pass
    finally:
        for room in joined:
            rooms[room].discard(ws)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    WSGIServer((args.host, args.port), app, log=None).serve_forever()
