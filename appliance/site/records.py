"""What the boxes of a site tell each other: replicated records and live events.

Replicated records go into each box's JetStream stream (`site.log.<kind>`)
and are applied to every other box's SQLite: messages, people (with their
device token hashes and profile pictures), rooms, room members, invitations
and join requests, reactions and admins' deletions of messages. Live events go over core NATS
subjects and are never stored: who is online where, and messages for a phone
whose socket is on another box.

Everything here is plain data: `decode` checks a record from another box
before anything uses it (another box runs our code, but a damaged or
mismatched one must not take this box down), and raises `BadRecord`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from .. import protocol

MAX_RECORD_BYTES = 64 * 1024
# A profile picture (a 256 x 256 WebP, usually 5-30 KB) travels in its record.
MAX_AVATAR_BYTES = 128 * 1024
MAX_AVATAR_RECORD_BYTES = MAX_AVATAR_BYTES * 4 // 3 + 1024
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MSG_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_OWNER = re.compile(r"[A-Za-z0-9_-]{0,64}")  # "": the box's own room (default_room)
_CONV = re.compile(r"(room:[A-Za-z0-9_-]{1,64}|dm:[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64})")
BOX = re.compile(r"[0-9a-f]{8}")
_TOKEN_HASH = re.compile(r"[0-9a-f]{64}")
ROLES = ("member", "moderator")


class BadRecord(ValueError):
    """A record from another box that this box cannot use."""


@dataclass(frozen=True, order=True)
class Version:
    """When and where a person, room or membership last changed: the later one
    wins, and of two at the same millisecond the box id decides (so every box
    picks the same)."""

    ms: int
    box: str

    def to_wire(self) -> list[Any]:
        return [self.ms, self.box]


@dataclass(frozen=True)
class MessageRecord:
    """A message, as acknowledged by box `origin` as its `n`th (the site-wide position)."""

    origin: str
    n: int
    conv: str
    id: str
    sender: str
    name: str
    text: str
    ts: int
    reply_to: tuple[str, str] | None = None  # (sender, id) of the message it answers

    kind = "msg"

    @property
    def msg_id(self) -> str:
        return f"m.{self.sender}.{self.id}"


@dataclass(frozen=True)
class UserRecord:
    """A person: name, look, and the hash of their device token (so it works on every box)."""

    id: str
    token_hash: str
    name: str
    created: int
    colour: str
    status_text: str
    version: Version

    kind = "user"

    @property
    def msg_id(self) -> str:
        return f"u.{self.id}.{self.version.ms}.{self.version.box}"


@dataclass(frozen=True)
class RoomRecord:
    """A room's settings, or that it was deleted (which wins over any change)."""

    id: str
    name: str
    description: str
    limit: int
    active: bool
    ephemeral: bool
    owner: str
    created: int
    visibility: str
    approval: bool
    invite_code: str
    deleted: bool
    version: Version

    kind = "room"

    @property
    def msg_id(self) -> str:
        return f"r.{self.id}.{self.version.ms}.{self.version.box}"


@dataclass(frozen=True)
class MemberRecord:
    """One person's membership of one room: their role, or None when they left."""

    room: str
    user: str
    role: str | None
    version: Version

    kind = "member"

    @property
    def msg_id(self) -> str:
        return f"p.{self.room}.{self.user}.{self.version.ms}.{self.version.box}"


@dataclass(frozen=True)
class ReactionRecord:
    """One person's emoji on one message (by its sender and id), on or taken back."""

    conv: str
    sender: str
    id: str
    user: str
    emoji: str
    on: bool
    version: Version

    kind = "reaction"

    @property
    def key(self) -> str:
        return f"reaction:{self.sender}:{self.id}:{self.user}:{self.emoji}"

    @property
    def msg_id(self) -> str:
        emoji = self.emoji.encode().hex()[:16]
        when = f"{self.version.ms}.{self.version.box}"
        return f"x.{self.sender}.{self.id}.{self.user}.{emoji}.{when}"


@dataclass(frozen=True)
class InviteRecord:
    """One person and one room: invited ("invite"), asking to join ("request"), or
    neither any more (None: accepted, approved, declined or withdrawn)."""

    room: str
    user: str
    invite: str | None
    version: Version
    by: str = ""  # who invited

    kind = "invite"

    @property
    def key(self) -> str:
        return f"invite:{self.room}:{self.user}"

    @property
    def msg_id(self) -> str:
        return f"i.{self.room}.{self.user}.{self.version.ms}.{self.version.box}"


@dataclass(frozen=True)
class AvatarRecord:
    """A person's profile picture (WebP, base64), as set on the box that made `version`."""

    user: str
    picture: str
    version: Version

    kind = "avatar"

    @property
    def key(self) -> str:
        return f"avatar:{self.user}"

    @property
    def msg_id(self) -> str:
        return f"a.{self.user}.{self.version.ms}.{self.version.box}"

    def image(self) -> bytes:
        return base64.b64decode(self.picture)


