"""Connect by address: two browsers chat over a data channel with the box gone;
the app's own QR encoder draws the same symbols as the box's (segno)."""

from __future__ import annotations

from typing import Any

import pytest
from ahoytest import unique

segno = pytest.importorskip("segno")


def test_two_browsers_chat_directly_after_the_box_is_gone(start_server: Any, phones: Any) -> None:
    server = start_server()
    ana = phones(server.http_url + "/#direct")
    ben = phones(server.http_url + "/#direct")
    for phone in (ana, ben):
        phone.tid("direct-screen").wait_for(state="visible")
        # Load every module the direct chat needs while the page is still served.
        phone.page.evaluate("Promise.all(['direct', 'qr'].map(n => window.ahoy.load(n)))")
    server.kill()

    ana.tid("direct-start").click()
    offer = ana.tid("direct-offer")
    offer.wait_for()
    offer_text = offer.input_value()
    assert offer_text.startswith("Z")  # deflated with CompressionStream
    assert ana.tid("direct-screen").get_by_test_id("qr").count() == 1

    ben.tid("direct-join").click()
    ben.tid("direct-offer-input").fill(offer_text)
    ben.tid("direct-make-answer").click()
    answer = ben.tid("direct-answer")
    answer.wait_for()
    ana.tid("direct-answer-input").fill(answer.input_value())
    ana.tid("direct-connect").click()

    ana.tid("direct-input").wait_for(timeout=15_000)
    ben.tid("direct-input").wait_for(timeout=15_000)
    hello = unique("ahoy <b>there</b>")
    ana.tid("direct-input").fill(hello)
    ana.tid("direct-send").click()
    ben.tid("direct-messages").get_by_text(hello, exact=True).wait_for()
    ben.tid("direct-input").fill("loud and clear")
    ben.tid("direct-input").press("Enter")
    ana.tid("direct-messages").get_by_text("loud and clear", exact=True).wait_for()
    assert ben.tid("direct-messages").locator("b").count() == 0


@pytest.mark.parametrize("text", [
    "https://127.0.0.1:8443/#join=r_abc:Zk3xyz",
    "WIFI:T:WPA;S:Ahoy;P:secret123;;",
    "Z" + "eJzLSM3JyVcozy/KSQEAGgQEXQ==" * 12,
    "wörter ☃ " * 40,
])
def test_app_qr_encoder_matches_the_box(ahoy_server: Any, phones: Any, text: str) -> None:
    phone = phones(ahoy_server.http_url)
    mine = phone.page.evaluate("t => import('/qr.js').then(m => m.qrMatrix(t, 'M'))", text)
    # The box draws /api/qr.svg with segno at level M (raised when it fits); for
    # texts too long for a Micro QR symbol these are the same settings.
    box = segno.make(text, error="m", mode="byte", micro=False)
    assert mine == [list(row) for row in box.matrix]
    low = phone.page.evaluate("t => import('/qr.js').then(m => m.qrMatrix(t, 'L'))", text)
    assert low == [list(row) for row in segno.make(text, error="l", mode="byte", micro=False).matrix]
