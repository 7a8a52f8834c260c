"""The settings form (webclient/admin/settings.js): the keys of ahoy.txt the admin page
may change, checked with the config file's own rules, and who is disconnected by a change.

Saved changes wait in the data folder for the privileged apply step.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, jsonify

from provisioning import regulatory
from provisioning.config import (
    ADMIN_KEYS,
    KEYS,
    BoxConfig,
    ConfigError,
    Problem,
    Service,
    change_config,
    format_value,
)
from provisioning.configstore import request_changes
from provisioning.datadir import DataDir
from provisioning.requests import APPLY

from .access import box, config_in_force, data_dir, error, json_body, log, request_privileged

# Fields of the settings form, in the order the page shows them (keys of ahoy.txt),
# and their labels: both from the config file's table, provisioning.config.KEYS.
SETTINGS_FIELDS = ADMIN_KEYS
FIELD_LABELS = {name: str(KEYS[name].label) for name in SETTINGS_FIELDS}


def pending_changes() -> dict[str, str]:
    """Changes saved here that the privileged step has not applied yet."""
    try:
        pending = json.loads(DataDir(data_dir()).requested_changes.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(pending, dict):
        return {}
    return {k: v for k, v in pending.items() if isinstance(k, str) and isinstance(v, str)}


def effective_config() -> BoxConfig:
    """The config in force plus the changes saved here and not yet applied."""
    config = config_in_force()
    pending = pending_changes()
    if pending:
        try:
            config = change_config(config, pending)
        except ConfigError:
            pass
    return config


def settings_values(config: BoxConfig) -> dict[str, str]:
    return {key: format_value(config, key) for key in SETTINGS_FIELDS}


def field_errors(problems: list[Problem]) -> tuple[dict[str, str], list[str]]:
    """Sort validation problems by the form field they are about; the rest are general.

    A field's message names it by its label ("Channel 14 is not allowed ...").
    """
    fields: dict[str, str] = {}
    general: list[str] = []
    for problem in problems:
        key = problem.key
        if key is not None and key in SETTINGS_FIELDS and problem.text.startswith(key):
            text = FIELD_LABELS[key] + problem.text.removeprefix(key)
            fields[key] = f"{fields[key]} {text}" if key in fields else text
        else:
            general.append(str(problem))
    return fields, general


def _restarts(key: str, service: Service) -> bool:
    return key in KEYS and service in KEYS[key].restarts


def disconnect_notes(changed: list[str], new: BoxConfig) -> list[str]:
    """Who loses their connection when these settings change, for a person."""
    notes = []
    radio = [k for k in changed if _restarts(k, Service.HOTSPOT)]
    if radio:
        how = f"join \u201c{new.wifi_name}\u201d again"
        if "wifi_passphrase" in radio and new.wifi_passphrase:
            how += " with the new password"
        elif "wifi_passphrase" in radio:
            how += " (it is now an open network, no password)"
        notes.append(
            "Every phone and laptop on the Wi-Fi is disconnected while the hotspot restarts "
            f"(calls in progress end). They must {how}; chat history is kept."
        )
    if "box_name" in changed:
        notes.append(
            f"The box's address becomes {new.box_name}.local and its certificate is renewed; "
            "phones that installed the box certificate keep trusting it."
        )
    if any(_restarts(k, Service.CHAT) for k in changed):
        if not radio:
            notes.append(
                "Nobody leaves the Wi-Fi. The chat service restarts to take the change: "
                "phones reconnect by themselves within seconds and miss no messages."
            )
        notes.append("This page signs you out when the service restarts: sign in again.")
    if not notes:
        notes.append("Nobody is disconnected.")
    return notes


def get_settings() -> Response:
    config = effective_config()
    return jsonify({
        "values": settings_values(config),
        "labels": FIELD_LABELS,
        "pending": bool(pending_changes()),
        "channels": {band: list(regulatory.allowed_channels(config.country, band))
                     for band in regulatory.BANDS},
        "dev": box().settings.dev,
    })


def save_settings() -> Any:
    data = json_body()
    unknown = [k for k in data if k not in SETTINGS_FIELDS]
    if unknown:
        return error(400, f"These cannot be set here: {', '.join(sorted(unknown))}.")
    submitted = {k: ("" if v is None else str(v)).strip() if k != "wifi_passphrase"
                 else ("" if v is None else str(v)) for k, v in data.items()}
    current = settings_values(effective_config())
    changes = {k: v for k, v in submitted.items() if v != current[k]}
    if not changes:
        return jsonify({"saved": False, "message": "Nothing changed.", "notes": []})
    try:
        new = request_changes(data_dir(), changes)
    except ConfigError as exc:
        fields, general = field_errors(exc.problems)
        return error(400, "Nothing was saved: fix the marked settings.", fields=fields,
                     general=general)
    notes = disconnect_notes(list(changes), new)
    log.info("admin: settings changed: %s", ", ".join(sorted(changes)))
    dev = box().settings.dev
    if not dev:
        request_privileged(APPLY)
    message = ("Saved. Development mode: nothing is applied to this machine." if dev
               else "Saved. The box applies the new settings in a few seconds.")
    return jsonify({"saved": True, "message": message, "notes": notes,
                    "changed": sorted(changes), "values": settings_values(new)})