@dataclass(frozen=True)
class DeletionRecord:
    """An admin deleted a message (named by its sender and id): gone on every box, for
    good (a deletion wins over the message arriving later)."""

    conv: str
    sender: str
    id: str
    version: Version

    kind = "deletion"

    @property
    def key(self) -> str:
        return f"deleted:{self.sender}:{self.id}"

    @property
    def msg_id(self) -> str:
        return f"d.{self.sender}.{self.id}"


Record = (MessageRecord | UserRecord | RoomRecord | MemberRecord | ReactionRecord
          | DeletionRecord | InviteRecord | AvatarRecord)


def encode(record: Record) -> bytes:
    body = asdict(record)
    if "version" in body:
        body["version"] = record.version.to_wire()  # type: ignore[union-attr]
    body["k"] = record.kind
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def subject(record: Record) -> str:
    return f"site.log.{record.kind}"


def decode(data: bytes) -> Record:
    """A record from another box's stream, checked; BadRecord if it is not one."""
    if len(data) > MAX_AVATAR_RECORD_BYTES:
        raise BadRecord(f"record of {len(data)} bytes")
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise BadRecord("not JSON") from exc
    if not isinstance(body, dict):
        raise BadRecord("not an object")
    kind = body.pop("k", None)
    if kind != "avatar" and len(data) > MAX_RECORD_BYTES:
        raise BadRecord(f"record of {len(data)} bytes")
    try:
        if kind == "msg":
            return _message(body)
        if kind == "user":
            return _user(body)
        if kind == "room":
            return _room(body)
        if kind == "member":
            return _member(body)
        if kind == "reaction":
            return _reaction(body)
        if kind == "deletion":
            return _deletion(body)
        if kind == "invite":
            return _invite(body)
        if kind == "avatar":
            return _avatar(body)
    except (KeyError, TypeError) as exc:
        raise BadRecord(f"{kind} record without {exc}") from exc
    raise BadRecord(f"unknown kind {str(kind)[:20]!r}")


def _text(value: Any, low: int, high: int, what: str) -> str:
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise BadRecord(f"bad {what}")
    return value


