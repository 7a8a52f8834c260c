"""A real WebRTC call between two aiortc peers, signaled through Ahoy."""

from __future__ import annotations

import asyncio

from ahoytest import AhoyServer
from webrtcphone import call_through_the_box


def test_two_aiortc_peers_call_through_ahoy_signaling(ahoy_server: AhoyServer) -> None:
    results = asyncio.run(asyncio.wait_for(call_through_the_box(ahoy_server.ws_url), 90))
    assert results["ice"] == "completed"
    assert results["ben_got"] == "hello Ben" and results["ana_got"] == "hello Ana"
    assert results["audio_frames"] == 10
    assert results["ended"] == ("hangup", True)
