"""Losing the network without a goodbye: a phone that walks out of Wi-Fi range
gets no close event, its socket just goes quiet. The app must say it is offline
within 10 s, come back as soon as the network does, and deliver what was
written meanwhile exactly once (counted by the person receiving it)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from silentproxy import SilentProxy

OFFLINE_WITHIN_S = 10  # the promise in docs/protocol.md, "Connection liveness"
SHOWS_OFFLINE = """() => document.body.dataset.conn !== 'online'
  && !!document.querySelector('[data-testid=banner-conn]')
  && document.querySelector('[data-testid=banner-conn]').textContent.startsWith('Offline')"""


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:4]}"


@pytest.fixture
def proxy(ahoy_server: Any) -> Iterator[SilentProxy]:
    with SilentProxy(ahoy_server.http_port) as p:
        yield p


def received(ben: Any, texts: list[str], timeout: float = 30) -> Counter[str]:
    """Ben's `message` frames, until each of `texts` came at least once."""
    counts: Counter[str] = Counter()
    while not all(counts[t] for t in texts):
        m = ben.expect("message", timeout=timeout)
        counts[m["text"]] += 1
    return counts


SENDING = "[data-testid=msg-status][data-state=sending]"


def sending(phone: Any) -> int:
    return int(phone.page.locator(SENDING).count())


def test_network_going_silent_shows_offline_then_queue_is_sent_once(
        ahoy_server: Any, phones: Any, ws_client: Any, proxy: SilentProxy) -> None:
    ben_name = unique("Ben")
    ben = ws_client(ben_name)
    ana = phones(proxy.url)
    ana.join(unique("Ana"))
    ana.open_dm(ben_name)
    ana.say("before the silence")
    assert received(ben, ["before the silence"]) == {"before the silence": 1}
    # Ben can have it before Ana has her ack (both follow the commit): wait for
    # the ack, or it would be held in the silence too and counted below.
    ana.wait_js(f"() => !document.querySelector({json.dumps(SENDING)})")

    proxy.pause()
    # Written into a socket that no longer reaches the box: no error, no close.
    ana.say("into the silence")
    ana.wait_js(SHOWS_OFFLINE, timeout=OFFLINE_WITHIN_S)
    ana.say("written while offline")
    assert sending(ana) == 2
    assert ana.page.evaluate("window.ahoy.state.outbox.length") == 2

    proxy.resume()
    ana.wait_online_long()
    ana.page.locator("[data-testid=msg-status][data-state=sending]").first.wait_for(state="detached")
    # The held frames of the dead socket also reach the box now: still once each.
    ana.say("after the return")
    counts = received(ben, ["into the silence", "written while offline", "after the return"])
    counts.update(m["text"] for m in ben.drain(1.0) if m.get("type") == "message")
    assert counts == {"into the silence": 1, "written while offline": 1, "after the return": 1}
    assert ana.page.evaluate("window.ahoy.state.outbox.length") == 0
    assert not ana.tid("banner-conn").count()
    assert ana.texts().count("into the silence") == 1


def test_browser_offline_shows_offline_and_reconnects_when_online(
        ahoy_server: Any, phones: Any, ws_client: Any) -> None:
    ben_name = unique("Ben")
    ben = ws_client(ben_name)
    ana = phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    ana.open_dm(ben_name)
    ana.say("hello before")
    received(ben, ["hello before"])
    ana.wait_js(f"() => !document.querySelector({json.dumps(SENDING)})")

    ana.context.set_offline(True)
    ana.wait_js(SHOWS_OFFLINE, timeout=OFFLINE_WITHIN_S)
    ana.say("queued offline 1")
    ana.say("queued offline 2")
    assert sending(ana) == 2

    ana.context.set_offline(False)
    ana.wait_online_long()
    counts = received(ben, ["queued offline 1", "queued offline 2"])
    counts.update(m["text"] for m in ben.drain(1.0) if m.get("type") == "message")
    assert counts == {"queued offline 1": 1, "queued offline 2": 1}
    ana.page.locator("[data-testid=msg-status][data-state=sending]").first.wait_for(state="detached")
    assert not ana.tid("banner-conn").count()


BYTES_IN_JS = """async () => {
  let bytes = 0;
  for (const pc of window.ahoy.calls.peerConnections()) {
    (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') bytes += s.bytesReceived || 0; });
  }
  return bytes;
}"""


def test_a_call_goes_on_through_a_silent_network_blip(
        ahoy_server: Any, phones: Any, proxy: SilentProxy) -> None:
    # 127.0.0.1 is a secure context, so plain http through the proxy may call.
    ana_name, ben_name = unique("Ana"), unique("Ben")
    ana = phones(proxy.url)
    ben = phones(ahoy_server.http_url)
    ana.join(ana_name)
    ben.join(ben_name)
    ana.open_dm(ben_name)
    ana.tid("call-audio-button").click()
    ben.tid("accept-call").click()
    for phone in (ana, ben):
        phone.page.locator("[data-testid=call-status][data-state=connected]").wait_for(timeout=20_000)
    call = ana.page.evaluate("window.ahoy.calls.current().id")
    resumed: list[str] = []
    ana.page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda f: resumed.append(f) if "call_resume" in str(f) else None))

    proxy.pause()
    ana.wait_js(SHOWS_OFFLINE, timeout=OFFLINE_WITHIN_S)
    # The call is kept while the box is out of reach (media goes phone to phone).
    assert ana.page.evaluate("window.ahoy.calls.current() && window.ahoy.calls.current().id") == call
    proxy.resume()
    ana.wait_online_long()
    deadline = 10.0
    while not resumed and deadline > 0:
        ana.page.wait_for_timeout(100)
        deadline -= 0.1
    assert resumed, "the box did not send call_resume after the reconnect"
    for phone in (ana, ben):
        assert phone.page.evaluate("window.ahoy.calls.current() && window.ahoy.calls.current().id") == call
        before = phone.page.evaluate(BYTES_IN_JS)
        phone.wait_js(f"({BYTES_IN_JS})().then((b) => b > {before})")
    ana.tid("hangup-button").click()
    ben.tid("call-screen").wait_for(state="hidden", timeout=30_000)
