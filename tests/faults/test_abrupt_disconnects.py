"""Phones that vanish mid-conversation (no close frame) and come back with their token."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from ahoytest import AhoyServer, WsClient, unique

CLIENTS = 30
CUT_EVERY = 5  # 20% of the clients
ROUNDS = 2
MESSAGES_PER_ROUND = 30


def proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def room_seqs(messages: list[dict[str, Any]], conv: str) -> list[int]:
    """Sequence numbers of `conv` in the order the client saw them (live and history)."""
    out: list[int] = []
    for m in messages:
        if m.get("type") == "message" and m.get("conv") == conv:
            out.append(m["seq"])
        elif m.get("type") == "history" and m.get("conv") == conv:
            out += [h["seq"] for h in m["messages"]]
    return out


def cut_hard(client: WsClient) -> None:
    """Reset the TCP connection (RST, not even a FIN), like a phone whose radio died."""
    sock = client.conn.socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.slow
def test_cut_off_clients_get_what_they_missed_in_order_and_the_server_frees_them(
        start_server: Any) -> None:
    server: AhoyServer = start_server()
    assert server.process is not None
    pid = server.process.pid
    clients = [WsClient(server.ws_url) for _ in range(CLIENTS)]
    names = [unique(f"Deck{i}") for i in range(CLIENTS)]
    try:
        for c, name in zip(clients, names, strict=True):
            assert c.hello(name)["type"] == "welcome"
        room = clients[0].request("room_create", "room", name="Deck", limit=50)["room"]["id"]
        conv = f"room:{room}"
        for c in clients[1:]:
            assert c.request("room_join", "room", room=room)["type"] == "room"
        # What every client saw of the room, across its connections.
        seen: list[list[dict[str, Any]]] = [[] for _ in clients]
        for i, c in enumerate(clients):
            seen[i] += c.drain(0.05)
        senders = [i for i in range(CLIENTS) if i % CUT_EVERY]  # never cut
        own: list[set[int]] = [set() for _ in clients]  # seqs a client sent (it gets the ack)
        threads_after_round: list[int] = []
        total = 0

        for rnd in range(ROUNDS):
            victims = [i for i in range(CLIENTS) if i % CUT_EVERY == 0]
            for k in range(MESSAGES_PER_ROUND):
                sender = senders[(k + rnd) % len(senders)]
                # Each client stays under the 20 frames/s limit.
                ack = clients[sender].request("send", "ack", id=f"m-r{rnd}-k{k:04}", room=room,
                                     text=f"round {rnd} message {k}")
                assert ack["type"] == "ack", ack
                own[sender].add(ack["seq"])
                total += 1
                if k == MESSAGES_PER_ROUND // 3:
                    for i in victims:
                        seen[i] += clients[i].drain(0.0)
                        # Half leave with a FIN, half with a reset; no close frame either way.
                        if i % 2:
                            clients[i].cut()
                        else:
                            cut_hard(clients[i])
                time.sleep(0.01)

            # The server notices the dead sockets and counts only live connections.
            live = CLIENTS - len(victims)
            assert wait_for(lambda live=live: server.health()["connections"] == live, 15), \
                server.health()

            for i in victims:
                old = clients[i]
                since = {conv: max(room_seqs(seen[i], conv), default=0)}
                clients[i] = WsClient(server.ws_url)
                reply = clients[i].hello(token=old.token, since=since)
                assert reply["type"] == "welcome", reply
                assert reply["you"]["id"] == old.user_id
            assert wait_for(lambda: server.health()["connections"] == CLIENTS, 10)
            for i in range(CLIENTS):
                # A sender gets the ack for its own messages, not the messages.
                want = [s for s in range(1, total + 1) if s not in own[i]]
                # Wait for as many as it should have (a loaded machine delivers late,
                # not wrong), then a short quiet catches any duplicate.
                deadline = time.monotonic() + 20
                while len(room_seqs(seen[i], conv)) < len(want) and time.monotonic() < deadline:
                    seen[i] += clients[i].drain(0.05)
                seen[i] += clients[i].drain(0.05)
                assert room_seqs(seen[i], conv) == want, f"client {i}"
            # Threads go back to what they were: nothing leaked from the cut connections.
            # Wait for the server to let go of them (slowly, on a loaded machine).
            settled = threads_after_round[0] + 2 if threads_after_round else 3 * CLIENTS + 8
            wait_for(lambda settled=settled: proc_status(pid, "Threads") <= settled, 30)
            threads_after_round.append(proc_status(pid, "Threads"))

        assert all(not own[i] for i in range(0, CLIENTS, CUT_EVERY))
        assert max(threads_after_round) <= threads_after_round[0] + 2, threads_after_round
    finally:
        for c in clients:
            c.close()
