"""The terminal client on a Wi-Fi link that goes silent (no close, no reset):
it says offline within 10 seconds, comes back when the link does, and what was
written meanwhile reaches the other side exactly once (docs/cli.md, Connection)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ahoytest import AhoyServer, unique
from clitestkit import Recorder, new_client, run, running
from silentproxy import SilentProxy

OFFLINE_WITHIN_S = 10


def test_silent_link_shows_offline_then_the_outbox_is_sent_once(
        ahoy_server: AhoyServer, ws_client: Any, tmp_path: Path) -> None:
    ben_name = unique("Ben")
    ben = ws_client(ben_name)

    async def scenario() -> None:
        with SilentProxy(ahoy_server.http_port) as proxy:
            ana = new_client(proxy.url, tmp_path / "ana.json", unique("Ana"))
            seen = Recorder(ana)
            async with running(ana):
                ana.send_text("before", to=ben.user_id)
                proxy.pause()
                ana.send_text("into the silence", to=ben.user_id)
                await seen.wait(lambda: ana.connection != "online", timeout=OFFLINE_WITHIN_S,
                                what="offline")
                ana.send_text("while offline", to=ben.user_id)
                proxy.resume()
                await ana.wait_online(30)
                await seen.wait(lambda: not ana.state.outbox, timeout=15, what="the outbox sent")

    run(scenario(), timeout=90)
    counts: Counter[str] = Counter()
    while sum(counts.values()) < 3:
        counts[ben.expect("message", timeout=10)["text"]] += 1
    counts.update(m["text"] for m in ben.drain(1.0) if m.get("type") == "message")
    assert counts == {"before": 1, "into the silence": 1, "while offline": 1}
