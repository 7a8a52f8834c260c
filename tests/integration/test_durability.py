"""Acknowledged means stored: a SIGKILL mid-burst loses nothing that was acked."""

from __future__ import annotations

import threading
import time

from ahoytest import WsClient
from websockets.exceptions import ConnectionClosed


def test_server_killed_mid_burst_loses_no_acknowledged_message(start_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = start_server(tmp_path / "data")
    sender = WsClient(server.ws_url)
    sender.hello("Sender")
    room = sender.request("room_create", "room", name="Log")["room"]["id"]
    conv = f"room:{room}"
    acked: dict[str, int] = {}
    sent: list[str] = []

    def read_acks() -> None:
        try:
            while True:
                m = sender._receive(10)
                if m["type"] == "ack":
                    acked[m["id"]] = m["seq"]
        except (ConnectionClosed, TimeoutError, OSError):
            pass

    reader = threading.Thread(target=read_acks)
    reader.start()
    try:
        for i in range(2000):
            msg_id = f"m-burst{i:05}"
            sender.send("send", id=msg_id, room=room, text=f"burst {i}")
            sent.append(msg_id)
            if i % 18 == 17:
                time.sleep(0.9)  # stay under the rate limit
            if len(acked) >= 40:
                server.kill()
                break
    except (ConnectionClosed, OSError):
        pass
    reader.join(15)
    assert len(acked) >= 40, "the burst was not acknowledged before the kill"

    server.start()  # same data folder, same ports
    back = WsClient(server.ws_url)
    assert back.hello(token=sender.token)["type"] == "welcome"
    history = back.request("sync", "history", conv=conv, after=0, limit=500)
    stored = {m["id"]: m["seq"] for m in history["messages"]}
    seqs = [m["seq"] for m in history["messages"]]
    # Every acknowledged message is there, with the sequence number it was acked with.
    assert all(stored.get(i) == s for i, s in acked.items())
    assert seqs == list(range(1, len(seqs) + 1))
    # The client now resends what it never saw acknowledged; nothing is doubled.
    for msg_id in sent:
        if msg_id not in acked:
            back.request("send", "ack", id=msg_id, room=room, text="retry")
            time.sleep(0.06)
    final = back.request("sync", "history", conv=conv, after=0, limit=500)["messages"]
    assert sorted(m["id"] for m in final) == sorted(sent)
    assert [m["seq"] for m in final] == list(range(1, len(sent) + 1))
    back.close()
