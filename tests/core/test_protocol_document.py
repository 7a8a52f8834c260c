"""docs/protocol.md describes every message type the box takes and every one it sends."""

from __future__ import annotations

import re
from pathlib import Path

from appliance import protocol

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "protocol.md").read_text()


def documented(type_: str) -> bool:
    return f'"type": "{type_}"' in DOC or f"`{type_}`" in DOC


def test_every_request_type_is_documented() -> None:
    assert [t for t in protocol.SCHEMA if not documented(t)] == []


def test_every_message_the_box_sends_is_documented() -> None:
    sources = [REPO / "appliance" / name for name in ("protocol.py", "signaling.py", "hub.py")]
    sent = set()
    for source in sources:
        sent |= set(re.findall(r'"type": "([a-z_]+)"', source.read_text()))
    sent |= {"room", "room_update", "room_pending", "room_invited"}  # via protocol.room_message
    assert sent, "no outgoing message types found"
    assert sorted(t for t in sent if not documented(t)) == []
