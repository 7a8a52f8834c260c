"""Profiles seen by others, a file sent outside a call (also through crossed ICE restarts),
screen sharing only where possible."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

from ahoytest import unique
from PIL import Image


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (900, 600), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def test_profile_colour_status_and_picture_reach_others(ahoy_server: Any, phones: Any, tmp_path: Path) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    ana_name = unique("Ana")
    ana.join(ana_name)
    ben.join(unique("Ben"))
    ana.tid("settings-button").click()
    ana.tid("profile-picture").set_input_files(files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture"}])
    # The box's own reason (400 {error}) is shown.
    error = ana.wait_js("() => { const t = document.querySelector('[data-testid=profile-error]').textContent;"
                        " return t && !t.startsWith('Uploading') && t; }")
    assert "picture" in error
    # The browser logs the refused upload; that one is expected.
    ana.errors[:] = [e for e in ana.errors if "status of 400" not in e]
    ana.tid("profile-picture").set_input_files(files=[{"name": "me.png", "mimeType": "image/png", "buffer": png_bytes()}])
    ana.tid("settings-dialog").get_by_test_id("avatar-img").wait_for()
    ana.tid("profile-colour").nth(3).click()
    colour = ana.tid("profile-colour").nth(3).get_attribute("data-colour")
    ana.tid("profile-status").fill("On watch till 4")
    ana.tid("profile-save").click()
    ana.tid("settings-dialog").wait_for(state="hidden")

    ben.open_tab("people")
    row = ben.tid("user-item").filter(has_text=ana_name)
    row.get_by_test_id("user-status-line").filter(has_text="On watch till 4").wait_for()
    img = row.get_by_test_id("avatar-img")
    img.wait_for()
    assert img.evaluate("i => i.complete && i.naturalWidth") == 256
    bg = row.locator(".avatar").evaluate("a => a.style.background")
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[index]
    assert bg == f"rgb({r}, {g}, {b})"


def test_a_file_sent_outside_a_call_arrives_with_the_same_bytes(ahoy_server: Any, phones: Any, tmp_path: Path) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    ana.join(unique("Ana"))
    ben_name = unique("Ben")
    ben.join(ben_name)
    payload = os.urandom(300_000)
    ana.open_tab("people")
    with ana.page.expect_file_chooser() as chooser:
        ana.tid("user-item").filter(has_text=ben_name).locator("xpath=..").get_by_test_id("user-send-file").click()
    chooser.value.set_files(files=[{"name": "chart.bin", "mimeType": "application/octet-stream", "buffer": payload}])
    ben.tid("transfer-offer").filter(has_text="chart.bin").wait_for()
    ben.tid("transfer-accept").click()
    save = ben.tid("transfers").get_by_test_id("file-save")
    save.wait_for(timeout=20_000)
    with ben.page.expect_download() as download:
        save.click()
    assert Path(download.value.path()).read_bytes() == payload
    assert download.value.suggested_filename == "chart.bin"
    ana.page.locator("[data-testid=transfers] [data-testid=file-transfer][data-done=true]").wait_for()


# The transfer's connection as the page sees it: the other side's ICE username
# fragment (new after an ICE restart), the signaling and the connection state.
TRANSFER_PC_JS = """
() => window.ahoy.load('transfer').then((m) => {
  const pc = m.peerConnections()[0];
  if (!pc || !pc.remoteDescription) return null;
  const ufrag = /a=ice-ufrag:(\\S+)/.exec(pc.remoteDescription.sdp);
  return {ufrag: ufrag && ufrag[1], signaling: pc.signalingState, state: pc.connectionState};
})
"""

# Slow the sender's reading of the file (50 ms a 16 KiB chunk) so the transfer
# is still under way when the connection is renegotiated.
SLOW_READS_JS = """
() => {
  const read = Blob.prototype.arrayBuffer;
  Blob.prototype.arrayBuffer = function () {
    return new Promise((resolve) => setTimeout(resolve, 50)).then(() => read.call(this));
  };
}
"""


def offers_sent(phone: Any) -> list[int]:
    """Count the session offers this phone's app sends through the box (a one-item list)."""
    count = [0]

    def on_frame(payload: Any) -> None:
        try:
            msg = json.loads(payload)
        except (TypeError, ValueError):
            return
        if msg.get("type") == "signal" and (msg.get("data") or {}).get("description", {}).get("type") == "offer":
            count[0] += 1

    phone.page.on("websocket", lambda ws: ws.on("framesent", on_frame))
    return count


