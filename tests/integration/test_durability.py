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


def test_many_senders_at_once_lose_nothing_acked_when_killed_and_seq_has_no_gaps(start_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Group commit: many phones' messages share commits; a SIGKILL still
    loses none that was acknowledged, and numbering stays gap-free."""
    server = start_server(tmp_path / "data")
    owner = WsClient(server.ws_url)
    owner.hello("Owner")
    room = owner.request("room_create", "room", name="Crowd", limit=50)["room"]["id"]
    senders = []
    for i in range(12):
        c = WsClient(server.ws_url)
        c.hello(f"S{i}")
        c.request("room_join", "room", room=room)
        senders.append(c)
    acked: dict[str, int] = {}
    lock = threading.Lock()

    def burst(index: int, client: WsClient) -> None:
        try:
            for n in range(40):  # within the burst allowance of 60 frames
                client.send("send", id=f"m-s{index:02}-{n:04}", room=room, text=f"{index}/{n}")
            while True:
                m = client._receive(10)
                if m["type"] == "ack":
                    with lock:
                        acked[m["id"]] = m["seq"]
        except (ConnectionClosed, TimeoutError, OSError):
            pass

    threads = [threading.Thread(target=burst, args=(i, c)) for i, c in enumerate(senders)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 100 and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill()
    for t in threads:
        t.join(15)
    assert len(acked) >= 100, "the burst was not acknowledged before the kill"

    server.start()
    back = WsClient(server.ws_url)
    assert back.hello(token=owner.token)["type"] == "welcome"
    history = back.request("sync", "history", conv=f"room:{room}", after=0, limit=500)
    stored = {m["id"]: m["seq"] for m in history["messages"]}
    assert all(stored.get(i) == s for i, s in acked.items())
    assert [m["seq"] for m in history["messages"]] == list(range(1, len(stored) + 1))
    # Each sender's messages are stored in the order it sent them.
    for index in range(len(senders)):
        mine = [int(m["text"].split("/")[1]) for m in history["messages"]
                if m["text"].startswith(f"{index}/")]
        assert mine == list(range(len(mine)))
    back.close()
