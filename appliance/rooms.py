"""Rooms: who may join, who may change what, and what each change tells whom.

Pure logic, no I/O, the way `signaling.Calls` is: every operation checks its
rules, changes the rooms in memory and returns the effects, in the order they
must happen: what to store (`Write`s) and what to tell whom (`Notice`s). The
hub carries them out. The same writes are what a site of several boxes would
replicate, so they are small values, not method calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import protocol
from .protocol import ProtocolError

DEFAULT_LIMIT = 50
BOX_OWNER = ""  # the owner of rooms the box makes itself (the default room)


@dataclass
class Room:
    id: str
    name: str
    description: str
    limit: int
    active: bool
    ephemeral: bool
    owner: str
    created: int
    members: list[str] = field(default_factory=list)
    # "public" rooms are listed for everyone; "hidden" ones only for their
    # members and the people invited, and joined with an invitation or link.
    visibility: str = "public"
    # When set, joining needs the approval of the owner or a moderator.
    approval: bool = False
    invite_code: str = ""
    moderators: set[str] = field(default_factory=set)
    invited: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def public(self) -> bool:
        return self.visibility == "public"

    def role(self, user_id: str) -> str | None:
        if user_id == self.owner:
            return "owner"
        if user_id in self.moderators:
            return "moderator"
        return "member" if user_id in self.members else None

    def can_see(self, user_id: str) -> bool:
        """Whether the room shows up for this user at all."""
        return (self.public or user_id in self.members or user_id in self.invited
                or user_id in self.requests)

    def check_moderator(self, user_id: str) -> None:
        if self.role(user_id) not in ("owner", "moderator"):
            raise ProtocolError(
                "not_moderator",
                f"Only the owner or a moderator of '{self.name}' can do that.",
            )

    def check_can_remove(self, user_id: str, target: str) -> None:
        """Owners remove anyone but themselves; moderators remove plain members."""
        self.check_moderator(user_id)
        if target == self.owner or (target in self.moderators and user_id != self.owner):
            raise ProtocolError("not_owner", "Only the owner can remove a moderator.")

    def needs_approval(self, user_id: str, code: str | None) -> bool:
        """Whether this join must wait for a moderator (invited people and links skip it)."""
        if user_id in self.members or user_id in self.invited:
            return False
        if code is not None and self.invite_code and code == self.invite_code:
            return False
        return self.approval or not self.public

    def check_can_join(self, user_id: str) -> None:
        if user_id in self.members:
            return
        if not self.active:
            raise ProtocolError(
                "room_inactive", f"'{self.name}' is closed for now; ask its owner to reopen it."
            )
        if len(self.members) >= self.limit:
            raise ProtocolError(
                "room_full", f"'{self.name}' is full ({self.limit} people). Try again later."
            )

    def check_member(self, user_id: str) -> None:
        if user_id not in self.members:
            raise ProtocolError("not_member", f"Join '{self.name}' first.")

    def check_can_post(self, user_id: str) -> None:
        self.check_member(user_id)
        if not self.active:
            raise ProtocolError(
                "room_inactive", f"'{self.name}' is closed for now; messages are not accepted."
            )

    def check_owner(self, user_id: str) -> None:
        if user_id != self.owner:
            raise ProtocolError("not_owner", f"Only the owner of '{self.name}' can do that.")

    def to_wire(self, online: int, call: dict[str, Any] | None) -> dict[str, Any]:
        """The room as its audience sees it (invite codes are never included)."""
        return {
            "visibility": self.visibility,
            "approval": self.approval,
            "moderators": sorted(self.moderators),
            "invited": list(self.invited),
            "requests": list(self.requests),
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "limit": self.limit,
            "active": self.active,
            "ephemeral": self.ephemeral,
            "owner": self.owner,
            "members": list(self.members),
            "count": len(self.members),
            "online": online,
            "call": call,
        }


# -- what to store ------------------------------------------------------------

@dataclass(frozen=True)
class SaveRoom:
    """The room's settings (not its members)."""

    room: Room


@dataclass(frozen=True)
class AddMember:
    room_id: str
    user_id: str
    role: str = "member"


