"""Connect by address (no box) across engines: a Firefox phone invites, a
Chromium phone answers, they chat after the box is gone. WebKit without
WebRTC says direct connection is unavailable instead of failing on a tap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from enginekit import EnginePhone, tid

pytestmark = pytest.mark.browser


def test_firefox_and_chromium_chat_directly_with_the_box_gone(
        start_server: Any, people: Callable[[str, str], EnginePhone]) -> None:
    server = start_server()
    fox = people("firefox", server.http_url + "/#direct")
    chro = people("chromium", server.http_url + "/#direct")
    for phone in (fox, chro):
        phone.wait_visible(tid("direct-screen"))
        # Every module the direct chat needs, loaded while the page is still served.
        phone.evaluate("Promise.all(['direct', 'qr'].map((n) => window.ahoy.load(n))).then(() => true)")
    server.kill()

    fox.click(tid("direct-start"))
    fox.wait_js("!!document.querySelector('[data-testid=direct-offer]')"
                " && document.querySelector('[data-testid=direct-offer]').value.length > 0", 20)
    offer = str(fox.evaluate("document.querySelector('[data-testid=direct-offer]').value"))
    chro.click(tid("direct-join"))
    chro.fill(tid("direct-offer-input"), offer)
    chro.click(tid("direct-make-answer"))
    chro.wait_js("!!document.querySelector('[data-testid=direct-answer]')"
                 " && document.querySelector('[data-testid=direct-answer]').value.length > 0", 20)
    answer = str(chro.evaluate("document.querySelector('[data-testid=direct-answer]').value"))
    fox.fill(tid("direct-answer-input"), answer)
    fox.click(tid("direct-connect"))

    for phone in (fox, chro):
        phone.wait_visible(tid("direct-input"), 20)
    fox.fill(tid("direct-input"), "from firefox")
    fox.click(tid("direct-send"))
    chro.wait_js("document.querySelector('[data-testid=direct-messages]').textContent.includes('from firefox')")
    chro.fill(tid("direct-input"), "from chromium")
    chro.click(tid("direct-send"))
    fox.wait_js("document.querySelector('[data-testid=direct-messages]').textContent.includes('from chromium')")


def test_webkit_without_webrtc_says_direct_connection_is_unavailable(
        box: Any, people: Callable[[str, str], EnginePhone]) -> None:
    wk = people("webkit", box.http_url + "/#direct")
    wk.wait_visible(tid("direct-screen"))
    if wk.evaluate("typeof RTCPeerConnection") != "undefined":
        pytest.skip("this WebKitGTK has WebRTC")
    wk.wait_visible(tid("direct-unavailable"))
    assert "cannot connect directly" in wk.text_of(tid("direct-unavailable"))
    assert not wk.evaluate("!!document.querySelector('[data-testid=direct-start]')")
