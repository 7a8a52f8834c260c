"""The box's send path alone: broadcasts written to many sockets under gevent.

`python -m bench.send_path [connections] [broadcasts] [appliance dir]`: this
process, monkey-patched by gevent as the production server is, holds
`connections` loopback TCP connections whose far ends a second process reads
and discards. Each broadcast (a `changes`-sized text, about 3 KB) goes to
every connection through `appliance.ws.SocketPeer` as the hub hands it over
(`send_encoded`). Prints the sending process's CPU seconds and microseconds
per frame. With a third argument, `appliance` is imported from that directory
(an older checkout), so two versions are compared in the same minute.

A SocketPeer needs simple-websocket's connection object: here a stand-in with
the socket and what simple-websocket's `send` does (wsproto builds the frame,
then one `socket.send`), which the older versions call and this one does not.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from wsproto import ConnectionType  # noqa: E402
from wsproto.connection import Connection  # noqa: E402
from wsproto.events import CloseConnection, Message, TextMessage  # noqa: E402


class Stand:
    """What SocketPeer uses of simple_websocket.Server."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.connected = True
        self.close_reason = 1000
        self.close_message = ""
        self.ws = Connection(ConnectionType.SERVER)

    def send(self, data: str | bytes) -> None:
        event = Message(data=data) if isinstance(data, bytes) else TextMessage(data=data)
        self.sock.send(self.ws.send(event))

    def close(self, reason: int = 1000, message: str = "") -> None:
        self.sock.send(self.ws.send(CloseConnection(reason, message)))
        self.connected = False


# The far ends: read and discard until every connection has ended.
DRAIN = """
import selectors, socket, sys
listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
print(listener.getsockname()[1], flush=True)
sel = selectors.DefaultSelector()
sel.register(listener, selectors.EVENT_READ)
open_ = 0
while True:
    for key, _ in sel.select():
        if key.fileobj is listener:
            conn, _ = listener.accept()
            conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ)
            open_ += 1
        elif not key.fileobj.recv(1 << 20):
            sel.unregister(key.fileobj)
            key.fileobj.close()
            open_ -= 1
            if open_ == 0:
                sys.exit(0)
"""


def main(connections: int, broadcasts: int) -> None:
    from appliance import ws
    far = subprocess.Popen([sys.executable, "-c", DRAIN], stdout=subprocess.PIPE, text=True)
    assert far.stdout is not None
    port = int(far.stdout.readline())
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    peers = [ws.SocketPeer(Stand(s)) for s in socks]
    for p in peers:
        p.start()
    texts = [json.dumps({"type": "changes", "users": [{"id": f"u_{i:012}", "name": f"bench{i}"}
                                                      for i in range(60 + n % 7)],
                         "rooms": []}, separators=(",", ":")) for n in range(broadcasts)]
    gevent.sleep(0.5)
    started = time.process_time()
    wall = time.monotonic()
    for text in texts:
        for p in peers:
            p.send_encoded(text)
        gevent.sleep(0)  # the hub's loop turn ends; the writers run
    while any(p.queued or getattr(p.ws.sock, "rest", b"") for p in peers):
        gevent.sleep(0.01)
    cpu = time.process_time() - started
    wall = time.monotonic() - wall
    for p in peers:
        p.finish()
    for s in socks:
        s.close()
    far.wait(30)
    frames = connections * broadcasts
    print(f"{ws.__file__}: {frames} frames of about {len(texts[0])} B to {connections} "
          f"connections: CPU {cpu:.2f} s ({cpu / frames * 1e6:.1f} us a frame), wall {wall:.2f} s")


if __name__ == "__main__":
    if len(sys.argv) > 3:
        sys.path.insert(0, sys.argv[3])
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
         int(sys.argv[2]) if len(sys.argv) > 2 else 20)
