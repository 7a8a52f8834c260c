"""What every admin screen shares: the guard each request passes and the JSON answers.

The guard lets only the page itself, its files and signing in through without
a session; every change also needs the session's CSRF token and must come from
the page's own origin. The decisions (sessions, tokens, lockouts, origins) are
in `auth.py`; this is their Flask edge, with the per-app admin state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, current_app, g, jsonify, make_response, request
from flask.blueprints import BlueprintSetupState

from provisioning.config import BoxConfig
from provisioning.configstore import current_config
from provisioning.requests import write_request

from ..box import Box, box_of
from ..protocol import HALF_CHARACTER, has_lone_surrogate
from ..webfiles import StaticFolder
from . import logbuffer
from .auth import LoginLimiter, Sessions, cookie_name, lockout_message, same_origin

# One logger for the whole admin page: the log screen shows its name.
log = logging.getLogger("appliance.admin")

MAX_UPLOAD = 64 * 1024
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Endpoints reachable without a session.
PUBLIC_ENDPOINTS = {"admin.page", "admin.page_slash", "admin.asset", "admin.session_info",
                    "admin.login"}


@dataclass
class AdminState:
    """Per-app admin state: the page's files, who is signed in and who is typing wrong
    passwords."""

    files: StaticFolder  # webclient/admin, sent compressed
    sessions: Sessions = field(default_factory=Sessions)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    logs: logbuffer.LogBuffer = field(default_factory=logbuffer.install)
    clock: Callable[[], float] = time.monotonic
    # scrypt takes ~16 MiB per check: one at a time, which also slows guessing.
    password_lock: threading.Lock = field(default_factory=threading.Lock)


def setup(state: BlueprintSetupState) -> None:
    """Give the app its admin state when the blueprint is registered."""
    the_box: Box = state.app.extensions["ahoy"]
    settings = the_box.settings
    state.app.extensions["ahoy_admin"] = AdminState(StaticFolder(
        settings.webclient_dir / "admin", settings.web_cache_dir / "admin"))


def admin_state(app: Flask) -> AdminState:
    admin: AdminState = app.extensions["ahoy_admin"]
    return admin


# --- answers and what a request carries


def error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def json_body() -> dict[str, Any]:
    """The request's JSON object ({} for anything else); text holding half of a
    character (a lone UTF-16 surrogate, which cannot be stored or hashed) is
    refused here with a 400, for every screen at once."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return {}
    if has_lone_surrogate(data):
        abort(make_response(error(400, HALF_CHARACTER)))
    return data


def upload(name: str) -> bytes:
    """An uploaded file (or form field) by name, read to at most MAX_UPLOAD + 1 bytes."""
    file = request.files.get(name)
    if file is not None:
        return file.read(MAX_UPLOAD + 1)
    return request.form.get(name, "").encode()


def session_id() -> str | None:
    return request.cookies.get(cookie_name(request.is_secure))


def client_address() -> str:
    return request.remote_addr or "unknown"


def locked_out(seconds: int) -> tuple[Response, int]:
    """The answer to a password tried while this address (or the whole box) is locked out."""
    admin = admin_state(current_app)
    everyone = admin.limiter.box_wait_seconds(admin.clock()) >= seconds
    response, status = error(429, lockout_message(seconds, everyone), retry_after=seconds)
    response.headers["Retry-After"] = str(seconds)
    return response, status


# --- the guard every request passes, and the headers every answer gets


def guard() -> Any:
    if request.endpoint in PUBLIC_ENDPOINTS and request.method in SAFE_METHODS:
        return None
    if request.method not in SAFE_METHODS and not same_origin(
        request.headers.get("Origin"), request.headers.get("Referer"),
        request.scheme, request.host,
    ):
        log.warning("admin: refused a %s to %s from another origin (%s)", request.method,
                    request.path, request.headers.get("Origin") or "no Origin")
        return error(403, "This change did not come from the admin page itself. "
                          "Reload the admin page and try again.")
    if request.endpoint == "admin.login":
        return None
    admin = admin_state(current_app)
    session = admin.sessions.get(session_id(), admin.clock())
    if session is None:
        return error(401, "Please sign in.", signed_in=False)
    if request.method not in SAFE_METHODS:
        token = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
        if not session.csrf_ok(token):
            return error(403, "The page's security token is missing or out of date. "
                              "Reload the admin page and try again.")
    g.admin_session = session
    return None


def admin_headers(response: Response) -> Response:
    # The app default is no-referrer, under which browsers send "Origin: null" on
    # same-origin POSTs; the admin page needs its real origin for the check above.
    response.headers["Referrer-Policy"] = "same-origin"
    if request.path.startswith("/admin/api/"):
        response.headers["Cache-Control"] = "no-store"
    else:
        response.headers.setdefault("Cache-Control", "no-cache")
    return response


# --- the box


def box() -> Box:
    return box_of(current_app)


def data_dir() -> Path:
    return box().settings.data_dir


def config_in_force() -> BoxConfig:
    return current_config(data_dir())


def request_privileged(action: str, payload: dict[str, Any] | None = None) -> None:
    """Hand `action` (a provisioning.requests action) to the root apply step
    (never called in development mode)."""
    write_request(data_dir(), action, payload)
    log.info("admin: asked the system to %s", action)
