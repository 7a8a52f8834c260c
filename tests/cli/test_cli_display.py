"""What the terminal shows: escaping, widths and wrapping; box addresses; mDNS search."""

from __future__ import annotations

import pytest

from appliance.mdns import Announcement, Announcer
from appliance.terminal.boxes import BoxAddress, discover_boxes, parse_box
from appliance.terminal.conversations import Conversation, Message
from appliance.terminal.text import display_text, text_width, wrap


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b]0;pwned\x07", "^[]0;pwned^G"),
    ("\x1b[2J\x1b[Hgone", "^[[2J^[[Hgone"),
    ("a\rb\x08c\x7f", "a^Mb^Hc^?"),
    ("\x9b31m", "<U+009B>31m"),
    ("\u202eexe.txt", "<U+202E>exe.txt"),
    ("tab\there", "tab  here"),
    ("Grüße, 你好 👋", "Grüße, 你好 👋"),
])
def test_control_characters_are_shown_not_obeyed(raw: str, shown: str) -> None:
    assert display_text(raw) == shown


def test_line_breaks_stay_only_where_asked() -> None:
    assert display_text("one\ntwo", multiline=True) == "one\ntwo"
    assert display_text("one\ntwo") == "one^Jtwo"


def test_wrapping_counts_terminal_cells() -> None:
    assert text_width("你好") == 4 and text_width("e\u0301") == 1
    lines = wrap("12:00 Ana: " + "word " * 10, 20, indent=4)
    assert all(text_width(line) <= 20 for line in lines)
    assert " ".join(" ".join(lines).split()) == "12:00 Ana: " + " ".join(["word"] * 10)
    assert wrap("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert all(text_width(line) <= 5 for line in wrap("你好你好你好", 5))


def test_conversation_keeps_each_message_once_in_seq_order() -> None:
    c = Conversation("room:r_1")
    pending = Message("room:r_1", "m-mine-0001", "u_me", "Me", "mine", 5, None, "sending")
    assert c.add(pending)
    assert c.add(Message("room:r_1", "m-2", "u_b", "Ben", "two", 2, 2))
    assert not c.add(Message("room:r_1", "m-2", "u_b", "Ben", "two", 2, 2))
    assert c.add(Message("room:r_1", "m-1", "u_b", "Ben", "one", 1, 1))
    # The box stored ours as seq 3: the pending one takes its place, no copy.
    assert not c.add(Message("room:r_1", "m-mine-0001", "u_me", "Me", "mine", 3, 3))
    assert [(m.text, m.seq, m.status) for m in c.messages()] == [
        ("one", 1, "sent"), ("two", 2, "sent"), ("mine", 3, "sent")]


@pytest.mark.parametrize(("text", "url", "label"), [
    ("http://10.42.0.1", "ws://10.42.0.1:80/ws", "10.42.0.1"),
    ("ahoy.internal", "ws://ahoy.internal:80/ws", "ahoy.internal"),
    ("https://ahoy.local:8443/", "wss://ahoy.local:8443/ws", "ahoy.local:8443"),
    ("10.42.0.1:8080", "ws://10.42.0.1:8080/ws", "10.42.0.1:8080"),
    ("ws://[fd00::1]:81/ws", "ws://[fd00::1]:81/ws", "fd00::1:81"),
])
def test_box_addresses_are_read_like_a_browser_would(text: str, url: str, label: str) -> None:
    box = parse_box(text)
    assert (box.ws_url, box.label) == (url, label)
    assert "/" not in box.key and ":" not in box.key


def test_a_port_option_overrides_the_address() -> None:
    assert parse_box("http://10.42.0.1", 8080).ws_url == "ws://10.42.0.1:8080/ws"
    with pytest.raises(ValueError, match=r"like http://10\.42\.0\.1"):
        parse_box("ftp://box")


def test_the_box_is_found_by_mdns_on_loopback() -> None:
    announcer = Announcer(Announcement("ahoy-cli-test", http_port=8123, https_port=None),
                          ["127.0.0.1"])
    announcer.start()
    try:
        # Other tests may announce boxes on loopback too: look at all of them.
        boxes = discover_boxes(2.0, interfaces=["127.0.0.1"], first_only=False)
    finally:
        announcer.close()
    ours = [b for b in boxes if b.name == "ahoy-cli-test.local."]
    assert ours, f"not found among {boxes}"
    box = ours[0]
    assert isinstance(box, BoxAddress)
    assert (box.host, box.port, box.path) == ("127.0.0.1", 8123, "/")
    assert box.label == "ahoy-cli-test.local:8123"
    assert box.ws_url == "ws://127.0.0.1:8123/ws"
