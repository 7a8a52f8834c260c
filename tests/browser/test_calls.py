"""A real audio/video call between two browsers through the box, over HTTPS."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from browserkit import launch, wait_js

STATS_JS = """
async () => {
  const pcs = window.ahoy.calls.peerConnections();
  let bytes = 0, inbound = 0;
  for (const pc of pcs) {
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp') { bytes += s.bytesReceived || 0; inbound += 1; }
    });
  }
  return {bytes, inbound, states: pcs.map((pc) => pc.connectionState)};
}
"""


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:4]}"


def media_flowing(phone: Any) -> None:
    phone.wait_js(
        "window.ahoy.calls.peerConnections().some(pc => pc.connectionState === 'connected')",
        timeout=20)
    first = phone.page.evaluate(STATS_JS)
    # Bytes keep arriving: wait for more (a loaded machine may take a while).
    deadline = time.monotonic() + 20
    while True:
        second = phone.page.evaluate(STATS_JS)
        if second["bytes"] > first["bytes"] > 0 or time.monotonic() > deadline:
            break
        phone.page.wait_for_timeout(200)
    assert "connected" in second["states"]
    assert second["inbound"] >= 2, second  # audio and video
    assert second["bytes"] > first["bytes"] > 0, (first, second)


def test_video_call_over_https_connects_with_media_flowing_then_hangs_up(ahoy_server: Any, phones: Any) -> None:
    ana_name, ben_name = unique("Ana"), unique("Ben")
    ana = phones(ahoy_server.https_url)
    ben = phones(ahoy_server.https_url)
    ana.join(ana_name)
    ben.join(ben_name)
    ana.open_dm(ben_name)
    ana.tid("call-video-button").click()
    ana.tid("call-screen").wait_for(state="visible")

    ben.tid("incoming-call").wait_for(state="visible")
    assert ana_name in ben.tid("incoming-call").inner_text()
    # Both show as busy to others while ringing.
    ana.page.locator('[data-testid=call-status][data-state=ringing]').wait_for()
    ben.tid("accept-call").click()
    ben.tid("call-screen").wait_for(state="visible")

    media_flowing(ana)
    media_flowing(ben)
    for phone in (ana, ben):
        phone.page.locator('[data-testid=call-status][data-state=connected]').wait_for()
        phone.wait_js("document.querySelector('[data-testid=call-timer]').textContent.startsWith('00:0')")

    # An ICE restart (what the app does when a connection fails) from the side
    # that answered renegotiates without dropping the call.
    ben.page.evaluate("window.ahoy.calls.peerConnections()[0].restartIce()")
    ana.wait_js("window.ahoy.calls.peerConnections()[0].signalingState === 'stable'")
    media_flowing(ben)

    # Ana's connection to the box drops: she reconnects, the box resumes the
    # call (call_resume) and the media between the phones keeps flowing.
    resumed = []
    ana.page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda f: resumed.append(f) if "call_resume" in str(f) else None))
    ana.page.evaluate("window.ahoy.net.drop()")
    ana.wait_online_long()
    ana.wait_js("window.ahoy.calls.current() !== null")
    deadline = time.monotonic() + 20
    while not resumed and time.monotonic() < deadline:
        ana.page.wait_for_timeout(100)  # lets Playwright deliver the frame events
    assert resumed, "the box did not send call_resume after the reconnect"
    media_flowing(ana)

    # Mute and camera off are local and reversible.
    ana.tid("mute-button").click()
    assert ana.tid("mute-button").get_attribute("aria-pressed") == "true"
    assert ana.page.evaluate("window.ahoy.calls.peerConnections()[0].getSenders().find(s => s.track && s.track.kind === 'audio').track.enabled") is False
    ana.tid("mute-button").click()
    ana.tid("camera-button").click()
    # Turning the camera off replaces the senders' tracks asynchronously.
    ana.page.locator("[data-testid=camera-button][aria-pressed=true]").wait_for()
    ana.tid("local-video").wait_for(state="hidden")
    ana.tid("camera-button").click()
    ana.tid("local-video").wait_for(state="visible")
    assert ana.page.evaluate(
        "window.ahoy.calls.peerConnections()[0].getSenders().some(s => s.track && s.track.kind === 'video' && s.track.readyState === 'live')")

    # A file goes straight to Ben over the data channel, with a progress bar.
    payload = bytes(range(256)) * 400  # 100 KiB, several chunks
    ana.tid("share-input").set_input_files(
        files=[{"name": "notes.bin", "mimeType": "application/octet-stream", "buffer": payload}])
    ben.page.locator("[data-testid=file-transfer][data-done=true]").wait_for(timeout=30_000)
    assert ben.page.locator("[data-testid=file-progress]").first.get_attribute("max") == str(len(payload))
    with ben.page.expect_download() as download:
        ben.tid("file-save").click()
    assert download.value.suggested_filename == "notes.bin"
    assert Path(download.value.path()).read_bytes() == payload

    ana.tid("hangup-button").click()
    ana.tid("call-screen").wait_for(state="hidden")
    ben.tid("call-screen").wait_for(state="hidden", timeout=30_000)
    assert ben.page.evaluate("window.ahoy.calls.peerConnections().length") == 0


def test_rejected_call_tells_the_caller(ahoy_server: Any, phones: Any) -> None:
    ana_name, ben_name = unique("Ana"), unique("Ben")
    ana = phones(ahoy_server.https_url)
    ben = phones(ahoy_server.https_url)
    ana.join(ana_name)
    ben.join(ben_name)
    ana.open_dm(ben_name)
    ana.tid("call-audio-button").click()
    ben.tid("incoming-call").wait_for(state="visible")
    ben.tid("reject-call").click()
    ana.tid("call-screen").wait_for(state="hidden", timeout=30_000)
    ana.tid("toast").get_by_text("declined").wait_for()


def test_plain_http_page_explains_that_calls_need_https(ahoy_server: Any, playwright: Any) -> None:
    # 127.0.0.1 counts as a secure origin, so reach the box under another name,
    # as a phone on http://10.42.0.1 would.
    port = ahoy_server.http_url.rsplit(":", 1)[1]
    browser = launch(playwright, ["--host-resolver-rules=MAP ahoy.internal 127.0.0.1"])
    try:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(f"http://ahoy.internal:{port}/")
        assert page.evaluate("window.isSecureContext") is False
        assert page.evaluate("navigator.mediaDevices === undefined") is True
        wait_js(page, "document.body.dataset.ready === 'true'")
        assert page.evaluate("document.body.dataset.calls") == "unavailable"
        page.get_by_test_id("name-input").fill(unique("Dan"))
        page.get_by_test_id("join-button").click()
        banner = page.get_by_test_id("banner-calls")
        banner.wait_for()
        assert "secure" in banner.inner_text()
        page.get_by_test_id("calls-help").click()
        dialog = page.get_by_test_id("https-dialog")
        dialog.wait_for()
        link = page.get_by_test_id("https-link").get_attribute("href")
        # The box answers with its https address under the name the phone used.
        https_port = ahoy_server.https_url.rsplit(":", 1)[1]
        assert link == f"https://ahoy.internal:{https_port}/"
        assert page.get_by_test_id("ca-link").get_attribute("href") == "/ca.crt"
    finally:
        browser.close()


def test_room_call_mesh_of_three(ahoy_server: Any, phones: Any) -> None:
    names = [unique(n) for n in ("Ana", "Ben", "Cleo")]
    crew = [phones(ahoy_server.https_url) for _ in names]
    for phone, name in zip(crew, names, strict=True):
        phone.join(name)
    room_name = unique("Bridge")
    crew[0].create_room(room_name)
    for phone in crew[1:]:
        phone.open_room(room_name)
    crew[0].wait_js("[...window.ahoy.state.rooms.values()].some(r => r.members.length === 3)")

    crew[0].tid("call-video-button").click()
    crew[0].page.locator("[data-testid=call-status][data-state=waiting]").wait_for()
    for phone in crew[1:]:
        phone.tid("incoming-call").wait_for(state="visible")
        phone.tid("accept-call").click()
        phone.tid("call-screen").wait_for(state="visible")
    for phone in crew:
        phone.wait_js(
            "window.ahoy.calls.peerConnections().filter(pc => pc.connectionState === 'connected').length === 2",
            timeout=20)
    media_flowing(crew[0])
    assert crew[0].page.locator("[data-testid=call-tile]").count() == 2
    # "In the call:" names everyone on every screen, the last to join included.
    for phone, me in zip(crew, names, strict=True):
        others = [n for n in names if n != me]
        phone.wait_js("names => { const line = document.querySelector('#call-people');"
                      " return !line.hidden && names.every(n => line.textContent.includes(n)); }",
                      others)

    crew[2].tid("hangup-button").click()
    for phone in crew[:2]:
        phone.wait_js("window.ahoy.calls.peerConnections().length === 1")
    for phone in crew[:2]:
        phone.tid("hangup-button").click()
        phone.tid("call-screen").wait_for(state="hidden")


def test_blocked_camera_and_missing_webrtc_are_explained(ahoy_server: Any, phones: Any) -> None:
    ana, ben = phones(ahoy_server.https_url), phones(ahoy_server.https_url)
    ben_name = unique("Ben")
    ben.join(ben_name)
    # The person said "Block" to the camera prompt.
    ana.page.add_init_script("""
      navigator.mediaDevices.getUserMedia = () =>
        Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
    """)
    ana.page.reload()
    ana.join(unique("Ana"))
    ana.open_dm(ben_name)
    ana.tid("call-audio-button").click()
    ana.tid("call-error").wait_for()
    assert "blocked" in ana.tid("call-error").inner_text()
    ana.tid("call-screen").wait_for(state="hidden")
    assert ben.tid("incoming-call").is_hidden()

    # A browser without WebRTC says so instead of offering calls that cannot work.
    old = phones(ahoy_server.https_url)
    old.page.add_init_script("delete window.RTCPeerConnection;")
    old.page.reload()
    old.join(unique("Old"))
    assert "cannot make calls" in old.tid("banner-calls").inner_text()
