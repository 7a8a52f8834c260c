"""The terminal client's connection to a box, with the web app's delivery guarantees.

`BoxClient` keeps one WebSocket connection (see docs/protocol.md) on an
asyncio loop: it says `hello` with the stored device token (or a name),
reconnects with backoff, keeps an outbox of messages the box has not
acknowledged (resent with the same id, so the box stores each once), remembers
the last `seq` per conversation for `since`, and hands every message to the
application once, keyed by (conversation, seq). It knows nothing about
terminals: the curses UI in `appliance.terminal.ui` and the tests drive it
the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .boxes import BoxAddress
from .conversations import (
    TEXT_LIMIT,
    ChatError,
    Conversation,
    Listener,
    Message,
    dm_conv,
    new_message_id,
    now_ms,
)
from .state import StateFile

# Errors after which a message is worth sending again later; any other refusal
# (unknown room, not a member, bad text, …) will not change by retrying.
RETRYABLE = frozenset({"rate_limited", "internal", "not_stored"})

# A dead Wi-Fi link sends no close: the websockets keepalive notices it, a
# ping every PING_INTERVAL_S unanswered for PING_TIMEOUT_S, so the client says
# offline within 10 seconds of the network going quiet (docs/cli.md).
PING_INTERVAL_S = 3.0
PING_TIMEOUT_S = 5.0


class BoxClient:
    """A device's connection to the box, with the web app's delivery guarantees.

    Listeners get ``(event, data)`` for: ``conn`` (connection state changed),
    ``welcome``, ``message`` (a new message, exactly once, live or from a
    ``history`` catch-up), ``history`` (a batch arrived),
    ``sent`` (one of ours acknowledged), ``failed`` (one of ours refused),
    ``presence``, ``rooms``, ``deleted`` and ``notice`` (``data["text"]`` is
    for the person).
    """

    label: str

    def __init__(self, box: BoxAddress, state: StateFile, name: str | None = None, *,
                 ssl_context: ssl.SSLContext | None = None,
                 backoff: tuple[float, float] = (0.5, 10.0),
                 open_timeout: float = 10.0) -> None:
        self.box = box
        self.label = box.label
        self.state = state
        self.pending_name = name.strip() if name else None
        self.ssl_context = ssl_context
        self.backoff = backoff
        self.open_timeout = open_timeout
        self.retake_delay = 3.0  # after another session of this device took over
        self.connection = "offline"  # connecting, online, offline, need_name, replaced, removed
        self.last_error = ""
        self.me: dict[str, Any] | None = None
        self.users: dict[str, dict[str, Any]] = {}
        # Whether the box has answered our `people` on this connection (until
        # then `users` holds only our contacts).
        self.people_ready = False
        self.rooms: dict[str, dict[str, Any]] = {}
        self.names: dict[str, str] = {}
        self.convs: dict[str, Conversation] = {}
        self.listeners: list[Listener] = []
        self._ws: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ack_waiters: dict[str, asyncio.Future[Message]] = {}
        self._older_refs: set[str] = set()
        self._ref = 0
        self._hello_ref: str | None = None
        self._since_at_hello: dict[str, int] = {}
        self._retry = 0
        self._replaced_at: list[float] = []
        self._stopped = False
        self._wake: asyncio.Event | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        # One-to-one chats are not in `welcome`: bring back the ones we had.
        names = state.data.get("names")
        if isinstance(names, dict):
            self.names.update({str(k): str(v) for k, v in names.items()})
        for conv in state.since:
            if conv.startswith("dm:"):
                self._conv(conv)
        for item in state.outbox:
            if item.get("conv"):
                self._conv(item["conv"]).add(self._pending_message(item))

    # -- public API -------------------------------------------------------------

    @property
    def my_id(self) -> str | None:
        return self.me["id"] if self.me else self.state.user_id

    @property
    def my_name(self) -> str:
        return (self.me or {}).get("name") or self.state.name or self.pending_name or ""

    async def run(self) -> None:
        """Stay connected until `stop()`: connect, hello, read, and on loss retry with backoff."""
        self._wake = asyncio.Event()
        while not self._stopped:
            if not self.state.token and not self.pending_name:
                self._set_conn("need_name")
                await self._wait_wake(None)
                continue
            close_code = await self._connect_once()
            if self._stopped:
                break
            delay = self._after_close(close_code)
            if delay is None:
                await self._wait_wake(None)
            else:
                await self._wait_wake(delay)
        self._set_conn("offline")
        self.save()

    def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        self._stopped = True
        if self._ws is not None:
            self._spawn(self._ws.close())
        self._poke()

    def reconnect_now(self) -> None:
        """Skip the backoff wait (the person asked, or a name was given)."""
        self._retry = 0
        self._replaced_at.clear()
        if self.connection in ("replaced", "removed"):
            self._set_conn("offline")
        self._poke()

    def set_name(self, name: str) -> None:
        """Join (or rename) as ``name``; answers arrive as ``conn``/``notice`` events."""
        if self.connection == "online":
            self._spawn(self._rename(name.strip()))
            return
        self.pending_name = name.strip()
        if self._ws is not None and self.connection in ("need_name", "connecting"):
            self._spawn(self._hello())
        else:
            self._poke()

    async def _rename(self, name: str) -> None:
        try:
            await self.request({"type": "rename", "name": name})
        except ChatError as e:
            self._notice(str(e))
        else:
            self._notice(f"You are now called {self.my_name}.")

    async def wait_online(self, timeout: float) -> None:
        """Return once joined; raise ChatError if the box refuses us or cannot be reached."""
        deadline = time.monotonic() + timeout
        while self.connection != "online" or not self.people_ready:
            if self.connection in ("need_name", "removed", "replaced") and self.last_error:
                raise ChatError(self.last_error, "refused")
            if time.monotonic() > deadline:
                why = f": {self.last_error}" if self.last_error else ""
                raise ChatError(f"cannot reach the box at {self.label}{why}", "unreachable")
            await asyncio.sleep(0.05)

    async def request(self, frame: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Send ``frame`` with a fresh ref and return the reply; errors raise ChatError."""
        if self.connection != "online" or self._ws is None:
            raise ChatError("not connected to the box; try again when the status says online",
                            "offline")
        ref = self._next_ref()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            await self._ws.send(json.dumps({**frame, "ref": ref}))
            return await asyncio.wait_for(future, timeout)
        except ConnectionClosed as e:
            raise ChatError("the connection to the box dropped; try again", "offline") from e
        except TimeoutError as e:
            raise ChatError("the box did not answer in time; try again", "timeout") from e
        finally:
            self._pending.pop(ref, None)
            self._older_refs.discard(ref)

    def send_text(self, text: str, *, room: str | None = None, to: str | None = None) -> Message:
        """Queue a message for a room or a person and send it when connected.

        It stays in the outbox (saved to disk) until the box acknowledges it;
        resending uses the same id, so the box stores it once.
        """
        text = text.strip("\r\n")
        if not text.strip():
            raise ChatError("the message is empty", "bad_text")
        if len(text) > TEXT_LIMIT:
            raise ChatError(f"messages are at most {TEXT_LIMIT} characters "
                            f"(this one has {len(text)})", "bad_text")
        if (room is None) == (to is None):
            raise ValueError("give exactly one of room and to")
        item: dict[str, Any] = {"id": new_message_id(), "text": text, "ts": now_ms()}
        if room is not None:
            item["room"], item["conv"] = room, f"room:{room}"
        else:
            if self.my_id is None:
                raise ChatError("join the box before writing to someone", "not_joined")
            assert to is not None
            item["to"], item["conv"] = to, dm_conv(self.my_id, to)
        self.state.outbox.append(item)
        self.save()
        message = self._pending_message(item)
        self._conv(item["conv"]).add(message)
        self._emit("message", {"conv": item["conv"], "message": message, "own": True})
        self._spawn(self._transmit(item))
        return message

    def send_to_conv(self, conv: str, text: str) -> Message:
        """Send to the conversation ``conv`` (``room:…`` or ``dm:…``)."""
        kind, _, rest = conv.partition(":")
        if kind == "room":
            return self.send_text(text, room=rest)
        if kind == "dm":
            other = [u for u in rest.split(":") if u != self.my_id]
            return self.send_text(text, to=other[0] if other else rest.split(":")[0])
        raise ChatError(f"cannot send to {conv}")

    async def wait_sent(self, message: Message, timeout: float) -> Message:
        """Wait until the box acknowledged ``message`` (ChatError if refused or too slow)."""
        if message.status == "sent":
            return message
        if message.status == "failed":
            raise ChatError(message.error or "the box refused the message", "refused")
        future = self._ack_waiters.setdefault(
            message.id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError as e:
            raise ChatError(
                f"the box did not confirm the message within {timeout:g} s; it stays queued "
                "and is sent again (once) the next time this client connects", "timeout") from e

    async def join_room(self, room_id: str) -> dict[str, Any]:
        reply = await self.request({"type": "room_join", "room": room_id})
        self._conv(f"room:{room_id}")
        room: dict[str, Any] = reply["room"]
        return room

    async def refresh_rooms(self) -> None:
        """The rooms as they are now: `changes` keep the counts of the rooms
        we are in, those of the others only for who watches them, so /rooms
        asks (docs/protocol.md, "Rooms and their counts")."""
        reply = await self.request({"type": "rooms"})
        for room in reply.get("rooms") or []:
            self._keep_room(room)

    async def create_room(self, name: str, description: str = "") -> dict[str, Any]:
        reply = await self.request({"type": "room_create", "name": name,
                                    "description": description})
        room: dict[str, Any] = reply["room"]
        self._conv(f"room:{room['id']}")
        return room

    async def leave_room(self, room_id: str) -> None:
        await self.request({"type": "room_leave", "room": room_id})
        self.convs.pop(f"room:{room_id}", None)
        self.state.since.pop(f"room:{room_id}", None)
        self._save_soon()

    async def load_older(self, conv: str, limit: int = 50) -> int:
        """Fetch messages older than the oldest one here; returns how many were new."""
        c = self._conv(conv)
        oldest = c.oldest_seq()
        if oldest is None:
            oldest = self.state.since.get(conv, 0) + 1
        if oldest <= 1:
            return 0
        if self.connection != "online":
            raise ChatError("not connected to the box", "offline")
        ref = self._next_ref()
        self._older_refs.add(ref)
        before = len(c.by_seq)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            assert self._ws is not None
            await self._ws.send(json.dumps({"type": "sync", "conv": conv, "before": oldest,
                                            "limit": limit, "ref": ref}))
            await asyncio.wait_for(future, 10)
        except (TimeoutError, ConnectionClosed) as e:
            raise ChatError("the box did not send the older messages; try again",
                            "timeout") from e
        finally:
            self._pending.pop(ref, None)
            self._older_refs.discard(ref)
        return len(c.by_seq) - before

    def find_room(self, text: str) -> dict[str, Any]:
        """A room by id or by name (case-insensitive; a unique prefix also works)."""
        wanted = text.strip()
        if wanted.startswith("#"):
            wanted = wanted[1:]
        if wanted in self.rooms:
            return self.rooms[wanted]
        low = wanted.casefold()
        exact = [r for r in self.rooms.values() if r["name"].casefold() == low]
        if len(exact) == 1:
            return exact[0]
        pool = exact or [r for r in self.rooms.values() if r["name"].casefold().startswith(low)]
        if len(pool) == 1:
            return pool[0]
        if not pool:
            raise ChatError(f"there is no room called {text!r}; /rooms lists them",
                            "unknown_room")
        raise ChatError(f"several rooms match {text!r}; use the id from /rooms", "unknown_room")

    def find_user(self, text: str) -> tuple[dict[str, Any], str]:
        """The online user whose name starts ``text`` (longest match) and the rest of it."""
        wanted = text.strip()
        if wanted.startswith("@"):
            wanted = wanted[1:]
        low = wanted.casefold()
        best: tuple[dict[str, Any], str] | None = None
        candidates = list(self.users.values()) + [
            {"id": uid, "name": name, "status": "offline"}
            for uid, name in self.names.items()
            if uid not in self.users and uid != self.my_id]
        for user in candidates:
            name = user["name"].casefold()
            if low == name or low.startswith(name + " "):
                if best is None or len(user["name"]) > len(best[0]["name"]):
                    best = (user, wanted[len(user["name"]):].strip())
        if best is None:
            raise ChatError(f"nobody called {wanted!r} is online; /who lists who is",
                            "unknown_user")
        return best

    def conv_title(self, conv: str) -> str:
        kind, _, rest = conv.partition(":")
        if kind == "room":
            room = self.rooms.get(rest)
            return "#" + (room["name"] if room else rest)
        if kind == "dm":
            other = [u for u in rest.split(":") if u != self.my_id] or [rest]
            return "@" + self.names.get(other[0], other[0])
        return conv

    def conv_topic(self, conv: str) -> str:
        kind, _, rest = conv.partition(":")
        if kind == "room" and rest in self.rooms:
            return str(self.rooms[rest].get("description") or "")
        if kind == "dm":
            other = [u for u in rest.split(":") if u != self.my_id]
            if other and other[0] in self.users:
                return str(self.users[other[0]].get("status", "online"))
            return "offline"
        return ""

    def open_dm(self, user_id: str) -> str:
        """The one-to-one conversation with ``user_id`` (created if new)."""
        if self.my_id is None:
            raise ChatError("not joined yet; wait until the status says online", "not_joined")
        conv = dm_conv(self.my_id, user_id)
        self._conv(conv)
        return conv

    def mark_read(self, conv: str) -> None:
        if conv in self.convs:
            self.convs[conv].unread = 0

    def save(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        partners = {uid for conv in self.convs if conv.startswith("dm:")
                    for uid in conv.split(":")[1:]}
        self.state.data["names"] = {uid: self.names[uid] for uid in sorted(partners)
                                    if uid in self.names and uid != self.my_id}
        try:
            self.state.save()
        except OSError as e:
            self._notice(f"cannot save {self.state.path}: {e.strerror or e}")

    # -- connection -------------------------------------------------------------

    async def _connect_once(self) -> int | None:
        self._set_conn("connecting")
        ws: ClientConnection | None = None
        try:
            ws = await connect(self.box.ws_url, ssl=self.ssl_context if self.box.secure else None,
                               open_timeout=self.open_timeout, close_timeout=1,
                               max_size=2**22, ping_interval=PING_INTERVAL_S,
                               ping_timeout=PING_TIMEOUT_S,
                               user_agent_header="ahoy-cli")
            self._ws = ws
            await self._hello()
            async for raw in ws:
                self._on_frame(raw)
        except InvalidStatus as e:
            self.last_error = f"the box answered HTTP {e.response.status_code}"
        except (OSError, InvalidHandshake, TimeoutError) as e:
            self.last_error = _describe(e)
        except ConnectionClosed:
            pass
        finally:
            self._ws = None
            self._hello_ref = None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ChatError("the connection to the box dropped",
                                                   "offline"))
        return ws.close_code if ws is not None else None

    def _after_close(self, code: int | None) -> float | None:
        """What to do after a connection ended: seconds to wait, or None to wait for a poke."""
        if code == 4003:
            self.state.forget_identity()
            self.save()
            self.last_error = "the box's admin removed this user; join again with /name"
            self._set_conn("removed")
            return None
        if code == 4001:
            # Another session of this device (say a script's --send) took over.
            # Take the connection back once; if it keeps happening, two
            # long-lived sessions are fighting, so stop and let the person decide.
            now = time.monotonic()
            self._replaced_at = [t for t in self._replaced_at if now - t < 60] + [now]
            if len(self._replaced_at) > 2:
                self.last_error = ("another session of this device is connected; "
                                   "/reconnect takes over")
                self._set_conn("replaced")
                return None
            self._set_conn("offline")
            return self.retake_delay
        if self.connection == "need_name":
            return None
        self._set_conn("offline")
        low, high = self.backoff
        base = min(high, low * 2 ** self._retry)
        self._retry += 1
        return base / 2 + random.random() * base / 2

    async def _wait_wake(self, delay: float | None) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)
        self._wake.clear()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _hello(self) -> None:
        if self._ws is None:
            return
        hello: dict[str, Any] = {"type": "hello"}
        if self.state.token:
            hello["token"] = self.state.token
            hello["since"] = dict(self.state.since)
        if self.pending_name:
            hello["name"] = self.pending_name
        if "token" not in hello and "name" not in hello:
            self._set_conn("need_name")
            return
        self._since_at_hello = dict(self.state.since)
        self._hello_ref = hello["ref"] = self._next_ref()
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(json.dumps(hello))

    async def _transmit(self, item: dict[str, Any]) -> None:
        if self.connection != "online" or self._ws is None:
            return
        frame = {"type": "send", "id": item["id"], "text": item["text"], "ref": item["id"]}
        if "room" in item:
            frame["room"] = item["room"]
        else:
            frame["to"] = item["to"]
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(json.dumps(frame))

    def _set_conn(self, state: str) -> None:
        if state != self.connection:
            self.connection = state
            self._emit("conn", {"state": state, "error": self.last_error})

    def _next_ref(self) -> str:
        self._ref += 1
        return f"c{self._ref}"

    # -- frames from the box ----------------------------------------------------

    def _on_frame(self, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        ref = msg.get("ref")
        if kind == "error" and ref is not None and ref == self._hello_ref:
            self._hello_ref = None
            self._on_hello_error(msg)
            return
        handler = getattr(self, f"_on_{kind}", None) if isinstance(kind, str) else None
        if handler is not None:
            handler(msg)
        if isinstance(ref, str) and ref in self._pending:
            future = self._pending.pop(ref)
            if not future.done():
                if kind == "error":
                    future.set_exception(ChatError(str(msg.get("message") or msg.get("code")),
                                                   str(msg.get("code"))))
                else:
                    future.set_result(msg)

    def _on_hello_error(self, msg: dict[str, Any]) -> None:
        code, text = msg.get("code"), str(msg.get("message") or msg.get("code"))
        if code == "bad_token":
            # The box forgot this device (its data was wiped): start over by name.
            self.state.forget_identity()
            for conv in self.convs.values():
                conv.unread = 0
            name = self.pending_name or self.state.name
            self.save()
            self._notice("The box no longer knows this device; joining again as a new user.")
            if name:
                self.pending_name = name
                self._spawn(self._hello())
            else:
                self.last_error = text
                self._set_conn("need_name")
            return
        self.pending_name = None
        self.last_error = text
        if self.state.token:
            # A rename was refused: stay who we were.
            self._notice(text)
            self._spawn(self._hello())
            return
        self._set_conn("need_name")
        self._emit("hello_error", {"code": code, "text": text})

    def _on_welcome(self, msg: dict[str, Any]) -> None:
        self._retry = 0
        self.pending_name = None
        self.last_error = ""
        self.me = msg["you"]
        self.state.data.update(token=msg.get("token") or self.state.token,
                               name=msg["you"]["name"], user_id=msg["you"]["id"],
                               box=self.box.ws_url)
        self.names[msg["you"]["id"]] = msg["you"]["name"]
        self.users = {u["id"]: u for u in msg.get("users", [])}
        for user in self.users.values():
            self.names[user["id"]] = user["name"]
        self.rooms = {r["id"]: self._room_in(r) for r in msg.get("rooms", [])}
        # The welcome names only our contacts: the terminal lists everyone
        # online (/who, names to write to), so it watches everyone.
        self.people_ready = False
        self._spawn(self._send_raw({"type": "people", "watch": True}))
        for room in self.rooms.values():
            if msg["you"]["id"] in room.get("members", []):
                self._conv(f"room:{room['id']}")
        for item in self.state.outbox:
            if item.get("to") and not item.get("conv"):
                item["conv"] = dm_conv(msg["you"]["id"], item["to"])
        self.save()
        self._set_conn("online")
        self._emit("welcome", msg)
        for item in list(self.state.outbox):
            self._spawn(self._transmit(item))

    def _on_profile(self, msg: dict[str, Any]) -> None:
        user = msg.get("user")
        if isinstance(user, dict) and self.me is not None and user.get("id") == self.me["id"]:
            self.me = user
            self.names[user["id"]] = user["name"]
            self.state.data["name"] = user["name"]
            self._save_soon()
            self._emit("presence", {"user": user})

    def _on_people(self, msg: dict[str, Any]) -> None:
        """Everyone online (the answer to our `people` with `watch`)."""
        users = msg.get("users")
        if not isinstance(users, list):
            return
        self.users = {u["id"]: u for u in users
                      if isinstance(u, dict) and u.get("id") != self.my_id}
        self.people_ready = True
        for user in self.users.values():
            self.names[user["id"]] = user["name"]
        self._emit("presence", {"user": None})

    def _room_in(self, room: dict[str, Any]) -> dict[str, Any]:
        """A room of over 50 comes without members, to its members `member: true`."""
        if "members" not in room and room.get("member") and self.my_id:
            return {**room, "members": [self.my_id]}
        return room

    def _on_changes(self, msg: dict[str, Any]) -> None:
        """Who came, went or changed, and the rooms that changed (docs/protocol.md)."""
        for user in msg.get("users") or []:
            if not isinstance(user, dict) or user.get("id") == self.my_id:
                continue
            self.names[user["id"]] = user["name"]
            if user.get("status") == "offline":
                self.users.pop(user["id"], None)
            else:
                self.users[user["id"]] = user
            self._emit("presence", {"user": user})
        for room in msg.get("rooms") or []:
            if isinstance(room, dict) and "name" not in room:
                # Only how many are in it and online, and, in a room we are
                # in, who joined and left (a whole room has a name).
                known = self.rooms.get(room.get("id", ""))
                if known is None:
                    continue
                members = known.get("members", [])
                if "joined" in room:
                    members = [u for u in members if u not in room["left"]]
                    members += [u for u in room["joined"] if u not in members]
                room = {**known, "members": members, "online": room.get("online", 0),
                        "count": room.get("count", len(members))}
            self._keep_room(room)

    def _on_message(self, msg: dict[str, Any]) -> None:
        message = self._message_from(msg)
        self._note_seq(message.conv, message.seq or 0, live=True)
        if self._conv(message.conv).add(message):
            if message.sender != self.my_id:
                self.convs[message.conv].unread += 1
            self._emit("message", {"conv": message.conv, "message": message, "own": False})

    def _on_ack(self, msg: dict[str, Any]) -> None:
        item = next((o for o in self.state.outbox if o["id"] == msg["id"]), None)
        if item is not None:
            self.state.outbox.remove(item)
        conv = self._conv(msg["conv"])
        me = self.my_id or ""
        message = conv.by_id.get((me, msg["id"]))
        if message is None:
            message = Message(msg["conv"], msg["id"], me, self.my_name,
                              item["text"] if item else "", msg["ts"], msg["seq"])
            conv.add(message)
        else:
            conv.add(Message(msg["conv"], msg["id"], me, self.my_name, message.text,
                             msg["ts"], msg["seq"]))
        self._note_seq(msg["conv"], msg["seq"], live=True)
        self.save()
        waiter = self._ack_waiters.pop(msg["id"], None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        self._emit("sent", {"conv": msg["conv"], "message": message})

    def _on_error(self, msg: dict[str, Any]) -> None:
        ref, code = msg.get("ref"), str(msg.get("code"))
        text = str(msg.get("message") or code)
        item = next((o for o in self.state.outbox if o["id"] == ref), None)
        if item is not None:
            if code in RETRYABLE:
                asyncio.get_running_loop().call_later(
                    1.0 + random.random(), lambda: self._spawn(self._transmit(item)))
                return
            self.state.outbox.remove(item)
            self.save()
            message = self._conv(item["conv"]).by_id.get((self.my_id or "", item["id"]))
            if message is not None:
                message.status, message.error = "failed", text
            waiter = self._ack_waiters.pop(item["id"], None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(ChatError(text, code))
            self._emit("failed", {"conv": item["conv"], "message": message, "text": text})
            return
        if ref is None or ref not in self._pending:
            if code == "replaced":
                return  # the close code (4001) says it; see _after_close
            self._notice(text)

    def _on_history(self, msg: dict[str, Any]) -> None:
        conv_id = msg["conv"]
        conv = self._conv(conv_id)
        older = msg.get("ref") in self._older_refs
        known = conv_id in self._since_at_hello
        fresh = 0
        mine = {o["id"] for o in self.state.outbox}
        for m in msg.get("messages", []):
            message = self._message_from(m)
            if message.sender == self.my_id and message.id in mine:
                # Stored by the box, but we never saw the ack.
                self.state.outbox[:] = [o for o in self.state.outbox if o["id"] != message.id]
                mine.discard(message.id)
                waiter = self._ack_waiters.pop(message.id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
            if conv.add(message):
                fresh += 1
                if known and not older and message.sender != self.my_id:
                    conv.unread += 1
                self._emit("message", {"conv": conv_id, "message": message,
                                       "own": message.sender == self.my_id, "older": older})
        messages = msg.get("messages") or []
        if messages and not older:
            self._note_seq(conv_id, max(m["seq"] for m in messages), live=False)
            if msg.get("more"):
                self._spawn(self._send_raw(
                    {"type": "sync", "conv": conv_id, "after": messages[-1]["seq"],
                     "limit": 500}))
        self._save_soon()
        self._emit("history", {"conv": conv_id, "fresh": fresh, "older": older})

    def _on_room(self, msg: dict[str, Any]) -> None:
        self._keep_room(msg.get("room"))

    def _keep_room(self, room: Any) -> None:
        if not isinstance(room, dict):
            return
        room = self._room_in(room)
        self.rooms[room["id"]] = room
        if self.my_id in room.get("members", []):
            self._conv(f"room:{room['id']}")
        self._emit("rooms", {"room": room})

    def _on_room_deleted(self, msg: dict[str, Any]) -> None:
        room = self.rooms.pop(msg["room"], None)
        name = room["name"] if room else msg["room"]
        if self.convs.pop(f"room:{msg['room']}", None) is not None:
            self._notice(f"The room #{name} was closed.")
        self._emit("rooms", {"room": None})

    def _on_room_removed(self, msg: dict[str, Any]) -> None:
        room = self.rooms.get(msg["room"])
        self.convs.pop(f"room:{msg['room']}", None)
        self._notice(f"You were removed from #{room['name'] if room else msg['room']}.")
        self._emit("rooms", {"room": room})

    def _on_message_deleted(self, msg: dict[str, Any]) -> None:
        if msg.get("conv") in self.convs:
            self.convs[msg["conv"]].remove_seq(msg["seq"])
            self._emit("deleted", {"conv": msg["conv"], "seq": msg["seq"]})

    def _on_call_incoming(self, msg: dict[str, Any]) -> None:
        self._notice(f"{msg.get('name', 'Someone')} is calling; the terminal client does not "
                     "do calls, answer on a phone or laptop browser.")

    # -- helpers ----------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background, holding a reference until it is done."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_raw(self, frame: dict[str, Any]) -> None:
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(json.dumps(frame))

    def _note_seq(self, conv: str, seq: int, *, live: bool) -> None:
        last = self.state.since.get(conv, 0)
        if live and last and seq > last + 1:
            # A gap (a frame lost in a reconnect race): catch up from the box.
            self._spawn(self._send_raw(
                {"type": "sync", "conv": conv, "after": last, "limit": 500}))
        if seq > last:
            self.state.since[conv] = seq
            self._save_soon()

    def _save_soon(self) -> None:
        if self._save_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.save()
                return
            self._save_handle = loop.call_later(0.5, self.save)

    def _conv(self, conv: str) -> Conversation:
        if conv not in self.convs:
            self.convs[conv] = Conversation(conv)
        return self.convs[conv]

    def _message_from(self, m: dict[str, Any]) -> Message:
        sender = str(m.get("from", ""))
        name = str(m.get("name") or self.names.get(sender, sender))
        if sender:
            self.names.setdefault(sender, name)
        return Message(str(m["conv"]), str(m.get("id", "")), sender, name,
                       str(m.get("text", "")), int(m.get("ts", 0)), int(m["seq"]))

    def _pending_message(self, item: dict[str, Any]) -> Message:
        return Message(item.get("conv", ""), item["id"], self.my_id or "", self.my_name,
                       item["text"], int(item.get("ts", now_ms())), None, "sending")

    def _notice(self, text: str) -> None:
        self._emit("notice", {"text": text})

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(event, data)


def _describe(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "no answer (timed out)"
    if isinstance(e, ssl.SSLCertVerificationError):
        return (f"its certificate is not trusted ({e.verify_message}); "
                "use http://, or --insecure if you trust this network")
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (is the Ahoy service running there?)"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__