def test_a_file_outside_a_call_survives_both_sides_restarting_ice_at_once(ahoy_server: Any, phones: Any) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    ana_offers, ben_offers = offers_sent(ana), offers_sent(ben)
    ana.join(unique("Ana"))
    ben_name = unique("Ben")
    ben.join(ben_name)
    ana.page.evaluate(SLOW_READS_JS)
    payload = os.urandom(1_000_000)
    ana.open_tab("people")
    with ana.page.expect_file_chooser() as chooser:
        ana.tid("user-item").filter(has_text=ben_name).locator("xpath=..").get_by_test_id("user-send-file").click()
    chooser.value.set_files(files=[{"name": "log.bin", "mimeType": "application/octet-stream", "buffer": payload}])
    ben.tid("transfer-offer").filter(has_text="log.bin").wait_for()
    ben.tid("transfer-accept").click()
    ben.wait_js("document.querySelector('[data-testid=transfers] [data-testid=file-progress]')?.value > 0")
    before = {}
    for phone in (ana, ben):
        before[phone] = phone.wait_js(TRANSFER_PC_JS)
        assert before[phone]["state"] == "connected", before[phone]
    assert ana_offers[0] == 1 and ben_offers[0] == 0  # the sender offered; the receiver answered

    # Both restart ICE in the same millisecond (the pages share one clock), as
    # both would when the Wi-Fi drops: their offers cross in the box.
    at = ana.page.evaluate("Date.now()") + 400
    for phone in (ana, ben):
        phone.page.evaluate(
            "at => window.ahoy.load('transfer').then((m) => {"
            " const pc = m.peerConnections()[0]; setTimeout(() => pc.restartIce(), at - Date.now()); })", at)
    for phone in (ana, ben):
        deadline = time.monotonic() + 15
        while True:
            now = phone.page.evaluate(TRANSFER_PC_JS)
            if now and now["ufrag"] != before[phone]["ufrag"] and now["signaling"] == "stable" and now["state"] == "connected":
                break
            assert time.monotonic() < deadline, ("no ICE restart", before[phone], now)
            phone.page.wait_for_timeout(100)
    assert ana_offers[0] >= 2 and ben_offers[0] >= 1, (ana_offers, ben_offers)

    save = ben.tid("transfers").get_by_test_id("file-save")
    save.wait_for(timeout=30_000)
    with ben.page.expect_download() as download:
        save.click()
    assert Path(download.value.path()).read_bytes() == payload
    ana.page.locator("[data-testid=transfers] [data-testid=file-transfer][data-done=true]").wait_for()


def test_screen_sharing_is_offered_only_where_the_browser_can(ahoy_server: Any, phones: Any) -> None:
    ana, ben = phones(ahoy_server.http_url), phones(ahoy_server.http_url)
    # Ana's browser is like a phone's: no getDisplayMedia.
    ana.page.add_init_script("delete MediaDevices.prototype.getDisplayMedia")
    ana.page.reload()
    ana.join(unique("Ana"))
    ben_name = unique("Ben")
    ben.join(ben_name)
    ana.open_dm(ben_name)
    ana.tid("call-video-button").click()
    ben.tid("accept-call").click()
    ana.tid("call-screen").wait_for(state="visible")
    ben.tid("call-screen").wait_for(state="visible")
    assert ana.tid("screen-share-button").is_hidden()
    assert "desktop browser" in ana.tid("screen-share-note").inner_text()
    assert ben.tid("screen-share-button").is_visible()
    assert ben.tid("screen-share-note").is_hidden()
    ben.tid("hangup-button").click()
