"""The terminal client's screen: a curses chat UI over a `BoxClient` or a `DirectChat`.

Made for tmux and SSH: keyboard only, redraws on resize, works down to tiny
windows, UTF-8 in and out, colours only when the terminal has them.
Everything other people wrote is shown through `text.display_text`, so a
message cannot move the cursor, retitle the window or otherwise drive the
terminal. See docs/cli.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import curses
import locale
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .conversations import ChatError, Message
from .text import char_width, clip, display_text, format_time, text_width, wrap

HELP = [
    "Type a message and press Enter to send it to the conversation shown.",
    "/who                  who is online (and who is busy in a call)",
    "/rooms                all rooms; /join NAME or ID to enter one",
    "/join NAME            join a room and switch to it",
    "/create NAME [DESC]   make a room (quote a name with spaces: /create \"Main deck\")",
    "/leave                leave the room shown (or close the one-to-one chat)",
    "/msg NAME [TEXT]      chat one to one with someone online",
    "/switch N  or Tab     go to conversation N (Shift-Tab goes back); /switch lists them",
    "/history              load older messages of this conversation",
    "/name NAME            change your name     /reconnect  connect again now",
    "/quit                 leave (Ctrl-C too)   PgUp/PgDn scroll, Up/Down recall input",
]


@dataclass
class Notice:
    after_seq: int
    order: int
    text: str


class ChatUI:
    """The screen: title, messages, status line and input line."""

    def __init__(self, backend: Any, screen: Any, *, use_colour: bool = True) -> None:
        self.backend = backend
        self.screen = screen
        self.current: str | None = None
        self.order: list[str] = []
        self.hidden: set[str] = set()  # one-to-one chats closed with /leave
        self.notices: dict[str, list[Notice]] = {}
        self.notice_count = 0
        self.buffer: list[str] = []
        self.cursor = 0
        self.input_offset = 0
        self.scroll = 0
        self.recall: list[str] = []
        self.recall_at = 0
        self.done = asyncio.Event()
        self.tasks: set[asyncio.Future[Any]] = set()
        self.colours: dict[str, int] = {}
        if use_colour:
            self._init_colours()
        backend.listeners.append(self.on_event)
        self.welcomed = False
        self._sync_order()
        if getattr(backend, "connection", "") == "online" and self.order:
            self.switch(self.order[0])  # a direct chat: already connected
        for line in ["Ahoy terminal client. /help lists the commands."]:
            self.notice(line, conv="")

    # -- colours ------------------------------------------------------------------

    def _init_colours(self) -> None:
        if os.environ.get("NO_COLOR"):
            return
        try:
            if not curses.has_colors():
                return
            curses.start_color()
            with contextlib.suppress(curses.error):
                curses.use_default_colors()
            background = -1
            pairs = {
                "status": (curses.COLOR_WHITE, curses.COLOR_BLUE),
                "notice": (curses.COLOR_YELLOW, background),
                "error": (curses.COLOR_RED, background),
            }
            names = [curses.COLOR_CYAN, curses.COLOR_GREEN, curses.COLOR_MAGENTA,
                     curses.COLOR_YELLOW, curses.COLOR_BLUE, curses.COLOR_RED]
            number = 1
            for key, (fg, bg) in pairs.items():
                curses.init_pair(number, fg, bg)
                self.colours[key] = curses.color_pair(number)
                number += 1
            for i, fg in enumerate(names):
                curses.init_pair(number, fg, background)
                self.colours[f"name{i}"] = curses.color_pair(number)
                number += 1
        except curses.error:
            self.colours = {}

    def _attr(self, key: str, fallback: int = curses.A_NORMAL) -> int:
        return self.colours.get(key, fallback)

    def _name_attr(self, user_id: str) -> int:
        if user_id == self.backend.my_id:
            return curses.A_BOLD
        if not self.colours:
            return curses.A_BOLD
        return self.colours[f"name{sum(map(ord, user_id)) % 6}"] | curses.A_BOLD

    # -- model changes --------------------------------------------------------------

    def on_event(self, event: str, data: dict[str, Any]) -> None:
        if event == "notice":
            self.notice(data["text"])
        elif event == "hello_error":
            self.notice(data["text"] + " Type another name and press Enter.", error=True)
        elif event == "failed":
            self.notice(f"Not sent: {data['text']}", conv=data["conv"], error=True)
        elif event == "message":
            self.hidden.discard(data["conv"])
        elif event == "conn" and data["state"] == "replaced":
            self.notice(data["error"], error=True)
        elif event == "conn" and data["state"] == "removed":
            self.notice(data["error"], error=True)
        self._sync_order()
        if event == "welcome" and not self.welcomed:
            # Rooms first, then one-to-one chats; numbers stay put from here on.
            self.welcomed = True
            self.order.sort(key=lambda c: (not c.startswith("room:"),
                                           self.backend.conv_title(c).lower()))
            if self.current is not None:
                self.switch(self.current)  # now online: fetch what it shows
        if self.current is None and self.order and event in ("welcome", "rooms", "message",
                                                             "presence"):
            self.switch(self.order[0])
        if self.current is not None:
            self.backend.mark_read(self.current)
        self.draw()

    def _sync_order(self) -> None:
        convs = self.backend.convs
        self.order = [c for c in self.order if c in convs]
        fresh = [c for c in convs if c not in self.order and c not in self.hidden]
        self.order.extend(fresh)
        if self.current is not None and self.current not in convs:
            self.current = None
            self.scroll = 0

    def switch(self, conv: str) -> None:
        self.hidden.discard(conv)
        self.current = conv
        self.scroll = 0
        if conv not in self.order:
            self.order.append(conv)
        self.backend.mark_read(conv)
        c = self.backend.convs.get(conv)
        if c is not None and not c.by_seq and getattr(self.backend, "connection", "") == "online":
            # Nothing on screen yet (a fresh start keeps no messages): show recent ones.
            self.spawn(self._load_recent(conv))

    async def _load_recent(self, conv: str) -> None:
        with contextlib.suppress(ChatError):
            await self.backend.load_older(conv, 30)
        self.draw()

    def notice(self, text: str, conv: str | None = None, error: bool = False) -> None:
        key = self.current if conv is None else conv
        key = key or ""
        c = self.backend.convs.get(key)
        after = max(c.by_seq) if c is not None and c.by_seq else 0
        self.notice_count += 1
        prefix = "! " if error else "-- "
        # Box errors can quote what people typed (a name, a room name): escape them too.
        self.notices.setdefault(key, []).append(
            Notice(after, self.notice_count, prefix + display_text(text)))
        del self.notices[key][:-200]

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- input --------------------------------------------------------------------

    def on_input(self) -> None:
        """Stdin is readable: take every key ncurses has."""
        while True:
            try:
                key = self.screen.get_wch()
            except curses.error:
                break
            self.handle_key(key)
        self.draw()

    def handle_key(self, key: str | int) -> None:
        if key == curses.KEY_RESIZE:
            # ncurses already knows the new size (resizeterm queues this key).
            self.screen.clear()
        elif key in ("\n", "\r", curses.KEY_ENTER):
            line = "".join(self.buffer)
            self.buffer, self.cursor = [], 0
            if line.strip():
                self.recall.append(line)
                self.recall_at = len(self.recall)
                self.submit(line)
        elif key in (curses.KEY_BACKSPACE, "\x7f", "\x08"):
            if self.cursor > 0:
                del self.buffer[self.cursor - 1]
                self.cursor -= 1
        elif key == curses.KEY_DC or key == "\x04":
            if self.cursor < len(self.buffer):
                del self.buffer[self.cursor]
            elif key == "\x04" and not self.buffer:
                self.quit()
        elif key == curses.KEY_LEFT or key == "\x02":
            self.cursor = max(0, self.cursor - 1)
        elif key == curses.KEY_RIGHT or key == "\x06":
            self.cursor = min(len(self.buffer), self.cursor + 1)
        elif key in (curses.KEY_HOME, "\x01"):
            self.cursor = 0
        elif key in (curses.KEY_END, "\x05"):
            self.cursor = len(self.buffer)
        elif key == "\x15":  # Ctrl-U
            del self.buffer[:self.cursor]
            self.cursor = 0
        elif key == "\x0b":  # Ctrl-K
            del self.buffer[self.cursor:]
        elif key == "\x17":  # Ctrl-W
            start = self.cursor
            while start > 0 and self.buffer[start - 1] == " ":
                start -= 1
            while start > 0 and self.buffer[start - 1] != " ":
                start -= 1
            del self.buffer[start:self.cursor]
            self.cursor = start
        elif key == "\t":
            self.cycle(1)
        elif key == curses.KEY_BTAB:
            self.cycle(-1)
        elif key == curses.KEY_PPAGE:
            self.scroll += max(1, self._pane_height() - 1)
        elif key == curses.KEY_NPAGE:
            self.scroll = max(0, self.scroll - max(1, self._pane_height() - 1))
        elif key == curses.KEY_UP:
            if self.recall_at > 0:
                self.recall_at -= 1
                self.buffer = list(self.recall[self.recall_at])
                self.cursor = len(self.buffer)
        elif key == curses.KEY_DOWN:
            if self.recall_at < len(self.recall):
                self.recall_at += 1
                text = self.recall[self.recall_at] if self.recall_at < len(self.recall) else ""
                self.buffer = list(text)
                self.cursor = len(self.buffer)
        elif key == "\x0c":  # Ctrl-L
            self.screen.clear()
        elif isinstance(key, str) and len(key) == 1 and (key.isprintable() or key == " "):
            self.buffer.insert(self.cursor, key)
            self.cursor += 1

    def cycle(self, step: int) -> None:
        if not self.order:
            return
        index = self.order.index(self.current) if self.current in self.order else -1
        self.switch(self.order[(index + step) % len(self.order)])

    def submit(self, line: str) -> None:
        if self.backend.connection == "need_name":
            self.backend.set_name(line.strip())
            return
        if line.startswith("/") and not line.startswith("//"):
            self.spawn(self.command(line))
            return
        if line.startswith("//"):
            line = line[1:]
        if self.current is None:
            self.notice("Pick a conversation first: /rooms and /join NAME, or /who and "
                        "/msg NAME.", error=True)
            return
        try:
            self.backend.send_to_conv(self.current, line)
        except ChatError as e:
            self.notice(str(e), error=True)
        self.scroll = 0

    async def command(self, line: str) -> None:
        name, _, arg = line[1:].partition(" ")
        arg = arg.strip()
        try:
            await self._command(name.lower(), arg)
        except ChatError as e:
            self.notice(str(e), error=True)
        self.draw()

    async def _command(self, name: str, arg: str) -> None:
        b = self.backend
        if name in ("quit", "exit", "q"):
            self.quit()
        elif name == "help":
            for line in HELP:
                self.notice(line)
        elif name == "who":
            people = sorted(b.users.values(), key=lambda u: u["name"].lower())
            listed = ", ".join(
                display_text(u["name"]) + (" (busy)" if u.get("status") == "busy" else "")
                for u in people) or "nobody else"
            self.notice(f"Online ({len(people)} besides you): {listed}")
        elif name == "rooms":
            if b.connection == "online":
                with contextlib.suppress(ChatError):  # offline meanwhile: what we know
                    await b.refresh_rooms()
            if not b.rooms:
                self.notice("No rooms yet. /create NAME makes one.")
            for room in sorted(b.rooms.values(), key=lambda r: r["name"].lower()):
                joined = " [joined]" if b.my_id in room.get("members", []) else ""
                description = f" — {room['description']}" if room.get("description") else ""
                count = room.get("count", len(room.get("members", [])))
                self.notice(display_text(
                    f"#{room['name']}{description} ({count} members, "
                    f"{room.get('online', 0)} online){joined} id {room['id']}"))
        elif name == "join":
            if not arg:
                raise ChatError("which room? /join NAME (see /rooms)")
            room = b.find_room(arg)
            if b.my_id not in room.get("members", []):
                room = await b.join_room(room["id"])
            self._sync_order()
            self.switch(f"room:{room['id']}")
        elif name == "create":
            try:
                parts = shlex.split(arg)
            except ValueError:
                parts = arg.split()
            if not parts:
                raise ChatError("/create NAME [DESCRIPTION]")
            room = await b.create_room(parts[0], " ".join(parts[1:]))
            self._sync_order()
            self.switch(f"room:{room['id']}")
            self.notice(display_text(f"Created #{room['name']}."))
        elif name in ("leave", "part", "close"):
            if self.current is None:
                raise ChatError("nothing to leave")
            conv = self.current
            if conv.startswith("room:"):
                title = b.conv_title(conv)
                await b.leave_room(conv[5:])
                self.notice(display_text(f"You left {title}."), conv="")
            else:
                self.hidden.add(conv)
                self.order.remove(conv)
            self._sync_order()
            self.current = None
            if self.order:
                self.switch(self.order[0])
        elif name in ("msg", "query", "m"):
            if not arg:
                raise ChatError("/msg NAME [TEXT] (see /who)")
            user, text = b.find_user(arg)
            conv = b.open_dm(user["id"])
            self._sync_order()
            self.switch(conv)
            if text:
                b.send_to_conv(conv, text)
        elif name in ("switch", "s", "w"):
            if not arg:
                for i, conv in enumerate(self.order, 1):
                    self.notice(display_text(f"{i}: {b.conv_title(conv)}"))
                return
            try:
                index = int(arg)
                conv = self.order[index - 1]
                if index < 1:
                    raise IndexError
            except (ValueError, IndexError) as e:
                raise ChatError(f"no conversation {arg}; /switch lists them") from e
            self.switch(conv)
        elif name == "history":
            if self.current is None:
                raise ChatError("pick a conversation first")
            count = await b.load_older(self.current)
            self.notice("No older messages." if not count else f"Loaded {count} older messages.")
        elif name in ("name", "nick"):
            if not arg:
                raise ChatError("/name NEWNAME")
            b.set_name(arg)
        elif name == "reconnect":
            b.reconnect_now()
        else:
            raise ChatError(f"unknown command /{display_text(name)}; /help lists them")

    def quit(self) -> None:
        self.done.set()

    # -- drawing ------------------------------------------------------------------

    def on_resize(self) -> None:
        try:
            size = os.get_terminal_size(sys.__stdout__.fileno() if sys.__stdout__ else 1)
            curses.resizeterm(size.lines, size.columns)
        except (OSError, ValueError, curses.error):
            pass
        self.screen.clear()
        self.draw()

    def _pane_height(self) -> int:
        height, _ = self.screen.getmaxyx()
        return max(0, height - (3 if height >= 6 else 2))

    def draw(self) -> None:
        try:
            self._draw()
        except curses.error:
            pass  # a window too small for even that: the next resize redraws

    def _put(self, y: int, x: int, text: str, attr: int = curses.A_NORMAL) -> None:
        _, width = self.screen.getmaxyx()
        if x >= width:
            return
        text = clip(text, width - x)
        with contextlib.suppress(curses.error):  # writing the last cell moves past the end
            self.screen.addstr(y, x, text, attr)

    def _draw(self) -> None:
        screen = self.screen
        height, width = screen.getmaxyx()
        screen.erase()
        if height < 1 or width < 1:
            return
        b = self.backend
        if height >= 6:
            title = b.conv_title(self.current) if self.current else "Ahoy"
            topic = b.conv_topic(self.current) if self.current else ""
            line = display_text(title + (f" — {topic}" if topic else ""))
            self._put(0, 0, line.ljust(width), curses.A_BOLD)
            top = 1
        else:
            top = 0
        if height >= 2:
            self._draw_messages(top, height - 2)
            self._put(height - 2, 0, self._status_line().ljust(width),
                      self._attr("status", curses.A_REVERSE))
        self._draw_input(height - 1, width)
        screen.noutrefresh()
        curses.doupdate()

    def _status_line(self) -> str:
        b = self.backend
        state = b.connection
        if state == "need_name":
            state = "choose a name"
        parts = [f" {state}", display_text(f"{b.my_name or '?'}@{b.label}")]
        if self.current is not None:
            index = self.order.index(self.current) + 1 if self.current in self.order else 0
            parts.append(display_text(f"{index}:{b.conv_title(self.current)}"))
        unread = []
        for i, conv in enumerate(self.order, 1):
            c = b.convs.get(conv)
            if c is not None and c.unread and conv != self.current:
                unread.append(display_text(f"{i}:{b.conv_title(conv)}({c.unread})"))
        if unread:
            parts.append("unread " + " ".join(unread))
        if self.scroll:
            parts.append("↑ scrolled (PgDn)")
        return " │ ".join(parts)

    def _items(self) -> list[Message | Notice]:
        key = self.current or ""
        c = self.backend.convs.get(key) if self.current else None
        messages = c.messages() if c is not None else []
        notices = self.notices.get(key, [])
        if not notices:
            return list(messages)

        def sort_key(item: Message | Notice) -> tuple[float, int, int]:
            if isinstance(item, Notice):
                return (item.after_seq, 1, item.order)
            if item.seq is None:
                return (float("inf"), 0, item.ts)
            return (item.seq, 0, 0)

        return sorted([*messages, *notices], key=sort_key)

    def _render(self, item: Message | Notice, width: int) -> list[list[tuple[str, int]]]:
        if isinstance(item, Notice):
            attr = self._attr("error" if item.text.startswith("!") else "notice", curses.A_DIM)
            lines = wrap(item.text, width, 3)
            return [[(("   " if i else "") + line, attr)] for i, line in enumerate(lines)]
        stamp = format_time(item.ts) + " "
        name = display_text(item.name or item.sender) + ": "
        text = display_text(item.text, multiline=True)
        if item.status == "sending":
            text += " …"
        elif item.status == "failed":
            text += f" [not sent: {display_text(item.error)}]"
        lead = text_width(stamp) + text_width(name)
        indent = min(lead, max(2, width // 3))
        lines = wrap(stamp + name + text, width, indent)
        out: list[list[tuple[str, int]]] = []
        for i, line in enumerate(lines):
            if i == 0:
                segs = [(line[:len(stamp)], curses.A_DIM)]
                rest = line[len(stamp):]
                segs.append((rest[:len(name)], self._name_attr(item.sender)))
                segs.append((rest[len(name):], curses.A_NORMAL))
                out.append(segs)
            else:
                out.append([(" " * indent + line, curses.A_NORMAL)])
        if item.status == "failed":
            out = [[(t, a | self._attr("error")) for t, a in segs] for segs in out]
        return out

    def _draw_messages(self, top: int, bottom: int) -> None:
        rows = bottom - top
        if rows <= 0:
            return
        _, width = self.screen.getmaxyx()
        need = rows + self.scroll
        lines: list[list[tuple[str, int]]] = []
        for item in reversed(self._items()):
            lines[:0] = self._render(item, width)
            if len(lines) >= need:
                break
        self.scroll = min(self.scroll, max(0, len(lines) - rows))
        end = len(lines) - self.scroll
        visible = lines[max(0, end - rows):end]
        y = bottom - len(visible)
        for segs in visible:
            x = 0
            for text, attr in segs:
                if text:
                    self._put(y, x, text, attr)
                    x += text_width(text)
            y += 1

    def _draw_input(self, y: int, width: int) -> None:
        need_name = self.backend.connection == "need_name"
        prompt = "Your name: " if need_name else "> "
        if text_width(prompt) >= width - 1:
            prompt = ""
        room = max(1, width - text_width(prompt) - 1)
        if self.cursor < self.input_offset:
            self.input_offset = self.cursor
        while text_width("".join(self.buffer[self.input_offset:self.cursor])) > room:
            self.input_offset += 1
        shown, used = [], 0
        for ch in self.buffer[self.input_offset:]:
            w = char_width(ch)
            if used + w > room:
                break
            shown.append(ch)
            used += w
        self._put(y, 0, prompt, curses.A_BOLD)
        self._put(y, text_width(prompt), "".join(shown))
        x = text_width(prompt) + text_width("".join(self.buffer[self.input_offset:self.cursor]))
        with contextlib.suppress(curses.error):
            curses.curs_set(1)
            self.screen.move(y, min(x, width - 1))
        self.screen.noutrefresh()


@contextlib.contextmanager
def curses_screen() -> Iterator[Any]:
    """Like `curses.wrapper`, usable from async code: the terminal is restored on exit."""
    locale.setlocale(locale.LC_ALL, "")
    os.environ.setdefault("ESCDELAY", "25")
    screen = curses.initscr()
    try:
        curses.noecho()
        curses.cbreak()
        screen.keypad(True)
        screen.nodelay(True)
        yield screen
    finally:
        screen.keypad(False)
        curses.echo()
        curses.nocbreak()
        curses.endwin()


async def run_ui(backend: Any, *, background: Callable[[], Any] | None = None) -> None:
    """Show ``backend`` until /quit; ``background`` (e.g. ``client.run``) runs meanwhile."""
    loop = asyncio.get_running_loop()
    with curses_screen() as screen:
        ui = ChatUI(backend, screen)
        runner = asyncio.ensure_future(background()) if background is not None else None
        loop.add_reader(sys.stdin.fileno(), ui.on_input)
        handled = []
        for sig, handler in ((signal.SIGWINCH, ui.on_resize), (signal.SIGINT, ui.quit),
                             (signal.SIGTERM, ui.quit), (signal.SIGHUP, ui.quit)):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.add_signal_handler(sig, handler)
                handled.append(sig)
        ui.draw()
        try:
            while not ui.done.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ui.done.wait(), 1.0)
                if runner is not None and runner.done():
                    break
                ui.draw()  # the clock, and anything missed
        finally:
            loop.remove_reader(sys.stdin.fileno())
            for sig in handled:
                loop.remove_signal_handler(sig)
            backend.stop()
            if runner is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(runner, 3)
