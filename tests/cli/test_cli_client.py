"""The terminal client's protocol side against the real service (no terminal)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

from ahoytest import AhoyServer, WsClient, unique
from clitestkit import Recorder, new_client, run, running

from appliance.terminal.boxclient import BoxClient
from appliance.terminal.boxes import parse_box
from appliance.terminal.state import StateFile
from appliance.terminal.text import display_text


def test_client_joins_and_keeps_its_token_in_a_private_file(ahoy_server: AhoyServer,
                                                            tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    box = parse_box(ahoy_server.http_url)
    path = StateFile.for_box(box).path
    assert path == tmp_path / "config" / "ahoy" / f"127.0.0.1-{ahoy_server.http_port}.json"
    name = unique("Ana")

    async def scenario() -> tuple[str | None, str | None, str]:
        first = BoxClient(box, StateFile.for_box(box), name)
        async with running(first):
            me = first.my_id
        again = BoxClient(box, StateFile.for_box(box))  # no name: the token says who we are
        async with running(again):
            return me, again.my_id, again.my_name

    first_id, second_id, second_name = run(scenario())
    assert first_id is not None and first_id == second_id and second_name == name
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["token"] and saved["user_id"] == first_id


def test_chat_in_a_room_with_a_web_user(ahoy_server: AhoyServer, ws_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ben_name = unique("Ben")
    ben = ws_client(ben_name)
    room_name = unique("Deck")
    room = ben.request("room_create", "room", name=room_name, description="Crew chat")["room"]["id"]
    conv = f"room:{room}"

    async def scenario() -> None:
        ana = new_client(ahoy_server.http_url, tmp_path / "ana.json", unique("Ana"))
        seen = Recorder(ana)
        async with running(ana):
            found = ana.find_room(room_name.upper())  # names match case-insensitively
            await ana.join_room(found["id"])
            await asyncio.to_thread(ben.request, "send", "ack", id="m-ben-000001", room=room,
                                    text="Dinner at 7")
            await seen.wait(lambda: len(seen.messages(conv)) == 1, what="Ben's message")
            assert seen.messages(conv)[0].name == ben_name
            mine = ana.send_text("On my way", room=room)
            await ana.wait_sent(mine, 5)
            got = await asyncio.to_thread(ben.expect, "message", text="On my way")
            assert got["from"] == ana.my_id and got["conv"] == conv
            assert [m.text for m in ana.convs[conv].messages()] == ["Dinner at 7", "On my way"]
            assert ana.convs[conv].unread == 1
            assert ana.conv_title(conv) == "#" + room_name

    run(scenario())


def test_one_to_one_chat_picked_by_name_from_the_online_list(ahoy_server: AhoyServer, ws_client,
                                                             tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ben_name = unique("Ben Ocean")  # a name with a space
    ben = ws_client(ben_name)

    async def scenario() -> None:
        ana = new_client(ahoy_server.http_url, tmp_path / "ana.json", unique("Ana"))
        seen = Recorder(ana)
        async with running(ana):
            user, rest = ana.find_user(f"{ben_name.lower()} see you there")
            assert user["id"] == ben.user_id and rest == "see you there"
            conv = ana.open_dm(user["id"])
            await ana.wait_sent(ana.send_to_conv(conv, rest), 5)
            got = await asyncio.to_thread(ben.expect, "message", text="see you there")
            assert got["conv"] == conv
            await asyncio.to_thread(ben.request, "send", "ack", id="m-ben-dm0001",
                                    to=ana.my_id, text="great")
            await seen.wait(lambda: len(seen.messages(conv)) == 1, what="Ben's reply")
            assert ana.conv_title(conv) == "@" + ben_name

    run(scenario())


def test_reconnecting_client_gets_missed_messages_exactly_once(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: AhoyServer = start_server()
    ben = WsClient(server.ws_url)
    ben.hello(unique("Ben"))
    room = ben.request("room_create", "room", name="Galley")["room"]["id"]
    conv = f"room:{room}"
    later: list[WsClient] = []

    async def scenario() -> None:
        # A long backoff, so the client stays away until we let it back in.
        ana = new_client(server.http_url, tmp_path / "ana.json", unique("Ana"),
                         backoff=(30.0, 30.0))
        seen = Recorder(ana)
        async with running(ana):
            await ana.join_room(room)
            await asyncio.to_thread(ben.request, "send", "ack", id="m-before-01", room=room,
                                    text="before")
            await seen.wait(lambda: len(seen.messages(conv)) == 1, what="the first message")

            await asyncio.to_thread(server.kill)  # the box loses power
            await seen.wait(lambda: ana.connection != "online", what="the drop")
            await asyncio.to_thread(server.start)
            ben2 = await asyncio.to_thread(WsClient, server.ws_url)
            later.append(ben2)
            await asyncio.to_thread(ben2.hello, None, old_token)
            for i in range(3):
                await asyncio.to_thread(ben2.request, "send", "ack", id=f"m-missed-{i}",
                                        room=room, text=f"missed {i}")
            ana.reconnect_now()
            await seen.wait(lambda: len(seen.messages(conv)) == 4, what="the missed messages")
            history = [d for e, d in seen.events if e == "history" and d["conv"] == conv]
            assert history and history[-1]["fresh"] == 3  # caught up through `since`
            await asyncio.to_thread(ben2.request, "send", "ack", id="m-after-01", room=room,
                                    text="after")
            await seen.wait(lambda: len(seen.messages(conv)) == 5, what="a live message")
            # The same message delivered again (a race in a reconnect) is dropped.
            again = {"type": "message", "conv": conv, "seq": 5, "id": "m-after-01",
                     "from": ben2.user_id, "name": "Ben", "text": "after", "ts": 1}
            ana._on_frame(json.dumps(again))
            await asyncio.sleep(0.3)  # quiet window: a wrongly kept copy would show now
            texts = [m.text for m in seen.messages(conv)]
            assert texts == ["before", "missed 0", "missed 1", "missed 2", "after"]
            assert [m.seq for m in ana.convs[conv].messages()] == [1, 2, 3, 4, 5]
            assert ana.state.since[conv] == 5

    old_token = ben.token
    try:
        run(scenario())
    finally:
        for client in [ben, *later]:
            client.close()


class LosesFirstAck(BoxClient):
    """A client whose connection dies just as the first ack arrives."""

    lost = 0

    def _on_frame(self, raw: str | bytes) -> None:
        if not self.lost and json.loads(raw).get("type") == "ack":
            self.lost += 1
            assert self._ws is not None
            self._ws.transport.abort()
            return
        super()._on_frame(raw)


def test_outbox_resends_a_message_whose_ack_was_lost_without_duplicating_it(
        ahoy_server: AhoyServer, ws_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ben = ws_client(unique("Ben"))
    room = ben.request("room_create", "room", name=unique("Mess"))["room"]["id"]
    conv = f"room:{room}"

    async def scenario() -> None:
        ana = LosesFirstAck(parse_box(ahoy_server.http_url), StateFile(tmp_path / "ana.json"),
                            unique("Ana"), backoff=(0.1, 0.5))
        async with running(ana):
            await ana.join_room(room)
            await asyncio.to_thread(ben.drain)
            message = ana.send_text("only once", room=room)
            sent = await ana.wait_sent(message, 10)
            assert ana.lost == 1 and sent.seq is not None
            assert ana.state.outbox == []
            first = await asyncio.to_thread(ben.expect, "message", conv=conv)
            assert first["text"] == "only once"
            await asyncio.sleep(0.3)  # quiet window: a duplicate would come now
            again = [m for m in await asyncio.to_thread(ben.drain)
                     if m["type"] == "message" and m["conv"] == conv]
            assert again == []
            assert [m.text for m in ana.convs[conv].messages()] == ["only once"]

    run(scenario())


def test_message_written_while_the_box_is_away_is_sent_later_once(
        ahoy_server: AhoyServer, ws_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ben = ws_client(unique("Ben"))
    room = ben.request("room_create", "room", name=unique("Hold"))["room"]["id"]
    conv = f"room:{room}"
    path = tmp_path / "ana.json"

    async def scenario() -> None:
        ana = new_client(ahoy_server.http_url, path, unique("Ana"))
        async with running(ana):
            await ana.join_room(room)
        # The box is out of reach (nothing listens there): the message waits on disk.
        away = new_client(f"http://127.0.0.1:{free_port()}", path, backoff=(0.2, 0.5),
                          open_timeout=1)
        async with running(away, online=False):
            pending = away.send_text("written offline", room=room)
            await asyncio.sleep(0.5)
            assert pending.status == "sending"
        assert [o["text"] for o in StateFile(path).outbox] == ["written offline"]
        # Next start, the box is back: the outbox goes out once.
        await asyncio.to_thread(ben.drain)
        back = new_client(ahoy_server.http_url, path)
        seen = Recorder(back)
        async with running(back):
            await seen.wait(lambda: any(e == "sent" for e, _ in seen.events), what="the ack")
            assert back.state.outbox == []
            first = await asyncio.to_thread(ben.expect, "message", conv=conv)
            assert first["text"] == "written offline"
            await asyncio.sleep(0.3)  # quiet window: a duplicate would come now
        again = [m["text"] for m in await asyncio.to_thread(ben.drain)
                 if m["type"] == "message" and m["conv"] == conv]
        assert again == []
        assert StateFile(path).outbox == []

    run(scenario())


def test_hostile_text_is_shown_as_harmless_characters(ahoy_server: AhoyServer, ws_client,
                                                     tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ben = ws_client(unique("Ben"))
    room = ben.request("room_create", "room", name=unique("Pier"))["room"]["id"]
    conv = f"room:{room}"
    hostile = ["\x1b]0;pwned\x07", "\x1b[2J\x1b[H wiped", "\x1b[31mred\x1b[0m",
               "bell\x07\x08\x08back", "\x9b31mC1 CSI", "\u202egnp.exe", "cr\roverwrite",
               "\x1bP+q\x1b\\ DCS"]

    async def scenario() -> None:
        ana = new_client(ahoy_server.http_url, tmp_path / "ana.json", unique("Ana"))
        seen = Recorder(ana)
        async with running(ana):
            await ana.join_room(room)
            for i, text in enumerate(hostile):
                await asyncio.to_thread(ben.request, "send", "ack", id=f"m-hostile-{i}",
                                        room=room, text=text)
            await seen.wait(lambda: len(seen.messages(conv)) == len(hostile), what="all")
        received = [m.text for m in seen.messages(conv)]
        assert received == hostile  # kept as sent; only the display escapes it
        for text in received:
            shown = display_text(text)
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in shown), shown
            assert "\u202e" not in shown

    run(scenario())


def free_port() -> int:
    from ahoytest import free_port as pick

    return pick()


def test_client_takes_its_device_back_after_a_script_used_it(ahoy_server: AhoyServer,
                                                            tmp_path: Path) -> None:
    async def scenario() -> None:
        ana = new_client(ahoy_server.http_url, tmp_path / "ana.json", unique("Ana"))
        ana.retake_delay = 0.2
        seen = Recorder(ana)
        async with running(ana):
            me = ana.my_id
            script = await asyncio.to_thread(WsClient, ahoy_server.ws_url)
            try:
                # Another session of this device (say `--send`) connects with the token.
                reply = await asyncio.to_thread(script.hello, None, ana.state.token)
                assert reply["you"]["id"] == me
                await seen.wait(lambda: ("conn", {"state": "offline", "error": ""}) in seen.events,
                                what="the takeover")
                await ana.wait_online(5)
                error = await asyncio.to_thread(script.expect, "error")
                assert error["code"] == "replaced"
                assert ana.my_id == me
            finally:
                script.close()

    run(scenario())


def test_renaming_while_connected_keeps_the_identity(ahoy_server: AhoyServer, ws_client,
                                                     tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ben = ws_client(unique("Ben"))
    ben.request("people", "people", watch=True)  # told of everyone's changes
    taken = unique("Cleo")
    ws_client(taken)

    async def scenario() -> None:
        ana = new_client(ahoy_server.http_url, tmp_path / "ana.json", unique("Ana"))
        seen = Recorder(ana)
        async with running(ana):
            me, new_name = ana.my_id, unique("Anna")
            ana.set_name(taken)
            await seen.wait(lambda: any("already called" in d.get("text", "")
                                        for e, d in seen.events if e == "notice"), what="refusal")
            ana.set_name(new_name)
            await seen.wait(lambda: ana.my_name == new_name, what="the rename")
            assert ana.my_id == me and ana.connection == "online"
            heard = await asyncio.to_thread(ben.drain, 0.5)
            assert any(u["id"] == me and u["name"] == new_name
                       for m in heard if m["type"] == "changes" for u in m["users"])
        assert StateFile(tmp_path / "ana.json").name == new_name

    run(scenario())


def test_a_room_one_is_not_in_is_known_by_its_counts_and_whole_once_joined(
        ahoy_server: AhoyServer, ws_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Who is in a room goes to its members only (docs/protocol.md): the client
    keeps the others' rooms by their counts (asked for with `rooms`, as /rooms
    does), and has the members once in."""
    ben = ws_client(unique("Ben"))
    room_name = unique("Hold")
    room = ben.request("room_create", "room", name=room_name)["room"]["id"]

    async def scenario() -> None:
        ana = new_client(ahoy_server.http_url, tmp_path / "ana.json", unique("Ana"))
        seen = Recorder(ana)
        async with running(ana):
            known = ana.find_room(room_name)
            assert known["count"] == 1 and not known.get("members")
            cy = await asyncio.to_thread(ws_client, unique("Cy"))
            await asyncio.to_thread(cy.request, "room_join", "room", room=room)
            # Counts of a room one is not in are asked for (/rooms does).
            await ana.refresh_rooms()
            assert ana.rooms[room].get("count") == 2
            assert not ana.rooms[room].get("members")
            await ana.join_room(room)
            await seen.wait(lambda: set(ana.rooms[room].get("members", [])) == {
                ben.user_id, cy.user_id, ana.my_id}, what="the members, once in")
            assert ana.rooms[room]["count"] == 3

    run(scenario())
