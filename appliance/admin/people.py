"""People and rooms (webclient/admin/people.js): who is online, rooms and calls; remove a
user, close a room, delete a message.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from .access import box, error, log


def people() -> Response:
    hub = box().hub
    return jsonify({"users": hub.online_users(), "rooms": hub.all_rooms(),
                    "calls": hub.calls_in_progress()})


def room_messages(room_id: str) -> Response:
    return jsonify({"messages": box().hub.recent_messages(f"room:{room_id}", 50)})


def remove_user(user_id: str) -> Any:
    if not box().hub.remove_user(user_id):
        return error(404, "That user is not known to the box (any more).")
    log.info("admin: removed user %s", user_id)
    return jsonify({"removed": True})


def close_room(room_id: str) -> Any:
    if not box().hub.close_room(room_id):
        return error(404, "That room does not exist (any more).")
    log.info("admin: closed room %s", room_id)
    return jsonify({"closed": True})


def delete_message(conv: str, seq: int) -> Any:
    if not box().hub.delete_message(conv, seq):
        return error(404, "That message is already gone.")
    log.info("admin: deleted message %d in %s", seq, conv)
    return jsonify({"deleted": True})
