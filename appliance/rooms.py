"""Rooms: who may join, who may change what. Plain data and rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .protocol import ProtocolError
from .store import RoomRecord

DEFAULT_LIMIT = 50


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

    @classmethod
    def from_record(cls, r: RoomRecord) -> Room:
        return cls(
            r.id, r.name, r.description, r.limit, r.active, r.ephemeral, r.owner, r.created,
            list(r.members), r.visibility, r.approval, r.invite_code,
            {user for user, role in r.roles if role == "moderator"},
        )

    def record(self) -> RoomRecord:
        return RoomRecord(
            self.id, self.name, self.description, self.limit, self.active, self.ephemeral,
            self.owner, self.created, tuple(self.members), self.visibility, self.approval,
            self.invite_code,
        )

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
            "online": online,
            "call": call,
        }
