"""A crowd arriving, the hub alone: no network, no server process.

`python -m bench.hub_arrivals [phones] [requests per changes frame]`: the
phones say hello, then make and join a room of 10 and one of 50 as the
`connect` section's clients do; a `changes` frame goes out every so many
requests. Prints the process's CPU seconds for each phase and what the phones
were sent (bytes and frames). What the machine's load changes least: compare
two versions of the hub in the same minute.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from appliance.hub import Hub
from appliance.store import Store


class Phone:
    """A connection that counts what it is sent."""

    def __init__(self) -> None:
        self.bytes = 0
        self.frames = 0
        self.last: dict[str, Any] = {}

    def send(self, message: dict[str, Any]) -> None:
        self.bytes += len(json.dumps(message, separators=(",", ":"), ensure_ascii=False))
        self.frames += 1
        self.last = message

    def send_encoded(self, text: str) -> None:
        self.bytes += len(text)
        self.frames += 1

    def send_reply_encoded(self, text: str) -> None:
        self.send_encoded(text)
        self.last = json.loads(text)

    def close(self, code: int, reason: str) -> None:
        pass


def run(phones: int, every: int) -> str:
    now = [1_700_000_000_000]
    hub = Hub(Store(":memory:"), clock=lambda: now[0])
    hub.coalesce = True
    crowd = [Phone() for _ in range(phones)]
    done = [0]

    def request(phone: Phone, **message: Any) -> None:
        now[0] += 5
        hub.handle(phone, json.dumps(message))
        done[0] += 1
        if done[0] % every == 0:
            hub.flush_changes()

    started = time.process_time()
    for i, phone in enumerate(crowd):
        hub.connect(phone)
        request(phone, type="hello", name=f"bench{i}")
    hellos = time.process_time()
    rooms: dict[str, str] = {}
    for i in [i for i in range(phones) if i % 10 == 0] + [i for i in range(phones) if i % 10]:
        for key, limit in ((f"s{i // 10}", 10), (f"b{i // 50}", 50)):
            if key in rooms:
                request(crowd[i], type="room_join", room=rooms[key])
            else:
                request(crowd[i], type="room_create", name=key, limit=limit)
                rooms[key] = crowd[i].last["room"]["id"]
    hub.flush_changes()
    ended = time.process_time()
    return (f"{phones} phones: hello {hellos - started:.2f} s, rooms {ended - hellos:.2f} s, "
            f"CPU {ended - started:.2f} s; sent {sum(p.bytes for p in crowd) / 1e6:.1f} MB "
            f"in {sum(p.frames for p in crowd)} frames")


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
              int(sys.argv[2]) if len(sys.argv) > 2 else 32))
