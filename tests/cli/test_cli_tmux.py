"""The interactive terminal client in a real terminal (tmux), chatting with a web user."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ahoytest import AhoyServer, unique
from tmuxdriver import TMUX, TmuxSession, ahoy_cli

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


def ahoy_in_tmux(server: AhoyServer, name: str, config: Path, width: int = 100,
                 height: int = 30) -> TmuxSession:
    return ahoy_cli(server.http_url, name, config, width=width, height=height)


def test_terminal_user_chats_with_a_web_user_in_a_room_and_one_to_one(
        ahoy_server: AhoyServer, ws_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ben_name = unique("Ben")
    ben = ws_client(ben_name)
    room_name = unique("Deck")
    room = ben.request("room_create", "room", name=room_name, description="Crew chat")["room"]["id"]
    ana = unique("Ana")

    with ahoy_in_tmux(ahoy_server, ana, tmp_path / "config") as term:
        term.wait_for(f"online │ {ana}@127.0.0.1:{ahoy_server.http_port}")
        term.line(f"/join {room_name}")
        term.wait_for(f"#{room_name} — Crew chat")

        ben.request("send", "ack", id="m-web-000001", room=room, text="Ahoy from the web")
        term.wait_for(f"{ben_name}: Ahoy from the web")
        term.line("Hello from the terminal ✓")
        got = ben.expect("message", text="Hello from the terminal ✓")
        assert got["name"] == ana and got["conv"] == f"room:{room}"

        # A hostile message is printed as characters; it cannot retitle the window
        # or clear the screen.
        ben.request("send", "ack", id="m-web-000002", room=room,
                    text="\x1b]0;pwned\x07\x1b[2J\x1b[Hgone")
        term.wait_for("^[]0;pwned^G^[[2J^[[Hgone")
        assert "pwned" not in term.pane_title()
        assert "Ahoy from the web" in term.screen()

        term.line(f"/msg {ben_name} just between us")
        dm = ben.expect("message", text="just between us")
        assert dm["conv"].startswith("dm:")
        term.wait_for(f"@{ben_name} — online")

        # While the one-to-one chat is shown, the room's new message is counted.
        ben.request("send", "ack", id="m-web-000003", room=room, text="anyone there?")
        term.wait_for(f"unread 1:#{room_name}(1)")
        ben.request("send", "ack", id="m-web-000004", to=dm["from"], text="sure")
        term.wait_for(f"{ben_name}: sure")
        term.press("Tab")
        screen = term.wait_for(f"{ben_name}: anyone there?")
        assert "unread" not in screen.splitlines()[-2]

        term.line("/who")
        term.wait_for(f"Online (1 besides you): {ben_name}")

        # The counts of a room one is not in are asked of the box by /rooms
        # (the terminal does not watch them): Cy's join is there.
        hold = unique("Hold")
        other = ben.request("room_create", "room", name=hold)["room"]["id"]
        cy = ws_client(unique("Cy"))
        cy.request("room_join", "room", room=other)
        term.line("/rooms")
        term.wait_for(f"#{hold} (2 members, 2 online) id {other}")

        # A small window still shows the conversation, the status and the input line.
        term.resize(40, 8)
        screen = term.wait_for(lambda s: len(s.rstrip("\n").splitlines()) <= 8
                               and "online │" in s)
        assert all(len(line) <= 40 for line in screen.splitlines())
        term.resize(80, 24)
        term.wait_for(f"{ben_name}: anyone there?")

        term.line("/quit")
        deadline = time.monotonic() + 5
        while not term.exited() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert term.exited(), term.screen()


def test_a_taken_name_is_asked_again_in_the_terminal(ahoy_server: AhoyServer, ws_client,
                                                     tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    taken = unique("Cleo")
    ws_client(taken)
    with ahoy_in_tmux(ahoy_server, taken, tmp_path / "config", width=80, height=24) as term:
        term.wait_for("already called")
        term.wait_for("Your name:")
        fresh = unique("Cleo")
        term.line(fresh)
        term.wait_for(f"online │ {fresh}@")
