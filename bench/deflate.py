"""What permessage-deflate would save on the air, and cost the box.

`python -m bench.deflate [phones]`: the phones of `bench.hub_arrivals` arrive
(hello, a room of 10 and one of 50), then each tenth phone says a line of chat
in its room of 50. Every frame each phone is sent is kept, and sent again
through zlib as permessage-deflate (RFC 7692) would:

- per connection with context takeover (what a browser and the `websockets`
  library ask for, and what simple-websocket would agree to): each phone's own
  compressor, its window kept from frame to frame;
- once per distinct frame without context takeover (`server_no_context_takeover`):
  a broadcast compressed once for all its recipients, as it is framed once;
- the same, only for frames of at least `appliance.ws.DEFLATE_MIN_BYTES`
  (smaller ones sent plain): what the box does (`deflated_text_frame`).

Prints, for each, the bytes the phones receive (payloads and frame headers, as
in the `connect` section) and the CPU seconds the compressing takes here (for a
Pi, multiply by about 10; see "Capacity per board" in docs/benchmarks.md).
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from typing import Any

from appliance.hub import Hub
from appliance.store import Store
from appliance.ws import DEFLATE_LEVEL, DEFLATE_MIN_BYTES, deflated_text_frame, text_frame

LEVEL = DEFLATE_LEVEL  # zlib's default, and wsproto's and websockets'


class Phone:
    """A connection that keeps what it is sent, as text."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.last: dict[str, Any] = {}

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(json.dumps(message, separators=(",", ":"), ensure_ascii=False))
        self.last = message

    def send_encoded(self, text: str) -> None:
        self.sent.append(text)

    def send_reply_encoded(self, text: str) -> None:
        self.sent.append(text)
        self.last = json.loads(text)

    def close(self, code: int, reason: str) -> None:
        pass


def arrive(phones: int) -> list[Phone]:
    now = [1_700_000_000_000]
    hub = Hub(Store(":memory:"), clock=lambda: now[0])
    hub.coalesce = True
    crowd = [Phone() for _ in range(phones)]
    done = [0]

    def request(phone: Phone, **message: Any) -> None:
        now[0] += 5
        hub.handle(phone, json.dumps(message))
        done[0] += 1
        if done[0] % 32 == 0:
            hub.flush_changes()

    for i, phone in enumerate(crowd):
        hub.connect(phone)
        request(phone, type="hello", name=f"bench{i}")
    rooms: dict[str, str] = {}
    for i in [i for i in range(phones) if i % 10 == 0] + [i for i in range(phones) if i % 10]:
        for key, limit in ((f"s{i // 10}", 10), (f"b{i // 50}", 50)):
            if key in rooms:
                request(crowd[i], type="room_join", room=rooms[key])
            else:
                request(crowd[i], type="room_create", name=key, limit=limit)
                rooms[key] = crowd[i].last["room"]["id"]
    hub.flush_changes()
    for i in range(0, phones, 10):
        request(crowd[i], type="send", id=f"m-bench-{i:06}", room=rooms[f"b{i // 50}"],
                text="Anyone on the upper deck? Bring a jacket, it is windy")
    hub.flush_changes()
    return crowd


def deflate_frame(payload: bytes, compressor: Any) -> bytes:
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    data = data[:-4]  # RFC 7692 7.2.1: without the empty block's 00 00 ff ff
    n = len(data)
    header = 2 if n < 126 else 4 if n < 65536 else 10
    return bytes(header) + data


def main(phones: int) -> None:
    crowd = arrive(phones)
    frames = sum(len(p.sent) for p in crowd)
    distinct = {text for p in crowd for text in p.sent}
    rows = []

    started = time.process_time()
    framed = {text: text_frame(text) for text in distinct}
    plain = sum(len(framed[text]) for p in crowd for text in p.sent)
    rows.append(("plain, framed once", plain, time.process_time() - started))

    started = time.process_time()
    total = 0
    for p in crowd:
        own = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
        total += sum(len(deflate_frame(text.encode(), own)) for text in p.sent)
    rows.append(("deflate per connection (context takeover)", total,
                 time.process_time() - started))

    started = time.process_time()
    once = {text: deflate_frame(text.encode(), zlib.compressobj(LEVEL, zlib.DEFLATED, -15))
            for text in distinct}
    total = sum(len(once[text]) for p in crowd for text in p.sent)
    rows.append(("deflate once, no context takeover", total, time.process_time() - started))

    started = time.process_time()
    box = {text: deflated_text_frame(text) for text in distinct}
    total = sum(len(box[text]) for p in crowd for text in p.sent)
    rows.append((f"the box: deflate once, no context takeover, frames >= {DEFLATE_MIN_BYTES} B",
                 total, time.process_time() - started))

    small = [text for p in crowd for text in p.sent if len(text.encode()) < DEFLATE_MIN_BYTES]
    print(f"frames under {DEFLATE_MIN_BYTES} B: {len(small)}, "
          f"{sum(len(framed[t]) for t in small) / 1e6:.2f} MB plain, "
          f"{sum(len(once[t]) for t in small) / 1e6:.2f} MB compressed")

    print(f"{phones} phones: {frames} frames, {len(distinct)} distinct")
    print("| how | MB to the phones | vs plain | framing and compressing, CPU s |")
    print("|---|---|---|---|")
    for label, size, cpu in rows:
        print(f"| {label} | {size / 1e6:.1f} | {size / plain:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
