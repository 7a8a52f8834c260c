"""The `ahoy` command: its arguments, the one-shot `--send`, and the chat it starts.

`ahoy` (or `python -m appliance.terminal`) opens the chat screen on a box
found with mDNS or given with `--box`; `ahoy direct` chats with one other
device without a box. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import ssl
import sys

from .boxclient import BoxClient
from .boxes import BoxAddress, discover_boxes, parse_box
from .conversations import ChatError
from .state import StateFile
from .text import display_text
from .ui import run_ui


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ahoy",
        description="Ahoy's terminal client: chat with the people on an Ahoy box's network.",
        epilog="See docs/cli.md. 'ahoy direct --offer' chats with one other device without a box.",
    )
    parser.add_argument("--box", metavar="ADDRESS",
                        help="the box, e.g. http://10.42.0.1 or ahoy.internal "
                             "(default: look for it with mDNS)")
    parser.add_argument("--port", type=int, help="the box's port (default: 80, 443 for https)")
    parser.add_argument("--name", help="your name on the box (asked for if not given)")
    parser.add_argument("--insecure", action="store_true",
                        help="accept the box's HTTPS certificate without checking it")
    parser.add_argument("--send", metavar="TEXT",
                        help="send TEXT and exit once the box has it (needs --room or --to)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--room", metavar="NAME", help="with --send: the room (joined if needed)")
    target.add_argument("--to", metavar="NAME", help="with --send: a person who is online")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds --send waits for the box (default: 10)")
    parser.add_argument("--search-time", type=float, default=3.0,
                        help="seconds to look for a box with mDNS (default: 3)")
    sub = parser.add_subparsers(dest="command", metavar="direct")
    direct = sub.add_parser("direct", help="chat with one device on the same network, no box",
                            description="A direct chat over WebRTC without a box: one side "
                                        "runs --offer, the other --answer; copy the lines "
                                        "between them.")
    side = direct.add_mutually_exclusive_group(required=True)
    side.add_argument("--offer", action="store_true", help="start: print an offer")
    side.add_argument("--answer", action="store_true", help="answer an offer pasted here")
    direct.add_argument("--name", dest="direct_name", help="your name in the chat")
    direct.add_argument("--no-qr", action="store_true", help="do not print QR codes")
    direct.add_argument("--wait", type=float, default=60.0,
                        help="seconds to wait for the connection (default: 60)")
    return parser


def fail(text: str, code: int = 1) -> int:
    print(f"ahoy: {text}", file=sys.stderr)
    return code


def ask(prompt: str) -> str | None:
    """A line from the person, or None at end of input."""
    while True:
        try:
            answer = input(prompt).strip()
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return None
        if answer:
            return answer


def find_box(args: argparse.Namespace) -> BoxAddress:
    if args.box:
        return parse_box(args.box, args.port)
    print("Looking for an Ahoy box on this network…", file=sys.stderr)
    boxes = discover_boxes(args.search_time)
    if not boxes:
        raise ChatError("no Ahoy box answered on this network (mDNS); give its address, "
                        "e.g. --box http://10.42.0.1")
    box = boxes[0]
    if args.port:
        box = BoxAddress(box.host, args.port, box.secure, box.path, box.name)
    print(f"Found {box.label} at {box.host}:{box.port}.", file=sys.stderr)
    return box


def ssl_context(insecure: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def send_once(client: BoxClient, text: str, room: str | None, to: str | None,
                    timeout: float) -> int:
    """The scripting mode: send one message, exit 0 after the ack, 1 with a reason otherwise."""
    seen_before = dict(client.state.since)
    runner = asyncio.ensure_future(client.run())
    try:
        await client.wait_online(timeout)
        if room is not None:
            found = client.find_room(room)
            if client.my_id not in found.get("members", []):
                found = await client.join_room(found["id"])
            message = client.send_text(text, room=found["id"])
        else:
            assert to is not None
            user, rest = client.find_user(to)
            if rest:
                raise ChatError(f"nobody called {to!r} is online; /who lists who is")
            message = client.send_text(text, to=user["id"])
        await client.wait_sent(message, timeout)
        print(f"sent to {display_text(client.conv_title(message.conv))}")
        return 0
    except ChatError as e:
        return fail(str(e))
    finally:
        # What this run happened to receive is still unread for the interactive client.
        client.state.data["since"] = {**client.state.since, **seen_before}
        client.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runner, 3)


async def direct_session(args: argparse.Namespace, name: str) -> int:
    from .direct import DirectChat

    chat = DirectChat(name)
    try:
        if args.offer:
            offer = await chat.make_offer()
            show_signal("Your offer: give this line (or the QR code) to the other device, "
                        "which runs 'ahoy direct --answer'.", offer, not args.no_qr)
            pasted = await asyncio.to_thread(ask, "Paste the other device's answer: ")
            if pasted is None:
                return fail("no answer given")
            await chat.take_answer(pasted)
        else:
            pasted = await asyncio.to_thread(ask, "Paste the other device's offer: ")
            if pasted is None:
                return fail("no offer given")
            answer = await chat.answer(pasted)
            show_signal("Your answer: give this line (or the QR code) to the other device.",
                        answer, not args.no_qr)
        print("Connecting…", file=sys.stderr)
        await chat.wait_open(args.wait)
        await run_ui(chat, background=chat.run)
        return 0
    except ChatError as e:
        return fail(str(e))
    finally:
        await chat.close()


def show_signal(heading: str, line: str, qr: bool) -> None:
    print(heading)
    if qr:
        try:
            import segno

            code = segno.make(line, error="l")
            width = code.symbol_size(border=2)[0]
            if width <= shutil.get_terminal_size().columns:
                code.terminal(border=2, compact=True)
            else:
                print(f"(The QR code needs a window {width} characters wide; "
                      "widen it and run again to see it, or copy the line.)")
        except Exception:  # no segno, or a text too long for a QR code: the line is enough
            pass
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "direct":
        name = args.direct_name or args.name or ask("Your name: ")
        if name is None:
            return 1
        try:
            return asyncio.run(direct_session(args, name))
        except KeyboardInterrupt:
            return 130
    if (args.room or args.to) and args.send is None:
        return fail("--room and --to go with --send TEXT; without them the client is "
                    "interactive and /join or /msg pick the conversation", 2)
    if args.send is not None and not (args.room or args.to):
        return fail("--send needs --room NAME or --to NAME", 2)
    try:
        box = find_box(args)
    except ValueError as e:
        return fail(str(e), 2)
    except ChatError as e:
        return fail(str(e))
    state = StateFile.for_box(box)
    name = args.name
    if not name and not state.token:
        if args.send is not None or not sys.stdin.isatty():
            return fail("this device has not joined this box yet; give --name", 2)
        name = ask(f"Your name on {box.label}: ")
        if name is None:
            return 1
    client = BoxClient(box, state, name, ssl_context=ssl_context(args.insecure))
    try:
        if args.send is not None:
            return asyncio.run(send_once(client, args.send, args.room, args.to, args.timeout))
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            return fail("the interactive client needs a terminal; scripts use --send", 2)
        asyncio.run(run_ui(client, background=client.run))
    except KeyboardInterrupt:
        return 130
    return 0