def _match(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRecord(f"bad {what}")
    return value


def _int(value: Any, what: str, low: int = 0, high: int = 2**62) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRecord(f"bad {what}")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadRecord(f"bad {what}")
    return value


def _version(value: Any) -> Version:
    if not isinstance(value, list) or len(value) != 2:
        raise BadRecord("bad version")
    return Version(_int(value[0], "version time"), _match(value[1], BOX, "version box"))


def _message(body: dict[str, Any]) -> MessageRecord:
    reply = body.get("reply_to")
    if reply is not None:
        if not isinstance(reply, list) or len(reply) != 2:
            raise BadRecord("bad reply_to")
        reply = (_match(reply[0], _ID, "reply sender"), _match(reply[1], _MSG_ID, "reply id"))
    return MessageRecord(
        origin=_match(body["origin"], BOX, "origin"),
        n=_int(body["n"], "position", 1),
        conv=_match(body["conv"], _CONV, "conversation"),
        id=_match(body["id"], _MSG_ID, "message id"),
        sender=_match(body["sender"], _ID, "sender"),
        name=_text(body["name"], 1, 200, "sender name"),
        text=_text(body["text"], 0, protocol.MAX_TEXT * 4, "text"),
        ts=_int(body["ts"], "time"),
        reply_to=reply,
    )


def _user(body: dict[str, Any]) -> UserRecord:
    return UserRecord(
        id=_match(body["id"], _ID, "user id"),
        token_hash=_match(body["token_hash"], _TOKEN_HASH, "token hash"),
        name=_text(body["name"], 1, 200, "name"),
        created=_int(body["created"], "created"),
        colour=_text(body["colour"], 0, 32, "colour"),
        status_text=_text(body["status_text"], 0, 500, "status"),
        version=_version(body["version"]),
    )


def _room(body: dict[str, Any]) -> RoomRecord:
    visibility = body["visibility"]
    if visibility not in ("public", "hidden"):
        raise BadRecord("bad visibility")
    return RoomRecord(
        id=_match(body["id"], _ID, "room id"),
        name=_text(body["name"], 0, 200, "room name"),
        description=_text(body["description"], 0, 1000, "description"),
        limit=_int(body["limit"], "limit", 0, 100_000),
        active=_bool(body["active"], "active"),
        ephemeral=_bool(body["ephemeral"], "ephemeral"),
        owner=_match(body["owner"], _OWNER, "owner"),
        created=_int(body["created"], "created"),
        visibility=visibility,
        approval=_bool(body["approval"], "approval"),
        invite_code=_text(body["invite_code"], 0, 64, "invite code"),
        deleted=_bool(body["deleted"], "deleted"),
        version=_version(body["version"]),
    )


def _member(body: dict[str, Any]) -> MemberRecord:
    role = body["role"]
    if role is not None and role not in ROLES:
        raise BadRecord("bad role")
    return MemberRecord(
        room=_match(body["room"], _ID, "room id"),
        user=_match(body["user"], _ID, "user id"),
        role=role,
        version=_version(body["version"]),
    )


def _reaction(body: dict[str, Any]) -> ReactionRecord:
    return ReactionRecord(
        conv=_match(body["conv"], _CONV, "conversation"),
        sender=_match(body["sender"], _ID, "sender"),
        id=_match(body["id"], _MSG_ID, "message id"),
        user=_match(body["user"], _ID, "user id"),
        emoji=_text(body["emoji"], 1, 32, "emoji"),
        on=_bool(body["on"], "on"),
        version=_version(body["version"]),
    )


def _avatar(body: dict[str, Any]) -> AvatarRecord:
    picture = body["picture"]
    if not isinstance(picture, str):
        raise BadRecord("bad picture")
    try:
        image = base64.b64decode(picture, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRecord("picture is not base64") from exc
    if not 0 < len(image) <= MAX_AVATAR_BYTES or image[:4] != b"RIFF" or image[8:12] != b"WEBP":
        raise BadRecord("picture is not a WebP of at most 128 KB")
    return AvatarRecord(
        user=_match(body["user"], _ID, "user id"),
        picture=picture,
        version=_version(body["version"]),
    )


def _invite(body: dict[str, Any]) -> InviteRecord:
    invite = body["invite"]
    if invite not in ("invite", "request", None):
        raise BadRecord("bad invite")
    return InviteRecord(
        room=_match(body["room"], _ID, "room id"),
        user=_match(body["user"], _ID, "user id"),
        invite=invite,
        version=_version(body["version"]),
        by=_match(body.get("by", ""), _OWNER, "inviter"),
    )


def _deletion(body: dict[str, Any]) -> DeletionRecord:
    return DeletionRecord(
        conv=_match(body["conv"], _CONV, "conversation"),
        sender=_match(body["sender"], _ID, "sender"),
        id=_match(body["id"], _MSG_ID, "message id"),
        version=_version(body["version"]),
    )


# -- live events (core NATS, never stored) -------------------------------------


def _room_calls(calls: Any) -> None:
    """{room id: call id}: the room calls a box holds."""
    if not isinstance(calls, dict) or len(calls) > 1000:
        raise BadRecord("bad calls")
    for room_id, call_id in calls.items():
        _match(room_id, _ID, "room id")
        _match(call_id, _ID, "call id")


def _started(started: Any) -> None:
    """{room id: when its call started, ms}: which of two calls of a room came first."""
    if not isinstance(started, dict) or len(started) > 1000:
        raise BadRecord("bad started")
    for room_id, at in started.items():
        _match(room_id, _ID, "room id")
        if not isinstance(at, int) or isinstance(at, bool) or not 0 <= at < 2**53:
            raise BadRecord("bad started time")


def _busy(users: Any) -> None:
    """[user id]: the people in calls a box holds."""
    if not isinstance(users, list) or len(users) > 10_000:
        raise BadRecord("bad busy")
    for user_id in users:
        _match(user_id, _ID, "user id")


MAX_LIVE_BYTES = 96 * 1024
# What a box forwards to a phone whose socket is on another box: only what
# that box would not produce itself. Messages, presence and room updates each
# box makes from its own replicated state.
FORWARDED = ("signal", "typing", "read", "error")


def forwarded(message: dict[str, Any]) -> bool:
    """Whether a message for a user on another box goes there."""
    kind = str(message.get("type", ""))
    return kind.startswith("call_") or kind in FORWARDED or "ref" in message


def encode_live(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def decode_live(data: bytes) -> dict[str, Any]:
    """A live event from another box, checked for shape; BadRecord if it is not one."""
    if len(data) > MAX_LIVE_BYTES:
        raise BadRecord(f"live event of {len(data)} bytes")
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise BadRecord("not JSON") from exc
    if not isinstance(body, dict):
        raise BadRecord("not an object")
    kind = body.get("k")
    _match(body.get("box"), BOX, "box")
    if kind == "online":
        users = body.get("users")
        if not isinstance(users, list) or len(users) > 10_000:
            raise BadRecord("bad users")
        for entry in users:
            if not isinstance(entry, list) or len(entry) != 2:
                raise BadRecord("bad user entry")
            _match(entry[0], _ID, "user id")
            _text(entry[1], 1, 200, "name")
        if not isinstance(body.get("full"), bool):
            raise BadRecord("bad full")
        _room_calls(body.get("calls") or {})
        _started(body.get("started") or {})
        _busy(body.get("busy") or [])
    elif kind == "calls":
        _room_calls(body.get("calls"))
        _started(body.get("started") or {})
        _busy(body.get("busy") or [])
    elif kind == "offline":
        _match(body.get("user"), _ID, "user id")
    elif kind in ("to", "frame"):
        _match(body.get("user"), _ID, "user id")
        if "name" in body:
            _text(body["name"], 1, 200, "name")
        if "n" in body:
            _match(body["n"], _ID, "live id")
        if not isinstance(body.get("message"), dict):
            raise BadRecord("bad message")
    else:
        raise BadRecord(f"unknown live kind {str(kind)[:20]!r}")
    return body
