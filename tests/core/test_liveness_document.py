"""docs/protocol.md's "Connection liveness" states the web app's timings; they
must be the ones webclient/app/net.js uses (the behaviour itself is tested in a
real browser: tests/browser/test_network_loss.py)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def constant_s(js: str, name: str) -> float:
    match = re.search(rf"const {name} = (\d+);", js)
    assert match, f"net.js has no {name}"
    return int(match.group(1)) / 1000


def test_liveness_section_states_the_web_apps_timings() -> None:
    doc = " ".join(section((REPO / "docs/protocol.md").read_text(), "Connection liveness").split())
    js = (REPO / "webclient/app/net.js").read_text()
    quiet, pong, opening = (constant_s(js, n) for n in ("QUIET_MS", "PONG_WAIT_MS", "OPEN_WAIT_MS"))
    watch = constant_s(js, "WATCH_EVERY_MS")
    assert f"After {quiet:g} seconds without any frame" in doc
    assert f"nothing at all arrives within {pong:g} seconds" in doc
    assert f"within {opening:g} seconds is abandoned" in doc
    # The promise: offline within 10 s of the network going quiet, even when
    # the watch timer fires late by one period on each step.
    assert quiet + pong + 2 * watch <= 10
    assert "within 10 seconds of the network going quiet" in doc
