"""The real service on loopback with real WebSocket clients."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from ahoytest import AhoyServer, WsClient, unique
from websockets.exceptions import ConnectionClosed, InvalidStatus


def test_two_users_chat_and_a_late_joiner_gets_history(ws_client) -> None:  # type: ignore[no-untyped-def]
    ana = ws_client(unique("Ana"))
    ben = ws_client(unique("Ben"))
    room = ana.request("room_create", "room", name="Galley")["room"]["id"]
    assert ben.request("room_join", "room", room=room)["type"] == "room"
    for i in range(3):
        assert ana.request("send", "ack", id=f"m-ana{i:05}", room=room, text=f"ana {i}")["seq"] == 2 * i + 1
        ben.expect("message", text=f"ana {i}")
        assert ben.request("send", "ack", id=f"m-ben{i:05}", room=room, text=f"ben {i}")["seq"] == 2 * i + 2
        ana.expect("message", text=f"ben {i}")
    direct = ana.request("send", "ack", id="m-direct01", to=ben.user_id, text="just you")
    assert ben.expect("message", conv=direct["conv"])["text"] == "just you"

    late = ws_client(unique("Late"))
    late.request("room_join", "room", room=room)
    history = late.expect("history", conv=f"room:{room}")
    assert [m["text"] for m in history["messages"]] == [
        "ana 0", "ben 0", "ana 1", "ben 1", "ana 2", "ben 2"]


def test_cut_client_gets_exactly_what_it_missed_on_reconnect(ws_client, ahoy_server: AhoyServer) -> None:  # type: ignore[no-untyped-def]
    ana = ws_client(unique("Ana"))
    ben = ws_client(unique("Ben"))
    room = ana.request("room_create", "room", name="Deck")["room"]["id"]
    conv = f"room:{room}"
    ben.request("room_join", "room", room=room)
    ana.request("send", "ack", id="m-before01", room=room, text="before")
    ben.expect("message", text="before")
    ben.cut()
    time.sleep(0.3)  # usually the server notices the dead socket; either way what follows holds
    for i in range(5):
        ana.request("send", "ack", id=f"m-missed{i:02}", room=room, text=f"missed {i}")
    back = ws_client()
    back.hello(token=ben.token, since={conv: ben.seen[conv]})
    history = back.expect("history", conv=conv)
    assert [m["text"] for m in history["messages"]] == [f"missed {i}" for i in range(5)]
    assert back.user_id == ben.user_id
    # A retry of an already acknowledged message is not stored twice.
    again = back.request("send", "ack", id="m-ben-retry", room=room, text="retry")
    twice = back.request("send", "ack", id="m-ben-retry", room=room, text="retry")
    assert again == {**twice, "ref": again["ref"]}
    assert [m["text"] for m in ana.drain() if m["type"] == "message"] == ["retry"]


def test_a_reloaded_page_replaces_the_old_socket_without_dropping_the_user(ws_client) -> None:  # type: ignore[no-untyped-def]
    ana = ws_client(unique("Ana"))
    watcher = ws_client(unique("Watch"))
    watcher.request("people", "people", watch=True)  # told of everyone's changes
    reload_ = ws_client()
    assert reload_.hello(token=ana.token)["you"]["id"] == ana.user_id
    assert ana.expect("error")["code"] == "replaced"
    time.sleep(0.3)  # quiet window for "no offline": load can only hide one, never invent it
    statuses = [u.get("status", "online") for m in watcher.drain() if m["type"] == "changes"
                for u in m["users"] if u["id"] == ana.user_id]
    assert "offline" not in statuses
    assert reload_.request("ping", "pong")["type"] == "pong"


def test_bad_frames_get_errors_while_others_keep_chatting(ws_client) -> None:  # type: ignore[no-untyped-def]
    ana = ws_client(unique("Ana"))
    ben = ws_client(unique("Ben"))
    rogue = ws_client(unique("Rogue"))
    room = ana.request("room_create", "room", name="Bridge")["room"]["id"]
    ben.request("room_join", "room", room=room)
    rogue.send_raw("{not json")
    assert rogue.expect("error")["code"] == "bad_json"
    rogue.send_raw(b"\x00binary")
    assert rogue.expect("error")["code"] == "bad_frame"
    rogue.send("room_kick", room=room, user=ana.user_id)
    assert rogue.expect("error")["code"] == "not_moderator"
    ana.request("send", "ack", id="m-steady01", room=room, text="still here")
    assert ben.expect("message")["text"] == "still here"


def test_oversized_frame_closes_only_that_connection(ws_client) -> None:  # type: ignore[no-untyped-def]
    ana = ws_client(unique("Ana"))
    big = ws_client(unique("Big"))
    big.send_raw(json.dumps({"type": "ping", "pad": "x" * 70000}))
    with pytest.raises(ConnectionClosed) as closed:
        big.expect("pong", timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert ana.request("ping", "pong")["type"] == "pong"


def test_flooding_client_is_cut_off_and_others_are_served(ws_client) -> None:  # type: ignore[no-untyped-def]
    calm = ws_client(unique("Calm"))
    flood = ws_client(unique("Flood"))
    with pytest.raises(Exception):
        for _ in range(5000):
            flood.send("ping")
        flood.drain(quiet=1.0)
        flood.send("ping")
        flood.expect("pong", timeout=1)
        raise AssertionError("still connected")
    assert calm.request("ping", "pong")["type"] == "pong"


def test_slow_reader_does_not_stall_others(ws_client, ahoy_server: AhoyServer) -> None:  # type: ignore[no-untyped-def]
    ana = ws_client(unique("Ana"))
    ben = ws_client(unique("Ben"))
    sleeper = ws_client(unique("Sleeper"))  # never reads from here on
    room = ana.request("room_create", "room", name="Busy", limit=10)["room"]["id"]
    ben.request("room_join", "room", room=room)
    sleeper.request("room_join", "room", room=room)
    pad = "y" * 3900
    for i in range(150):
        ana.send("send", id=f"m-slow{i:05}", room=room, text=f"{i} {pad}")
        if i % 15 == 14:
            time.sleep(0.8)  # stay under the rate limit
    got = 0
    deadline = time.monotonic() + 30
    while got < 150 and time.monotonic() < deadline:
        m = ben.expect("message", timeout=30)
        got += 1
        assert m["text"].startswith(f"{got - 1} ")
    assert got == 150


def test_foreign_origin_is_refused_on_the_handshake(ahoy_server: AhoyServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        WsClient(ahoy_server.ws_url, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    same = WsClient(ahoy_server.ws_url, origin=f"http://127.0.0.1:{ahoy_server.http_port}")
    assert same.request("ping", "pong")["type"] == "pong"
    same.close()


def test_health_and_api_answer_json(ahoy_server: AhoyServer) -> None:
    health = ahoy_server.health()
    assert health["status"] == "ok" and "users_online" in health
    with urllib.request.urlopen(ahoy_server.http_url + "/api/info") as r:
        assert json.load(r)["https_url"] == f"https://127.0.0.1:{ahoy_server.https_port}"
    with urllib.request.urlopen(ahoy_server.http_url + "/api/qr.svg?text=WIFI%3AS%3Aahoy%3B%3B") as r:
        assert r.headers["Content-Type"].startswith("image/svg+xml") and b"<svg" in r.read()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(ahoy_server.http_url + "/api/qr.svg?text=")
    assert e.value.code == 400
    for path in ["/..%2f..%2fetc/passwd", "/../appliance/hub.py", "/%2e%2e/pyproject.toml"]:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(ahoy_server.http_url + path)
        assert e.value.code == 404, path


def test_half_a_character_is_refused_and_the_message_sent_with_it_is_stored(ws_client) -> None:  # type: ignore[no-untyped-def]
    """A JSON escape can carry half of a UTF-16 pair (a browser's JSON.stringify
    writes one for an emoji cut in two). It cannot be stored: refused as it
    arrives, it takes nothing down with it, and a whole pair is stored."""
    ana = ws_client(unique("Ana"))
    ben = ws_client(unique("Ben"))
    room = ana.request("room_create", "room", name="Mess")["room"]["id"]
    ben.request("room_join", "room", room=room)
    # Sent back to back, so both usually wait for the same commit.
    ana.send_raw(f'{{"type": "send", "id": "m-half-0001", "room": "{room}",'
                 ' "text": "cut \\ud83d", "ref": "half"}')
    ben.send_raw(f'{{"type": "send", "id": "m-whole-001", "room": "{room}",'
                 ' "text": "whole \\ud83d\\ude00", "ref": "whole"}')
    refused = ana.expect("error", ref="half")
    assert refused["code"] == "bad_json" and "half of a character" in refused["message"]
    assert ben.expect("ack", ref="whole")["seq"] == 1
    assert ana.expect("message", seq=1)["text"] == "whole \U0001f600"
    assert ana.request("send", "ack", id="m-after-001", room=room, text="after")["seq"] == 2
    late = ws_client(unique("Late"))
    late.request("room_join", "room", room=room)
    history = late.expect("history", conv=f"room:{room}")
    assert [m["text"] for m in history["messages"]] == ["whole \U0001f600", "after"]