@dataclass(frozen=True)
class RemoveMember:
    room_id: str
    user_id: str


@dataclass(frozen=True)
class SetRole:
    room_id: str
    user_id: str
    role: str


@dataclass(frozen=True)
class SetInvite:
    """An invitation (`kind` "invite"), a join request ("request"), or neither (None)."""

    room_id: str
    user_id: str
    kind: str | None
    by: str = ""  # who invited (for the other boxes of a site)


@dataclass(frozen=True)
class DeleteRoom:
    room_id: str
    delete_messages: bool


Write = SaveRoom | AddMember | RemoveMember | SetRole | SetInvite | DeleteRoom


# -- what to tell whom --------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    """The answer to the request: `{"type": kind, "room": <room>}`, or `message` as is."""

    kind: str = "room"
    room: Room | None = None
    message: dict[str, Any] | None = None


@dataclass(frozen=True)
class Tell:
    """A message for one user (dropped when they are offline)."""

    user_id: str
    message: dict[str, Any]


@dataclass(frozen=True)
class TellRoom:
    """`{"type": kind, "room": <room>, **extra}` for one user."""

    user_id: str
    kind: str
    room: Room
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendHistory:
    """The room's recent messages for a user who just got in."""

    user_id: str
    room: Room


@dataclass(frozen=True)
class Announce:
    """`room_update` for everyone online who may see the room."""

    room: Room


@dataclass(frozen=True)
class Unlist:
    """`room_deleted` for everyone online who no longer may see the room."""

    room: Room


@dataclass(frozen=True)
class Gone:
    """`room_deleted` for everyone online: the room no longer exists."""

    room_id: str


@dataclass(frozen=True)
class LeaveCall:
    """The user leaves the room's call, if they are in it."""

    user_id: str
    room_id: str


@dataclass(frozen=True)
class EndCall:
    room_id: str


Notice = Reply | Tell | TellRoom | SendHistory | Announce | Unlist | Gone | LeaveCall | EndCall
Effect = Write | Notice


