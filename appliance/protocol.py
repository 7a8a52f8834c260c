"""The WebSocket protocol's schema: every client message type and its fields.

`parse_frame` turns one text frame into a validated `Request`, or raises
`ProtocolError` with a code and a sentence a person can read. docs/protocol.md
describes the same schema for client authors; keep the two in step.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 65536
MAX_TEXT = 4000
MAX_NAME = 32
MAX_ROOM_NAME = 48
MAX_DESCRIPTION = 200
MIN_ROOM_LIMIT = 2
MAX_ROOM_LIMIT = 200
MAX_CALL_MEMBERS = 4
MAX_SIGNAL_BYTES = 60000
MAX_HISTORY = 500
MAX_ROOMS_PER_PERSON = 10  # rooms one person owns
MAX_ROOMS = 200  # rooms on the box in all
NEW_PEOPLE_PER_ADDRESS_PER_HOUR = 20  # new identities (hello without a token) per phone address

_MSG_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_ENTITY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BOX = re.compile(r"[0-9a-f]{8}")
_CONV = re.compile(r"(room:[A-Za-z0-9_-]{1,64}|dm:[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64})")


_SURROGATE = re.compile("[\ud800-\udfff]")
HALF_CHARACTER = ("Some text holds half of a character (a lone UTF-16 surrogate, as when "
                  "an emoji is cut in two). Send whole characters.")


def has_lone_surrogate(value: Any) -> bool:
    """Whether any text in a decoded JSON value (keys too) is half of a UTF-16 pair.

    JSON's `\\ud83d` escapes can carry one, and such text cannot be UTF-8: stored,
    it would fail the commit of every message waiting with it.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class ProtocolError(Exception):
    """A request the box refuses; `code` is stable, `message` is for people."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # The refused request's `ref`, when the frame got far enough to have one.
        self.ref = ref


@dataclass(frozen=True)
class Request:
    type: str
    fields: dict[str, Any]
    ref: str | None

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


Check = Callable[[str, Any], Any]


def _bad(field: str, what: str) -> ProtocolError:
    return ProtocolError("bad_request", f"'{field}' {what}.")


def text(min_len: int, max_len: int) -> Check:
    def check(field: str, value: Any) -> str:
        if not isinstance(value, str):
            raise _bad(field, "must be text")
        if not min_len <= len(value) <= max_len:
            raise _bad(field, f"must be {min_len} to {max_len} characters")
        return value

    return check


def integer(low: int, high: int) -> Check:
    def check(field: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(field, "must be a whole number")
        if not low <= value <= high:
            raise _bad(field, f"must be between {low} and {high}")
        return value

    return check


def boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(field, "must be true or false")
    return value


def pattern(regex: re.Pattern[str], description: str) -> Check:
    def check(field: str, value: Any) -> str:
        if not isinstance(value, str) or not regex.fullmatch(value):
            raise _bad(field, f"must be {description}")
        return value

    return check


# Why a callee turns a call down (`call_reject`'s `why`), each the reason of the
# `call_ended` both parties get: declined by the person, a browser that cannot
# make calls at all, or a camera or microphone that would not start.
REJECT_WHYS = ("declined", "unsupported", "no_media")
REJECT_REASONS = {"declined": "rejected", "unsupported": "unsupported", "no_media": "no_media"}


def choice(*options: str) -> Check:
    def check(field: str, value: Any) -> str:
        if value not in options:
            raise _bad(field, "must be one of " + ", ".join(options))
        return str(value)

    return check


def since_map(field: str, value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > 2000:
        raise _bad(field, "must be an object of at most 2000 conversations")
    out: dict[str, int] = {}
    for conv, seq in value.items():
        if not _CONV.fullmatch(conv):
            raise _bad(field, f"has an unknown conversation '{conv[:80]}'")
        out[conv] = integer(0, 2**62)(f"{field}.{conv}", seq)
    return out


def since_at_map(field: str, value: Any) -> dict[str, dict[str, int]]:
    if not isinstance(value, dict) or len(value) > 2000:
        raise _bad(field, "must be an object of at most 2000 conversations")
    out: dict[str, dict[str, int]] = {}
    for conv, seen in value.items():
        if not _CONV.fullmatch(conv):
            raise _bad(field, f"has an unknown conversation '{conv[:80]}'")
        if not isinstance(seen, dict) or len(seen) > 64:
            raise _bad(f"{field}.{conv}", "must be an object of at most 64 boxes")
        for box in seen:
            if not _BOX.fullmatch(box):
                raise _bad(f"{field}.{conv}", f"has an unknown box '{str(box)[:20]}'")
        out[conv] = {box: integer(0, 2**62)(f"{field}.{conv}.{box}", n)
                     for box, n in seen.items()}
    return out


def json_object(max_bytes: int) -> Check:
    def check(field: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _bad(field, "must be an object")
        if len(json.dumps(value, separators=(",", ":"))) > max_bytes:
            raise _bad(field, f"must be at most {max_bytes} bytes")
        return value

    return check


msg_id = pattern(_MSG_ID, "8 to 64 letters, digits, '-' or '_'")
entity_id = pattern(_ENTITY_ID, "an id")
conv_id = pattern(_CONV, "a conversation like 'room:<id>' or 'dm:<id>:<id>'")
media = choice("audio", "video")
seq = integer(0, 2**62)

# type -> {field: (check, required)}; "room|to" style exclusivity is listed in TARGETED.
SCHEMA: dict[str, dict[str, tuple[Check, bool]]] = {
    "hello": {
        "name": (text(0, 200), False),
        "token": (text(1, 128), False),
        "since": (since_map, False),
        # A box of a site: the box the phone's seqs are from, and what it has seen
        # by site-wide position (docs/protocol.md, "Several boxes").
        "box": (pattern(re.compile(r"[0-9a-f]{8}"), "a box id"), False),
        "since_at": (since_at_map, False),
    },
    "ping": {},
    "ice": {},
    "people": {"watch": (boolean, False)},
    "rooms": {"watch": (boolean, False)},
    "send": {
        "id": (msg_id, True),
        "room": (entity_id, False),
        "to": (entity_id, False),
        "text": (text(0, 100_000), True),
        "reply_to": (integer(1, 2**62), False),
    },
    "react": {
        "conv": (conv_id, True),
        "seq": (integer(1, 2**62), True),
        "emoji": (text(1, 32), True),
        "on": (boolean, False),
    },
    "search": {
        "conv": (conv_id, True),
        "query": (text(1, 100), True),
        "limit": (integer(1, 100), False),
    },
    "profile": {
        "colour": (pattern(re.compile(r"#[0-9a-fA-F]{6}"), "a colour like #1e88e5"), False),
        "status_text": (text(0, 1000), False),
    },
    "sync": {
        "conv": (conv_id, True),
        "after": (seq, False),
        "before": (integer(1, 2**62), False),
        "limit": (integer(1, MAX_HISTORY), False),
    },
    "typing": {"room": (entity_id, False), "to": (entity_id, False)},
    "read": {"conv": (conv_id, True), "seq": (seq, True)},
    "room_create": {
        "name": (text(0, 1000), True),
        "description": (text(0, 10_000), False),
        "limit": (integer(MIN_ROOM_LIMIT, MAX_ROOM_LIMIT), False),
        "ephemeral": (boolean, False),
        "visibility": (choice("public", "hidden"), False),
        "approval": (boolean, False),
    },
    "room_join": {"room": (entity_id, True), "code": (text(1, 64), False)},
    "room_invite": {"room": (entity_id, True), "user": (entity_id, True)},
    "room_invite_link": {"room": (entity_id, True), "reset": (boolean, False)},
    "room_approve": {"room": (entity_id, True), "user": (entity_id, True)},
    "room_deny": {"room": (entity_id, True), "user": (entity_id, True)},
    "room_role": {
        "room": (entity_id, True),
        "user": (entity_id, True),
        "role": (choice("moderator", "member"), True),
    },
    "room_leave": {"room": (entity_id, True)},
    "room_get": {"room": (entity_id, True)},
    "room_delete": {"room": (entity_id, True)},
    "room_update": {
        "room": (entity_id, True),
        "name": (text(0, 1000), False),
        "description": (text(0, 10_000), False),
        "active": (boolean, False),
        "limit": (integer(MIN_ROOM_LIMIT, MAX_ROOM_LIMIT), False),
        "visibility": (choice("public", "hidden"), False),
        "approval": (boolean, False),
    },
    "room_kick": {"room": (entity_id, True), "user": (entity_id, True)},
    "call_invite": {"to": (entity_id, True), "media": (media, False)},
    "call_join": {"room": (entity_id, True), "media": (media, False)},
    "call_accept": {"call": (entity_id, True)},
    "call_reject": {"call": (entity_id, True), "why": (choice(*REJECT_WHYS), False)},
    "call_cancel": {"call": (entity_id, True)},
    "call_hangup": {"call": (entity_id, True)},
    "rename": {"name": (text(0, 200), True)},
    "signal": {
        "call": (entity_id, False),
        "to": (entity_id, True),
        "data": (json_object(MAX_SIGNAL_BYTES), True),
    },
}

# Messages addressed to exactly one of a room or a user.
TARGETED = {"send", "typing"}


def parse_frame(frame: str | bytes) -> Request:
    """Validate one WebSocket frame against the protocol."""
    if isinstance(frame, bytes):
        raise ProtocolError("bad_frame", "Binary frames are not supported; send JSON text.")
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", "The message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "The message must be a JSON object.")
    ref = data.get("ref")
    if ref is not None and not (isinstance(ref, str) and len(ref) <= 64):
        raise ProtocolError("bad_request", "'ref' must be text of at most 64 characters.")
    # Only a \u escape makes one (a text frame is valid UTF-8): most frames skip the walk.
    if "\\u" in frame and has_lone_surrogate(data):
        usable = ref if ref is None or not _SURROGATE.search(ref) else None
        raise ProtocolError("bad_json", HALF_CHARACTER, ref=usable)
    try:
        kind = data.get("type")
        if not isinstance(kind, str) or kind not in SCHEMA:
            shown = kind[:40] if isinstance(kind, str) else kind
            raise ProtocolError("unknown_type", f"Unknown message type {shown!r}.")
        fields: dict[str, Any] = {}
        for name, (check, required) in SCHEMA[kind].items():
            if name in data and data[name] is not None:
                fields[name] = check(name, data[name])
            elif required:
                raise _bad(name, "is required")
        if kind in TARGETED and ("room" in fields) == ("to" in fields):
            raise ProtocolError("bad_request", "Give exactly one of 'room' or 'to'.")
    except ProtocolError as e:
        e.ref = ref  # every error answers its request, these too
        raise
    return Request(kind, fields, ref)


def ref_of(frame: str | bytes) -> str | None:
    """The `ref` of a frame the box will not otherwise read (a rate-limited one)."""
    if isinstance(frame, bytes):
        return None
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    ref = data.get("ref") if isinstance(data, dict) else None
    return ref if isinstance(ref, str) and len(ref) <= 64 else None


def clean_name(raw: str) -> str:
    """A display name trimmed and checked: 1 to 32 characters, no control characters."""
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise ProtocolError("bad_name", "Please enter a name.")
    if len(name) > MAX_NAME:
        raise ProtocolError("bad_name", f"Names can be at most {MAX_NAME} characters long.")
    for ch in name:
        # Zero-width joiners are part of emoji sequences; other format and
        # control characters could hide or fake a name.
        if unicodedata.category(ch).startswith("C") and ch != "\u200d":
            raise ProtocolError("bad_name", "Names cannot contain control characters.")
    return name


def name_key(name: str) -> str:
    """How names are compared for uniqueness: case and width folded."""
    return unicodedata.normalize("NFKC", name).casefold()


def clean_room_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not 1 <= len(name) <= MAX_ROOM_NAME:
        raise ProtocolError("bad_request", f"Room names must be 1 to {MAX_ROOM_NAME} characters.")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ProtocolError("bad_request", "Room names cannot contain control characters.")
    return name


def clean_description(raw: str) -> str:
    text_ = raw.strip()
    if len(text_) > MAX_DESCRIPTION:
        raise ProtocolError(
            "bad_request", f"Descriptions can be at most {MAX_DESCRIPTION} characters."
        )
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text_):
        raise ProtocolError("bad_request", "Descriptions cannot contain control characters.")
    return text_


def clean_text(raw: str) -> str:
    if not raw.strip():
        raise ProtocolError("bad_text", "Messages cannot be empty.")
    if len(raw) > MAX_TEXT:
        raise ProtocolError("bad_text", f"Messages can be at most {MAX_TEXT} characters long.")
    return raw


MAX_STATUS = 80
_EMOJI_JOINERS = {"\u200d", "\ufe0f", "\ufe0e"}


def clean_status(raw: str) -> str:
    status = " ".join(raw.split())
    if len(status) > MAX_STATUS:
        raise ProtocolError("bad_request", f"Status lines can be at most {MAX_STATUS} characters.")
    return status


def clean_emoji(raw: str) -> str:
    """A reaction: one emoji (a short sequence of symbols), never text or markup."""
    emoji = unicodedata.normalize("NFC", raw)
    symbols = [ch for ch in emoji if ch not in _EMOJI_JOINERS]
    ok = 1 <= len(symbols) <= 8 and all(
        (ord(ch) > 0x7F and unicodedata.category(ch) in ("So", "Sk", "Mn", "Me"))
        or 0x1F1E6 <= ord(ch) <= 0x1F1FF  # regional indicators (flags)
        or 0x1F3FB <= ord(ch) <= 0x1F3FF  # skin tones
        for ch in symbols
    )
    if not ok:
        raise ProtocolError("bad_request", "A reaction must be a single emoji.")
    return emoji


def error(code: str, message: str, ref: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        out["ref"] = ref
    return out


# -- outgoing messages ----------------------------------------------------------
# One constructor per message the box sends, named after its `type`, so the
# wire format lives here beside the incoming schema (docs/protocol.md has an
# example of each). Call signaling events are built in signaling.py.

Wire = dict[str, Any]


def pong(ts: int) -> Wire:
    return {"type": "pong", "ts": ts}


def welcome(you: Wire, token: str, users: list[Wire], rooms: list[Wire],
            ice_servers: list[Wire], now: int, default_room: str | None = None) -> Wire:
    return {
        "type": "welcome",
        "protocol": PROTOCOL_VERSION,
        "you": you,
        "token": token,
        "users": users,
        "rooms": rooms,
        "ice_servers": ice_servers,
        "limits": {"text": MAX_TEXT, "name": MAX_NAME, "room_members": MAX_ROOM_LIMIT,
                   "rooms_per_person": MAX_ROOMS_PER_PERSON, "rooms": MAX_ROOMS,
                   "call_members": MAX_CALL_MEMBERS},
        "server_time": now,
        "default_room": default_room,
    }


def ice(ice_servers: list[Wire]) -> Wire:
    return {"type": "ice", "ice_servers": ice_servers}


def changes(users: list[Wire], rooms: list[Wire]) -> Wire:
    """Who came, went or changed, and the rooms that changed, since the last one."""
    return {"type": "changes", "users": users, "rooms": rooms}


def profile(user: Wire) -> Wire:
    return {"type": "profile", "user": user}


def ack(msg_id: str, conv: str, seq: int, ts: int) -> Wire:
    return {"type": "ack", "id": msg_id, "conv": conv, "seq": seq, "ts": ts}


def history(conv: str, messages: list[Wire], more: bool, last_seq: int) -> Wire:
    return {"type": "history", "conv": conv, "messages": messages, "more": more,
            "last_seq": last_seq}


def reaction(conv: str, seq: int, by: str, emoji: str, on: bool) -> Wire:
    return {"type": "reaction", "conv": conv, "seq": seq, "from": by, "emoji": emoji, "on": on}


def search_results(conv: str, query: str, messages: list[Wire]) -> Wire:
    return {"type": "search_results", "conv": conv, "query": query, "messages": messages}


def typing(conv: str, by: str) -> Wire:
    return {"type": "typing", "conv": conv, "from": by}


def read(conv: str, by: str, seq: int) -> Wire:
    return {"type": "read", "conv": conv, "from": by, "seq": seq}


def message_deleted(conv: str, seq: int) -> Wire:
    return {"type": "message_deleted", "conv": conv, "seq": seq}


def signal(call: str | None, by: str, data: Wire) -> Wire:
    return {"type": "signal", "call": call, "from": by, "data": data}


def room_message(kind: str, room: Wire, **extra: Any) -> Wire:
    """A message carrying a room: `room` (a reply), `room_update`, `room_pending`,
    `room_invited` (with `by`)."""
    return {"type": kind, "room": room, **extra}


def room_deleted(room_id: str) -> Wire:
    return {"type": "room_deleted", "room": room_id}


def room_request(room_id: str, user: str, name: str) -> Wire:
    return {"type": "room_request", "room": room_id, "user": user, "name": name}


def room_denied(room_id: str) -> Wire:
    return {"type": "room_denied", "room": room_id}


def room_removed(room_id: str, by: str) -> Wire:
    return {"type": "room_removed", "room": room_id, "by": by}


def room_invite_link(room_id: str, code: str) -> Wire:
    return {"type": "room_invite_link", "room": room_id, "code": code}
