"""Signing in and out (webclient/admin/main.js), and the page's own files.

Signing in is rate-limited per address and for the whole box; the password
check (scrypt) runs one at a time, off the event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response, current_app, g, jsonify, redirect, request

from provisioning.credentials import (
    generate_admin_password,
    has_admin_password,
    set_admin_password,
    verify_admin_password,
    write_admin_password_note,
)

from ..settings import Settings
from .access import (
    admin_state,
    box,
    client_address,
    error,
    json_body,
    locked_out,
    log,
    session_id,
)
from .auth import Session, cookie_name


def ensure_admin_password(data_dir: Path) -> str | None:
    """Make up an admin password if the box has none; return it so it can be printed.

    On the box the apply step does this at first boot (and writes the password
    next to ahoy.txt); this covers development, where nothing else does: the
    note goes into the data folder. Returns None when a password already exists.
    """
    if has_admin_password(data_dir):
        return None
    password = generate_admin_password()
    set_admin_password(data_dir, password)
    write_admin_password_note(
        data_dir, password, "Made up for development at the service's first start."
    )
    return password


# --- the page


def page() -> Any:
    return redirect("/admin/", code=308)


def page_slash() -> Response:
    return _asset("index.html")


def asset(path: str) -> Response:
    if path.startswith("api/"):
        response, status = error(404, "There is no such admin call.")
        response.status_code = status
        return response
    return _asset(path)


def _asset(path: str) -> Response:
    # StaticFolder refuses paths that leave the folder (404).
    return admin_state(current_app).files.send(path, request)


# --- signing in and out


def _password_hint(settings: Settings) -> str:
    if settings.dev:
        return ("No admin password is set yet. Restart the service with "
                "`python -m appliance serve --dev`: it makes one and prints it at first start.")
    return ("No admin password is set yet. It is made at the box's first start and written to "
            "ahoy-admin-password.txt on the SD card's boot partition. To choose one, put "
            "admin_password = ... into ahoy.txt on the boot partition and restart the box.")


def session_info() -> Response:
    the_box = box()
    admin = admin_state(current_app)
    session = admin.sessions.get(session_id(), admin.clock())
    info: dict[str, Any] = {
        "signed_in": session is not None,
        "dev": the_box.settings.dev,
        "box_name": the_box.settings.box_name,
        "has_password": has_admin_password(the_box.settings.data_dir),
        "secure": request.is_secure,
        "https_port": the_box.settings.https_port,
    }
    if not info["has_password"]:
        info["password_hint"] = _password_hint(the_box.settings)
    if session is not None:
        info["csrf_token"] = session.csrf_token
    return jsonify(info)


def login() -> Any:
    the_box = box()
    admin = admin_state(current_app)
    client = client_address()
    wait = admin.limiter.wait_seconds(client, admin.clock())
    if wait:
        return locked_out(wait)
    password = json_body().get("password")
    if not isinstance(password, str) or not password or len(password) > 1024:
        return error(400, "Type the admin password.")
    data_dir = the_box.settings.data_dir
    if not has_admin_password(data_dir):
        return error(409, _password_hint(the_box.settings), no_password=True)
    with admin.password_lock:
        # Someone else may have locked this address out while we waited.
        wait = admin.limiter.wait_seconds(client, admin.clock())
        if wait:
            return locked_out(wait)
        # scrypt is CPU-bound on purpose: off the event loop, so nobody else waits.
        ok = the_box.run_blocking(lambda: verify_admin_password(data_dir, password))
    now = admin.clock()
    if not ok:
        lockout = admin.limiter.failed(client, now)
        log.warning("admin: wrong password from %s", client)
        if lockout:
            return locked_out(lockout)
        return error(401, "Wrong password.")
    admin.limiter.succeeded(client)
    session = admin.sessions.create(now)
    log.info("admin: signed in from %s", client)
    response = jsonify({"signed_in": True, "csrf_token": session.csrf_token})
    _set_session_cookie(response, session)
    return response


def _set_session_cookie(response: Response, session: Session) -> None:
    secure = request.is_secure
    response.set_cookie(
        cookie_name(secure), session.id, httponly=True, samesite="Strict", secure=secure,
        path="/" if secure else "/admin",
    )


def logout() -> Response:
    admin = admin_state(current_app)
    admin.sessions.end(g.admin_session.id)
    response = jsonify({"signed_in": False})
    secure = request.is_secure
    response.delete_cookie(cookie_name(secure), path="/" if secure else "/admin",
                           secure=secure, httponly=True, samesite="Strict")
    return response
