"""The terminal client (in tmux) and a web user (in Chromium) chat through the box."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from ahoytest import unique

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))
tmuxdriver = pytest.importorskip("tmuxdriver")
pytestmark = pytest.mark.skipif(tmuxdriver.TMUX is None, reason="tmux is not installed")


def test_terminal_user_and_web_user_chat_in_a_room_and_one_to_one(
        ahoy_server: Any, phones: Any, tmp_path: Path) -> None:
    web_name, term_name = unique("Webby"), unique("Termy")
    web = phones(ahoy_server.http_url)
    web.join(web_name)
    room_name = unique("Deck")
    web.create_room(room_name)

    with tmuxdriver.ahoy_cli(ahoy_server.http_url, term_name, tmp_path / "config") as term:
        term.wait_for(f"online │ {term_name}@")
        term.line(f"/join {room_name}")
        term.wait_for(f"#{room_name}")
        web.say("Ahoy from the *browser*")
        term.wait_for(f"{web_name}: Ahoy from the *browser*")
        term.line("Hello from the terminal")
        web.wait_text("Hello from the terminal")
        assert web.tid("msg-sender").last.inner_text() == term_name

        # One to one, started from the terminal.
        term.line(f"/msg {web_name} just between us")
        web.back()
        web.open_tab("chats")
        web.page.locator('[data-testid=chat-item][data-conv^="dm:"]').filter(has_text=term_name).click()
        web.wait_text("just between us")
        web.say("sure thing")
        term.wait_for(f"{web_name}: sure thing")
        term.line("/quit")
