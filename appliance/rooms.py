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

    @classmethod
    def from_record(cls, r: RoomRecord) -> Room:
        return cls(
            r.id, r.name, r.description, r.limit, r.active, r.ephemeral, r.owner, r.created,
            list(r.members),
        )

    def record(self) -> RoomRecord:
        return RoomRecord(
            self.id, self.name, self.description, self.limit, self.active, self.ephemeral,
            self.owner, self.created, tuple(self.members),
        )

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
        return {
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