class Rooms:
    """Every room on the box and the room workflow: create, join, approvals,
    invitations, roles, removal and deletion."""

    def __init__(self, new_id: Callable[[], str], new_code: Callable[[], str]) -> None:
        self._new_id = new_id
        self._new_code = new_code
        self._rooms: dict[str, Room] = {}

    # -- reading ---------------------------------------------------------------

    def load(self, rooms: list[Room], invites: list[tuple[str, str, str]]) -> None:
        """Fill from the store: rooms with members and roles, then open invitations."""
        self._rooms = {room.id: room for room in rooms}
        for room_id, user_id, kind in invites:
            room = self._rooms.get(room_id)
            if room is not None:
                (room.invited if kind == "invite" else room.requests).append(user_id)

    def get(self, room_id: str | None) -> Room | None:
        return self._rooms.get(room_id) if room_id is not None else None

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._rooms.values()))

    def __len__(self) -> int:
        return len(self._rooms)

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._rooms

    def __getitem__(self, room_id: str) -> Room:
        return self._rooms[room_id]

    def visible(self, room_id: str | None, user_id: str) -> Room:
        """The room, if it exists and the user may know of it; otherwise `unknown_room`,
        so no error ever names a room its asker cannot see."""
        room = self.get(room_id)
        if room is None or not room.can_see(user_id):
            raise ProtocolError("unknown_room", "That room does not exist (any more).")
        return room

    def of_member(self, user_id: str) -> list[Room]:
        return [room for room in self._rooms.values() if user_id in room.members]

    # -- the workflow ------------------------------------------------------------

    def create(self, user: str, now: int, name: Any, description: Any, limit: int,
               ephemeral: bool, visibility: str, approval: bool) -> list[Effect]:
        if len(self._rooms) >= protocol.MAX_ROOMS:
            raise ProtocolError(
                "too_many_rooms", f"This box already holds {protocol.MAX_ROOMS} rooms, its "
                "most. Ask the box's admin to delete rooms nobody uses.")
        owned = sum(1 for r in self._rooms.values() if r.owner == user)
        if owned >= protocol.MAX_ROOMS_PER_PERSON:
            raise ProtocolError(
                "too_many_rooms", f"You already own {owned} rooms, the most one person can. "
                "Delete one you no longer need first.")
        room = Room(
            id=self._new_id(),
            name=protocol.clean_room_name(name),
            description=protocol.clean_description(description),
            limit=limit,
            active=True,
            ephemeral=ephemeral,
            owner=user,
            created=now,
            members=[user],
            visibility=visibility,
            approval=approval,
        )
        self._rooms[room.id] = room
        return [SaveRoom(room), AddMember(room.id, user), Reply("room", room), Announce(room)]

    def box_room(self, name: str, now: int,
                 room_id: str | None = None) -> tuple[Room, list[Effect]]:
        """The room of the box itself called `name` (the config's `default_room`),
        made if there is none. It has no owner (`""`): the admin page manages it.
        `room_id`: the id it gets when made (the same on every box of a site)."""
        wanted = protocol.clean_room_name(name)
        for room in self._rooms.values():
            if room.owner == BOX_OWNER and room.name.casefold() == wanted.casefold():
                return room, []
        room = Room(id=room_id or self._new_id(), name=wanted, description="",
                    limit=protocol.MAX_ROOM_LIMIT,
                    active=True, ephemeral=False, owner=BOX_OWNER, created=now)
        self._rooms[room.id] = room
        return room, [SaveRoom(room)]

    def first_visit(self, user: str, room_id: str | None) -> list[Effect]:
        """A new person joins the box's default room, when it takes them; nothing
        is refused to them when it does not (full or closed)."""
        room = self.get(room_id)
        if room is None or not room.active or len(room.members) >= room.limit:
            return []
        if user not in room.members:
            room.members.append(user)
        return [AddMember(room.id, user), Announce(room)]

    def join(self, user: str, user_name: str, room_id: str, code: str | None) -> list[Effect]:
        room = self.get(room_id)
        if room is None or not (room.can_see(user) or (code and code == room.invite_code)):
            raise ProtocolError("unknown_room", "That room does not exist (any more).")
        room.check_can_join(user)
        if not room.needs_approval(user, code):
            return self._admit(room, user, requested=True)
        effects: list[Effect] = []
        if user not in room.requests:
            room.requests.append(user)
            effects.append(SetInvite(room.id, user, "request"))
            effects += [Tell(moderator, protocol.room_request(room.id, user, user_name))
                        for moderator in [room.owner, *room.moderators]]
        return [*effects, Reply("room_pending", room), Announce(room)]

    def _admit(self, room: Room, user: str, requested: bool) -> list[Effect]:
        """Make `user` a member; they get the room (as the reply to their own
        request, or as news) and its recent history."""
        room.check_can_join(user)
        effects: list[Effect] = []
        if user not in room.members:
            effects.append(AddMember(room.id, user))
            room.members.append(user)
        for pending in (room.invited, room.requests):
            if user in pending:
                pending.remove(user)
        effects.append(Reply("room", room) if requested else TellRoom(user, "room", room))
        return [*effects, SendHistory(user, room), Announce(room)]

    def invite(self, user: str, room_id: str, target: str, target_exists: bool) -> list[Effect]:
        room = self.visible(room_id, user)
        room.check_moderator(user)
        if not target_exists:
            raise ProtocolError("unknown_user", "There is no such person on this box.")
        if target in room.members:
            raise ProtocolError("bad_request", "They are already in this room.")
        effects: list[Effect] = []
        if target in room.requests:
            # Inviting someone who asked to join is approving them.
            effects = self._admit(room, target, requested=False)
        elif target not in room.invited:
            room.invited.append(target)
            effects = [SetInvite(room.id, target, "invite", user),
                       TellRoom(target, "room_invited", room, {"by": user}), Announce(room)]
        return [*effects, Reply("room", room)]

    def invite_link(self, user: str, room_id: str, reset: bool) -> list[Effect]:
        room = self.visible(room_id, user)
        room.check_moderator(user)
        effects: list[Effect] = []
        if not room.invite_code or reset:
            room.invite_code = self._new_code()
            effects.append(SaveRoom(room))
        return [*effects, Reply(message=protocol.room_invite_link(room.id, room.invite_code))]

    def approve(self, user: str, room_id: str, target: str) -> list[Effect]:
        room = self.visible(room_id, user)
        room.check_moderator(user)
        if target not in room.requests:
            raise ProtocolError("bad_request", "That person has not asked to join.")
        return [*self._admit(room, target, requested=False), Reply("room", room)]

    def deny(self, user: str, room_id: str, target: str) -> list[Effect]:
        room = self.visible(room_id, user)
        room.check_moderator(user)
        if target not in room.requests:
            raise ProtocolError("bad_request", "That person has not asked to join.")
        room.requests.remove(target)
        return [SetInvite(room.id, target, None),
                Tell(target, protocol.room_denied(room.id)),
                Reply("room", room), Announce(room)]

    def set_role(self, user: str, room_id: str, target: str, role: str) -> list[Effect]:
        room = self.visible(room_id, user)
        room.check_owner(user)
        if target not in room.members or target == room.owner:
            raise ProtocolError("bad_request", "Roles are for the room's other members.")
        if role == "moderator":
            room.moderators.add(target)
        else:
            room.moderators.discard(target)
        return [SetRole(room.id, target, role), Reply("room", room), Announce(room)]

    def _remove_member(self, room: Room, user: str) -> list[Effect]:
        effects: list[Effect] = [LeaveCall(user, room.id)]
        room.moderators.discard(user)
        if user in room.members:
            room.members.remove(user)
            effects.append(RemoveMember(room.id, user))
        return effects

    def leave(self, user: str, room_id: str) -> list[Effect]:
        room = self.visible(room_id, user)
        effects = self._remove_member(room, user)
        for pending in (room.invited, room.requests):
            if user in pending:
                pending.remove(user)
                effects.append(SetInvite(room.id, user, None))
        return [*effects, Reply("room", room), Announce(room)]

    def update(self, user: str, room_id: str, changes: dict[str, Any]) -> list[Effect]:
        """Owner's changes; `changes` holds only the fields the request set."""
        room = self.visible(room_id, user)
        room.check_owner(user)
        was_public = room.public
        if "name" in changes:
            room.name = protocol.clean_room_name(changes["name"])
        if "description" in changes:
            room.description = protocol.clean_description(changes["description"])
        for key in ("limit", "active", "visibility", "approval"):
            if key in changes:
                setattr(room, key, changes[key])
        effects: list[Effect] = [SaveRoom(room), Reply("room", room), Announce(room)]
        if was_public and not room.public:
            # People who no longer may see it drop it from their list.
            effects.append(Unlist(room))
        return effects

    def kick(self, user: str, room_id: str, target: str) -> list[Effect]:
        room = self.visible(room_id, user)
        if target == user:
            raise ProtocolError("bad_request", "Use 'room_leave' to leave the room.")
        room.check_can_remove(user, target)
        if target not in room.members:
            raise ProtocolError("unknown_user", "That person is not in this room.")
        return [*self.remove(room, target, by=user), Reply("room", room)]

    def remove(self, room: Room, target: str, by: str) -> list[Effect]:
        """Take `target` out of the room (a moderator's or the admin's doing)."""
        return [*self._remove_member(room, target),
                Tell(target, protocol.room_removed(room.id, by)),
                Announce(room)]

    def delete_as_owner(self, user: str, room_id: str) -> list[Effect]:
        room = self.visible(room_id, user)
        room.check_owner(user)
        return [*self.delete(room), Reply(message=protocol.room_deleted(room.id))]

    def delete(self, room: Room) -> list[Effect]:
        """The room goes, with its messages if it is ephemeral."""
        del self._rooms[room.id]
        return [EndCall(room.id), DeleteRoom(room.id, delete_messages=room.ephemeral),
                Gone(room.id)]

    def forget_user(self, user_id: str) -> list[Effect]:
        """The admin removed this person: they leave every room (the store forgets
        them, memberships included, on its own)."""
        effects: list[Effect] = []
        for room in self.of_member(user_id):
            room.members.remove(user_id)
            effects.append(Announce(room))
        return effects
