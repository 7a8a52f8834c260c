"""The system screen (webclient/admin/system.js): the admin password, config backup and
restore, restart, shut down and factory reset.

Restoring takes only the settings the admin page may change; power actions and
the factory reset are handed to the privileged step.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, g, jsonify

from provisioning.config import (
    KEYS,
    BoxConfig,
    ConfigError,
    admin_password_problem,
    decode_config,
    format_config,
    format_value,
    parse_file,
)
from provisioning.configstore import interface_mac, request_changes
from provisioning.credentials import set_admin_password, verify_admin_password
from provisioning.requests import APPLY, FACTORY_RESET, REBOOT, SHUTDOWN

from .access import (
    admin_state,
    box,
    client_address,
    config_in_force,
    data_dir,
    error,
    json_body,
    locked_out,
    log,
    request_privileged,
    upload,
)
from .settings import FIELD_LABELS, SETTINGS_FIELDS, disconnect_notes, effective_config

FACTORY_RESET_WORD = "ERASE"


def change_password() -> Any:
    admin = admin_state(current_app)
    data = json_body()
    old, new = data.get("old"), data.get("new")
    if not isinstance(old, str) or not isinstance(new, str):
        return error(400, "Type the current password and the new one.")
    client = client_address()
    wait = admin.limiter.wait_seconds(client, admin.clock())
    if wait:
        return locked_out(wait)
    the_box = box()
    folder = data_dir()
    with admin.password_lock:
        # scrypt is CPU-bound on purpose: off the event loop, like the sign-in's.
        ok = len(old) <= 1024 and the_box.run_blocking(
            lambda: verify_admin_password(folder, old))
    if not ok:
        lockout = admin.limiter.failed(client, admin.clock())
        if lockout:
            return locked_out(lockout)
        return error(400, "The password was not changed.",
                     fields={"old": "That is not the current password."})
    problem = admin_password_problem(new)
    if problem:
        message = re.sub(r"^admin_password", "The new password", problem)
        return error(400, "The password was not changed.", fields={"new": message})
    with admin.password_lock:
        the_box.run_blocking(lambda: set_admin_password(folder, new))
    ended = admin.sessions.end_all_except(g.admin_session.id)
    log.info("admin: password changed; %d other session(s) signed out", ended)
    return jsonify({"changed": True, "other_sessions_ended": ended,
                    "message": "The admin password is changed. Other signed-in browsers "
                               "were signed out."})


@dataclass(frozen=True)
class RestorePlan:
    """What restoring a backup changes, and what in it the admin page leaves alone."""

    changes: dict[str, str]  # form settings whose value differs, as written in ahoy.txt
    skipped: list[str]  # other keys in the file whose value differs: ahoy.txt only


def restore_plan(text: str, current: BoxConfig, mac: str | None = None) -> RestorePlan:
    """Compare a backup file's text with the settings in force. Raises ConfigError.

    Only settings the admin page may change are restored, and only those
    written in the file (a band written without a channel brings the file's
    channel for that band). The rest (network, interface, SSH key, pins, the
    admin password) is set only in ahoy.txt on the SD card: a mistake there
    could lock the admin out.
    """
    parsed = parse_file(text)
    backup = parsed.config(mac)
    written = list(parsed.lines)  # in the file's order
    if not written:
        raise ConfigError.about_file("the file sets nothing; is this an Ahoy config backup?")
    keys = [k for k in SETTINGS_FIELDS if k in written]
    if "band" in written and "channel" not in written and backup.band != current.band:
        keys.append("channel")
    changes = {k: format_value(backup, k) for k in keys
               if format_value(backup, k) != format_value(current, k)}
    skipped = [k for k in written if not KEYS[k].admin_page and (
        bool(getattr(backup, k)) if KEYS[k].secret
        else format_value(backup, k) != format_value(current, k))]
    return RestorePlan(changes, skipped)


def _skipped_message(skipped: list[str]) -> str | None:
    others = [k for k in skipped if not KEYS[k].secret]
    parts = []
    if others:
        parts.append(f"Not restored, because they are set only in ahoy.txt on the SD card: "
                     f"{', '.join(others)}.")
    if "admin_password" in skipped:
        parts.append("The admin password is never restored from a file; change it under "
                     "Admin password.")
    if "site_secret" in skipped:
        parts.append("The site secret is never restored from a file; write it into ahoy.txt.")
    return " ".join(parts) or None


def power() -> Any:
    action = json_body().get("action")
    if action not in (REBOOT, SHUTDOWN):
        return error(400, "Choose reboot or shutdown.")
    if box().settings.dev:
        return jsonify({"done": False,
                        "message": f"Development mode: the box would {action} now; "
                                   "nothing was done."})
    request_privileged(action)
    message = ("The box restarts now. This page comes back in about a minute." if
               action == REBOOT else
               "The box shuts down now. Wait until its lights stay dark for ten seconds "
               "before pulling the plug.")
    return jsonify({"done": True, "message": message})


def _backup_text() -> bytes:
    settings = box().settings
    if settings.box_config is not None:
        try:
            return settings.box_config.read_bytes()
        except OSError:
            pass
    return format_config(config_in_force()).encode()


def backup() -> Response:
    stamp = time.strftime("%Y%m%d")
    response = Response(_backup_text(), mimetype="text/plain; charset=utf-8")
    name = f"ahoy-{box().settings.box_name}-{stamp}.txt"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def restore() -> Any:
    data = upload("file")
    if not data:
        return error(400, "Choose a backup file (ahoy.txt) to restore.")
    current = effective_config()
    try:
        plan = restore_plan(decode_config(data), current, interface_mac(current.interface))
        new = request_changes(data_dir(), plan.changes) if plan.changes else current
    except ConfigError as exc:
        return error(400, "Nothing was restored: the file has problems.",
                     problems=exc.messages)
    answer = {"restored": bool(plan.changes), "changed": sorted(plan.changes),
              "skipped": plan.skipped, "skipped_message": _skipped_message(plan.skipped)}
    if not plan.changes:
        return jsonify({**answer, "notes": [],
                        "message": "Nothing to restore: the box already has the settings "
                                   "this page can change."})
    log.info("admin: restored a config backup: %s", ", ".join(sorted(plan.changes)))
    dev = box().settings.dev
    if not dev:
        request_privileged(APPLY)
    restored = ", ".join(FIELD_LABELS[k] for k in SETTINGS_FIELDS if k in plan.changes)
    return jsonify({**answer, "notes": disconnect_notes(list(plan.changes), new),
                    "message": f"Restored: {restored}. Development mode: nothing is applied "
                               "to this machine." if dev else
                               f"Restored: {restored}. The box applies them in a few seconds."})


def factory_reset() -> Any:
    confirm = json_body().get("confirm")
    if not isinstance(confirm, str) or confirm.strip().upper() != FACTORY_RESET_WORD:
        return error(400, f"Type {FACTORY_RESET_WORD} to confirm the factory reset.",
                     fields={"confirm": f"Type {FACTORY_RESET_WORD} here."})
    log.warning("admin: factory reset requested")
    if box().settings.dev:
        return jsonify({"done": False,
                        "message": "Development mode: the box would wipe its data partition "
                                   "and restart now; nothing was done."})
    request_privileged(FACTORY_RESET)
    return jsonify({"done": True,
                    "message": "The box wipes its settings, messages and certificates and "
                               "restarts. Afterwards it is like new: see the SD card for the "
                               "new admin password."})
