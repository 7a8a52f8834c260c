"""A phone that vanishes without a goodbye (out of Wi-Fi range: no close, no
reset, its packets just stop) is closed by the box's pings, shown offline to
the others within the time docs/protocol.md states, and a call with it ends
after the grace period ("Connection liveness")."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from ahoytest import AhoyServer, WsClient, unique
from silentproxy import SilentProxy

OFFLINE_WITHIN_S = 30  # two ping intervals and the time to notice
GRACE_S = 20  # a call's grace for a party that is gone


@pytest.fixture
def box(tmp_path: Path) -> Iterator[AhoyServer]:
    # The box's own server (gevent), as on the Pi.
    server = AhoyServer(tmp_path / "data", production=True).start()
    yield server
    server.stop()


@pytest.mark.slow
def test_a_silent_phone_is_shown_offline_and_its_call_ends(box: AhoyServer) -> None:
    with SilentProxy(box.http_port) as proxy:
        ana = WsClient(box.ws_url)
        ben = WsClient(f"ws://127.0.0.1:{proxy.port}/ws")
        try:
            ana.hello(unique("Ana"))
            ben.hello(unique("Ben"))
            ana.send("call_invite", to=ben.user_id, media="audio")
            call = ben.expect("call_incoming")["call"]
            ben.send("call_accept", call=call)
            ana.expect("call_accepted", call=call)
            ana.drain()

            proxy.pause()  # Ben walks out of range
            assert ben.user_id is not None
            ana.expect_user(ben.user_id, timeout=OFFLINE_WITHIN_S, status="offline")
            ended = ana.expect("call_ended", timeout=GRACE_S + 10, call=call)
            assert ended["reason"] == "disconnected"
        finally:
            ana.close()
            proxy.resume()
            with contextlib.suppress(OSError):  # its own keepalive may have closed it by now
                ben.cut()
