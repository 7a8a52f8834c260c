"""Calls across engines: Chromium to Firefox and back, over the box's HTTPS,
with audio and video decoded on both sides, a file each way over the call's
data channel, then hang-up; a room call's mesh with Firefox between two
Chromium phones. WebKit (Debian's build has no WebRTC) says calls are
unavailable instead of breaking."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from enginekit import ChromiumPhone, EnginePhone, tid

pytestmark = pytest.mark.browser

# What this phone receives and decodes, per kind, summed over its connections.
RECEIVED_JS = """(async () => {
  const out = {audio: {packets: 0, samples: 0}, video: {packets: 0, frames: 0}, states: []};
  for (const pc of window.ahoy.calls.peerConnections()) {
    out.states.push(pc.connectionState);
    (await pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const kind = s.kind || s.mediaType;
      if (kind === 'audio') {
        out.audio.packets += s.packetsReceived || 0;
        out.audio.samples += s.totalSamplesReceived || 0;
      } else if (kind === 'video') {
        out.video.packets += s.packetsReceived || 0;
        out.video.frames += s.framesDecoded || 0;
      }
    });
  }
  return out;
})()"""


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:4]}"


def decoding_both_kinds(phone: EnginePhone, timeout: float = 30) -> None:
    """Audio and video arrive and keep being decoded (two readings, growing)."""
    phone.wait_js("window.ahoy.calls.peerConnections().some((pc) => pc.connectionState === 'connected')",
                  timeout)
    deadline = time.monotonic() + timeout
    now = phone.evaluate(RECEIVED_JS)
    while True:
        time.sleep(0.5)
        first, now = now, phone.evaluate(RECEIVED_JS)
        grew = (now["video"]["frames"] > first["video"]["frames"] > 0
                and now["audio"]["packets"] > first["audio"]["packets"] > 0)
        if grew:
            break
        assert time.monotonic() < deadline, f"{phone.engine}: media not decoded: {first} -> {now}"
    # Chromium counts decoded audio samples; Firefox's stats may not have them.
    if phone.engine == "chromium":
        assert now["audio"]["samples"] > 0, now


def call_and_hang_up(caller: EnginePhone, callee: EnginePhone, callee_name: str,
                     caller_name: str, during: Callable[[], None] | None = None) -> None:
    caller.open_dm(callee_name)
    caller.click(tid("call-video-button"))
    caller.wait_visible(tid("call-screen"))
    callee.wait_visible(tid("incoming-call"))
    assert caller_name in callee.text_of(tid("incoming-call"))
    callee.click(tid("accept-call"))
    callee.wait_visible(tid("call-screen"))
    decoding_both_kinds(caller)
    decoding_both_kinds(callee)
    for phone in (caller, callee):
        phone.wait_visible('[data-testid=call-status][data-state=connected]')
    if during:
        during()

    callee.click(tid("hangup-button"))
    callee.wait_hidden(tid("call-screen"))
    caller.wait_hidden(tid("call-screen"))
    for phone in (caller, callee):
        phone.wait_js("window.ahoy.calls.peerConnections().length === 0")
        phone.wait_js("window.ahoy.calls.current() === null")
    caller.back()


def test_video_calls_chromium_to_firefox_and_back_with_files(
        box: Any, tmp_path: Path, people: Callable[[str, str], EnginePhone]) -> None:
    chro_name, fox_name = unique("Chro"), unique("Fox")
    chro = people("chromium", box.https_url)
    fox = people("firefox", box.https_url)
    chro.join(chro_name)
    fox.join(fox_name)
    assert fox.evaluate("typeof RTCPeerConnection") == "function"

    def files_both_ways() -> None:
        # Over the call's data channel, between the two engines' SCTP stacks.
        to_chro = tmp_path / "from-firefox.bin"
        to_chro.write_bytes(bytes(range(256)) * 400)  # 100 KiB, several chunks
        to_fox = tmp_path / "from-chromium.bin"
        to_fox.write_bytes(bytes(reversed(range(256))) * 300)
        fox.upload(tid("share-input"), to_chro)
        chro.wait_visible("#call-files [data-testid=file-transfer][data-done=true] [data-testid=file-save]")
        assert isinstance(chro, ChromiumPhone)
        with chro.page.expect_download() as download:
            chro.click(tid("file-save"))
        assert download.value.suggested_filename == "from-firefox.bin"
        assert Path(download.value.path()).read_bytes() == to_chro.read_bytes()

        chro.upload(tid("share-input"), to_fox)
        fox.wait_visible("#call-files [data-testid=file-transfer][data-done=true] [data-testid=file-save]")
        received = fox.evaluate(
            "[...document.querySelectorAll('#call-files [data-testid=file-transfer][data-done=true]')]"
            ".filter((r) => r.querySelector('[data-testid=file-save]'))"
            ".map((r) => [r.querySelector('a').download, r.querySelector('progress').max])")
        assert received == [["from-chromium.bin", to_fox.stat().st_size]]

    call_and_hang_up(chro, fox, fox_name, chro_name, during=files_both_ways)
    call_and_hang_up(fox, chro, chro_name, fox_name)


def test_webkit_without_webrtc_says_calls_are_unavailable(
        box: Any, people: Callable[[str, str], EnginePhone]) -> None:
    wk_name, chro_name = unique("Safa"), unique("Chro")
    wk = people("webkit", box.https_url)
    chro = people("chromium", box.https_url)
    wk.join(wk_name)
    chro.join(chro_name)
    if wk.evaluate("typeof RTCPeerConnection") != "undefined":
        pytest.skip("this WebKitGTK has WebRTC: the Firefox/Chromium call test applies")
    assert wk.evaluate("document.body.dataset.calls") == "unavailable"
    assert "cannot make calls" in wk.text_of(tid("banner-calls"))

    # Tapping call explains instead of failing.
    wk.open_dm(chro_name)
    wk.click(tid("call-video-button"))
    wk.wait_visible(tid("call-error"))
    assert "cannot make calls" in wk.text_of(tid("call-error"))
    assert wk.evaluate("window.ahoy.calls.current()") is None
    wk.click(tid("dialog-close"))
    wk.wait_hidden(tid("call-error"))

    # A call to it rings; answering says why not and the caller is told why,
    # not that the call was declined.
    chro.open_dm(wk_name)
    chro.click(tid("call-audio-button"))
    chro.wait_visible(tid("call-screen"))
    wk.wait_visible(tid("incoming-call"))
    wk.click(tid("accept-call"))
    chro.wait_hidden(tid("call-screen"))
    chro.wait_js("[...document.querySelectorAll('[data-testid=toast]')].some("
                 "(e) => e.textContent.includes('cannot take calls in the browser'))")
    assert chro.evaluate("window.ahoy.calls.current()") is None
    # Chat still works after all that.
    wk.wait_visible(tid("composer"))
    chro.say("text instead")
    wk.wait_text("text instead")


# Per connection: [video frames decoded, audio packets received].
PER_PEER_JS = """(async () => {
  const out = [];
  for (const pc of window.ahoy.calls.peerConnections()) {
    let frames = 0, packets = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      if ((s.kind || s.mediaType) === 'video') frames += s.framesDecoded || 0;
      else packets += s.packetsReceived || 0;
    });
    out.push([frames, packets]);
  }
  return out;
})()"""


def decoding_from_everyone(phone: EnginePhone, peers: int, timeout: float = 30) -> None:
    """Every connection of this phone decodes video and receives audio, still growing."""
    phone.wait_js("window.ahoy.calls.peerConnections().filter("
                  f"(pc) => pc.connectionState === 'connected').length === {peers}", timeout)
    deadline = time.monotonic() + timeout
    now = phone.evaluate(PER_PEER_JS)
    while True:
        time.sleep(0.5)
        before, now = now, phone.evaluate(PER_PEER_JS)
        if len(now) == peers == len(before) and all(
                b[0] > a[0] > 0 and b[1] > a[1] > 0 for a, b in zip(before, now, strict=True)):
            return
        assert time.monotonic() < deadline, f"{phone.engine}: not decoding from all: {before} -> {now}"


def test_room_call_mesh_with_firefox_between_two_chromium_phones(
        box: Any, people: Callable[[str, str], EnginePhone]) -> None:
    engines = ["chromium", "firefox", "chromium"]
    names = [unique(n) for n in ("Ana", "Fox", "Cleo")]
    crew = [people(engine, box.https_url) for engine in engines]
    for phone, name in zip(crew, names, strict=True):
        phone.join(name)
    room_name = unique("Bridge")
    crew[0].create_room(room_name)
    for phone in crew[1:]:
        phone.open_room(room_name)
    crew[0].wait_js("[...window.ahoy.state.rooms.values()].some((r) => r.members.length === 3)")

    crew[0].click(tid("call-video-button"))
    crew[0].wait_visible("[data-testid=call-status][data-state=waiting]")
    for phone in crew[1:]:  # Firefox joins second, then a Chromium phone after it
        phone.wait_visible(tid("incoming-call"))
        phone.click(tid("accept-call"))
        phone.wait_visible(tid("call-screen"))
    for phone in crew:
        decoding_from_everyone(phone, 2)

    crew[1].click(tid("hangup-button"))  # Firefox leaves; the two others go on
    crew[1].wait_hidden(tid("call-screen"))
    for phone in (crew[0], crew[2]):
        decoding_from_everyone(phone, 1)
    for phone in (crew[0], crew[2]):
        phone.click(tid("hangup-button"))
        phone.wait_hidden(tid("call-screen"))
