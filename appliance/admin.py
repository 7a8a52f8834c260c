"""The admin page: the UI in webclient/admin at /admin/, and its JSON API at /admin/api/.

Every API call except reading the sign-in state and signing in needs a
session; every change also needs the session's CSRF token and must come from
the page's own origin. Changes that need root (settings, clock, power, factory
reset) are handed to the privileged apply step as request files; in
development mode nothing touches the machine.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    request,
    send_from_directory,
)
from flask.blueprints import BlueprintSetupState

from provisioning.config import ADMIN_KEYS, KEYS, ConfigError, Problem, Service

from . import adminlog
from .adminauth import (
    LoginLimiter,
    Session,
    Sessions,
    cookie_name,
    lockout_message,
    same_origin,
)
from .box import Box, box_of

log = logging.getLogger(__name__)

blueprint = Blueprint("admin", __name__)

# Fields of the settings form, in the order the page shows them (keys of ahoy.txt),
# and their labels: both from the config file's table, provisioning.config.KEYS.
SETTINGS_FIELDS = ADMIN_KEYS
FIELD_LABELS = {name: str(KEYS[name].label) for name in SETTINGS_FIELDS}
FACTORY_RESET_WORD = "ERASE"
MAX_UPLOAD = 64 * 1024
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Endpoints reachable without a session.
PUBLIC_ENDPOINTS = {"admin.page", "admin.page_slash", "admin.asset", "admin.session_info",
                    "admin.login"}


@dataclass
class AdminState:
    """Per-app admin state: who is signed in and who is typing wrong passwords."""

    sessions: Sessions = field(default_factory=Sessions)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    logs: adminlog.LogBuffer = field(default_factory=adminlog.install)
    clock: Callable[[], float] = time.monotonic
    # scrypt takes ~16 MiB per check: one at a time, which also slows guessing.
    password_lock: threading.Lock = field(default_factory=threading.Lock)


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    state.app.extensions["ahoy_admin"] = AdminState()


def admin_state(app: Flask) -> AdminState:
    admin: AdminState = app.extensions["ahoy_admin"]
    return admin


def ensure_admin_password(data_dir: Path) -> str | None:
    """Make up an admin password if the box has none; return it so it can be printed.

    On the box the apply step does this at first boot (and writes the password
    next to ahoy.txt); this covers development, where nothing else does: the
    note goes into the data folder. Returns None when a password already exists.
    """
    from provisioning.credentials import (
        generate_admin_password,
        has_admin_password,
        set_admin_password,
        write_admin_password_note,
    )

    if has_admin_password(data_dir):
        return None
    password = generate_admin_password()
    set_admin_password(data_dir, password)
    write_admin_password_note(
        data_dir, password, "Made up for development at the service's first start."
    )
    return password


# --- responses and the guard every request passes


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _session_id() -> str | None:
    return request.cookies.get(cookie_name(request.is_secure))


@blueprint.before_request
def guard() -> Any:
    if request.endpoint in PUBLIC_ENDPOINTS and request.method in SAFE_METHODS:
        return None
    if request.method not in SAFE_METHODS and not same_origin(
        request.headers.get("Origin"), request.headers.get("Referer"),
        request.scheme, request.host,
    ):
        log.warning("admin: refused a %s to %s from another origin (%s)", request.method,
                    request.path, request.headers.get("Origin") or "no Origin")
        return _error(403, "This change did not come from the admin page itself. "
                           "Reload the admin page and try again.")
    if request.endpoint == "admin.login":
        return None
    admin = admin_state(current_app)
    session = admin.sessions.get(_session_id(), admin.clock())
    if session is None:
        return _error(401, "Please sign in.", signed_in=False)
    if request.method not in SAFE_METHODS:
        token = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
        if not session.csrf_ok(token):
            return _error(403, "The page's security token is missing or out of date. "
                               "Reload the admin page and try again.")
    g.admin_session = session
    return None


@blueprint.after_request
def admin_headers(response: Response) -> Response:
    # The app default is no-referrer, under which browsers send "Origin: null" on
    # same-origin POSTs; the admin page needs its real origin for the check above.
    response.headers["Referrer-Policy"] = "same-origin"
    if request.path.startswith("/admin/api/"):
        response.headers["Cache-Control"] = "no-store"
    else:
        response.headers.setdefault("Cache-Control", "no-cache")
    return response


def _box() -> Box:
    return box_of(current_app)


def _data_dir() -> Path:
    return _box().settings.data_dir


def _request_privileged(action: str, payload: dict[str, Any] | None = None) -> None:
    """Hand `action` to the root apply step (never called in development mode)."""
    box = _box()
    box.request(action, payload)
    log.info("admin: asked the system to %s", action)


# --- the page


@blueprint.get("/admin")
def page() -> Any:
    return redirect("/admin/", code=308)


@blueprint.get("/admin/")
def page_slash() -> Response:
    return _asset("index.html")


@blueprint.get("/admin/<path:path>")
def asset(path: str) -> Response:
    if path.startswith("api/"):
        response, status = _error(404, "There is no such admin call.")
        response.status_code = status
        return response
    return _asset(path)


def _asset(path: str) -> Response:
    folder = _box().settings.webclient_dir / "admin"
    # send_from_directory refuses paths that leave the folder (404).
    return send_from_directory(folder, path)


# --- signing in and out


def _password_hint(settings: Any) -> str:
    if settings.dev:
        return ("No admin password is set yet. Restart the service with "
                "`python -m appliance serve --dev`: it makes one and prints it at first start.")
    return ("No admin password is set yet. It is made at the box's first start and written to "
            "ahoy-admin-password.txt on the SD card's boot partition. To choose one, put "
            "admin_password = ... into ahoy.txt on the boot partition and restart the box.")


@blueprint.get("/admin/api/session")
def session_info() -> Response:
    from provisioning.credentials import has_admin_password

    box = _box()
    admin = admin_state(current_app)
    session = admin.sessions.get(_session_id(), admin.clock())
    info: dict[str, Any] = {
        "signed_in": session is not None,
        "dev": box.settings.dev,
        "box_name": box.settings.box_name,
        "has_password": has_admin_password(box.settings.data_dir),
        "secure": request.is_secure,
        "https_port": box.settings.https_port,
    }
    if not info["has_password"]:
        info["password_hint"] = _password_hint(box.settings)
    if session is not None:
        info["csrf_token"] = session.csrf_token
    return jsonify(info)


def _client_address() -> str:
    return request.remote_addr or "unknown"


@blueprint.post("/admin/api/login")
def login() -> Any:
    from provisioning.credentials import has_admin_password, verify_admin_password

    box = _box()
    admin = admin_state(current_app)
    client = _client_address()
    wait = admin.limiter.wait_seconds(client, admin.clock())
    if wait:
        return _locked_out(wait)
    password = _json_body().get("password")
    if not isinstance(password, str) or not password or len(password) > 1024:
        return _error(400, "Type the admin password.")
    if not has_admin_password(box.settings.data_dir):
        return _error(409, _password_hint(box.settings), no_password=True)
    with admin.password_lock:
        # Someone else may have locked this address out while we waited.
        wait = admin.limiter.wait_seconds(client, admin.clock())
        if wait:
            return _locked_out(wait)
        # scrypt is CPU-bound on purpose: off the event loop, so nobody else waits.
        ok = box.run_blocking(lambda: verify_admin_password(box.settings.data_dir, password))
    now = admin.clock()
    if not ok:
        lockout = admin.limiter.failed(client, now)
        log.warning("admin: wrong password from %s", client)
        if lockout:
            return _locked_out(lockout)
        return _error(401, "Wrong password.")
    admin.limiter.succeeded(client)
    session = admin.sessions.create(now)
    log.info("admin: signed in from %s", client)
    response = jsonify({"signed_in": True, "csrf_token": session.csrf_token})
    _set_session_cookie(response, session)
    return response


def _locked_out(seconds: int) -> tuple[Response, int]:
    admin = admin_state(current_app)
    everyone = admin.limiter.box_wait_seconds(admin.clock()) >= seconds
    response, status = _error(429, lockout_message(seconds, everyone), retry_after=seconds)
    response.headers["Retry-After"] = str(seconds)
    return response, status


def _set_session_cookie(response: Response, session: Session) -> None:
    secure = request.is_secure
    response.set_cookie(
        cookie_name(secure), session.id, httponly=True, samesite="Strict", secure=secure,
        path="/" if secure else "/admin",
    )


@blueprint.post("/admin/api/logout")
def logout() -> Response:
    admin = admin_state(current_app)
    admin.sessions.end(g.admin_session.id)
    response = jsonify({"signed_in": False})
    secure = request.is_secure
    response.delete_cookie(cookie_name(secure), path="/" if secure else "/admin",
                           secure=secure, httponly=True, samesite="Strict")
    return response


@blueprint.post("/admin/api/password")
def change_password() -> Any:
    from provisioning.config import admin_password_problem
    from provisioning.credentials import set_admin_password, verify_admin_password

    admin = admin_state(current_app)
    data = _json_body()
    old, new = data.get("old"), data.get("new")
    if not isinstance(old, str) or not isinstance(new, str):
        return _error(400, "Type the current password and the new one.")
    client = _client_address()
    wait = admin.limiter.wait_seconds(client, admin.clock())
    if wait:
        return _locked_out(wait)
    with admin.password_lock:
        ok = len(old) <= 1024 and verify_admin_password(_data_dir(), old)
    if not ok:
        lockout = admin.limiter.failed(client, admin.clock())
        if lockout:
            return _locked_out(lockout)
        return _error(400, "The password was not changed.",
                      fields={"old": "That is not the current password."})
    problem = admin_password_problem(new)
    if problem:
        message = re.sub(r"^admin_password", "The new password", problem)
        return _error(400, "The password was not changed.", fields={"new": message})
    set_admin_password(_data_dir(), new)
    ended = admin.sessions.end_all_except(g.admin_session.id)
    log.info("admin: password changed; %d other session(s) signed out", ended)
    return jsonify({"changed": True, "other_sessions_ended": ended,
                    "message": "The admin password is changed. Other signed-in browsers "
                               "were signed out."})


# --- dashboard


def _current_config() -> Any:
    from provisioning.configstore import current_config

    return current_config(_data_dir())


def wifi_qr_text(ssid: str, passphrase: str) -> str:
    """The "join this Wi-Fi" QR payload phones' cameras understand (WIFI:...;;)."""

    def esc(value: str) -> str:
        return re.sub(r'([\\;,:"])', r"\\\1", value)

    if passphrase:
        return f"WIFI:T:WPA;S:{esc(ssid)};P:{esc(passphrase)};;"
    return f"WIFI:T:nopass;S:{esc(ssid)};;"


def _wifi() -> dict[str, Any]:
    settings = _box().settings
    if settings.wifi_ssid:
        ssid, passphrase = settings.wifi_ssid, settings.wifi_passphrase or ""
    else:
        config = _current_config()
        ssid, passphrase = config.wifi_name, config.wifi_passphrase
    text = wifi_qr_text(ssid, passphrase)
    return {"ssid": ssid, "passphrase": passphrase or None, "open": not passphrase,
            "qr_url": "/api/qr.svg?text=" + quote(text, safe="")}


def _clients() -> tuple[list[dict[str, Any]], str | None]:
    settings = _box().settings
    interface = settings.hotspot_interface
    if settings.dev or not interface:
        return [], None
    from .netwatch import read_clients

    try:
        clients = read_clients(interface, settings.data_dir / "dnsmasq.leases")
    except Exception as exc:  # pyroute2 missing rights, interface gone, ...
        log.warning("admin: cannot list Wi-Fi clients: %s", exc)
        return [], f"The list of devices could not be read ({exc})."
    return [{"mac": c.mac, "ip": c.ip, "hostname": c.hostname, "state": c.state}
            for c in clients], None


def _health() -> dict[str, Any] | None:
    from .health import read_health

    try:
        h = read_health(_data_dir())
    except (OSError, ValueError, IndexError) as exc:
        log.warning("admin: cannot read the box's health: %s", exc)
        return None
    return {
        "uptime_s": h.uptime_seconds,
        "cpu_temperature_c": h.cpu_temperature_c,
        "memory_total": h.memory_total_bytes,
        "memory_available": h.memory_available_bytes,
        "memory_used_percent": round(h.memory_used_percent, 1),
        "disk_total": h.disk_total_bytes,
        "disk_free": h.disk_free_bytes,
        "disk_used_percent": round(h.disk_used_percent, 1),
        "load_average": list(h.load_average),
    }


@blueprint.get("/admin/api/dashboard")
def dashboard() -> Response:
    from provisioning.configstore import read_status

    box = _box()
    hub = box.hub
    clients, clients_problem = _clients()
    return jsonify({
        "box_name": box.settings.box_name,
        "dev": box.settings.dev,
        "time_ms": int(time.time() * 1000),
        "service_uptime_s": int(time.time() - box.started),
        "wifi": _wifi(),
        "clients": clients,
        "clients_problem": clients_problem,
        "users": hub.online_users(),
        "rooms": hub.all_rooms(),
        "calls": hub.calls_in_progress(),
        "counts": hub.snapshot(),
        "health": _health(),
        "hotspot": box.status,
        "config_status": read_status(box.settings.data_dir),
    })


# --- settings


def _pending_changes() -> dict[str, str]:
    import json

    from provisioning.datadir import DataDir

    try:
        pending = json.loads(DataDir(_data_dir()).requested_changes.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(pending, dict):
        return {}
    return {k: v for k, v in pending.items() if isinstance(k, str) and isinstance(v, str)}


def _effective_config() -> Any:
    """The config in force plus the changes saved here and not yet applied."""
    from provisioning.config import change_config

    config = _current_config()
    pending = _pending_changes()
    if pending:
        try:
            config = change_config(config, pending)
        except ConfigError:
            pass
    return config


def _settings_values(config: Any) -> dict[str, str]:
    from provisioning.config import format_value

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


def disconnect_notes(changed: list[str], new: Any) -> list[str]:
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


@dataclass(frozen=True)
class RestorePlan:
    """What restoring a backup changes, and what in it the admin page leaves alone."""

    changes: dict[str, str]  # form settings whose value differs, as written in ahoy.txt
    skipped: list[str]  # other keys in the file whose value differs: ahoy.txt only


def restore_plan(text: str, current: Any, mac: str | None = None) -> RestorePlan:
    """Compare a backup file's text with the settings in force. Raises ConfigError.

    Only settings the admin page may change are restored, and only those
    written in the file (a band written without a channel brings the file's
    channel for that band). The rest (network, interface, SSH key, pins, the
    admin password) is set only in ahoy.txt on the SD card: a mistake there
    could lock the admin out.
    """
    from provisioning.config import format_value, parse_file

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


@blueprint.get("/admin/api/settings")
def get_settings() -> Response:
    from provisioning import regulatory

    config = _effective_config()
    return jsonify({
        "values": _settings_values(config),
        "labels": FIELD_LABELS,
        "pending": bool(_pending_changes()),
        "channels": {band: list(regulatory.allowed_channels(config.country, band))
                     for band in regulatory.BANDS},
        "dev": _box().settings.dev,
    })


@blueprint.post("/admin/api/settings")
def save_settings() -> Any:
    from provisioning.configstore import request_changes

    data = _json_body()
    unknown = [k for k in data if k not in SETTINGS_FIELDS]
    if unknown:
        return _error(400, f"These cannot be set here: {', '.join(sorted(unknown))}.")
    submitted = {k: ("" if v is None else str(v)).strip() if k != "wifi_passphrase"
                 else ("" if v is None else str(v)) for k, v in data.items()}
    current = _settings_values(_effective_config())
    changes = {k: v for k, v in submitted.items() if v != current[k]}
    if not changes:
        return jsonify({"saved": False, "message": "Nothing changed.", "notes": []})
    try:
        new = request_changes(_data_dir(), changes)
    except ConfigError as exc:
        fields, general = field_errors(exc.problems)
        return _error(400, "Nothing was saved: fix the marked settings.", fields=fields,
                      general=general)
    notes = disconnect_notes(list(changes), new)
    log.info("admin: settings changed: %s", ", ".join(sorted(changes)))
    dev = _box().settings.dev
    if not dev:
        _request_privileged("apply")
    message = ("Saved. Development mode: nothing is applied to this machine." if dev
               else "Saved. The box applies the new settings in a few seconds.")
    return jsonify({"saved": True, "message": message, "notes": notes,
                    "changed": sorted(changes), "values": _settings_values(new)})


# --- moderation


@blueprint.get("/admin/api/people")
def people() -> Response:
    hub = _box().hub
    return jsonify({"users": hub.online_users(), "rooms": hub.all_rooms(),
                    "calls": hub.calls_in_progress()})


@blueprint.get("/admin/api/rooms/<room_id>/messages")
def room_messages(room_id: str) -> Response:
    return jsonify({"messages": _box().hub.recent_messages(f"room:{room_id}", 50)})


@blueprint.delete("/admin/api/users/<user_id>")
def remove_user(user_id: str) -> Any:
    if not _box().hub.remove_user(user_id):
        return _error(404, "That user is not known to the box (any more).")
    log.info("admin: removed user %s", user_id)
    return jsonify({"removed": True})


@blueprint.delete("/admin/api/rooms/<room_id>")
def close_room(room_id: str) -> Any:
    if not _box().hub.close_room(room_id):
        return _error(404, "That room does not exist (any more).")
    log.info("admin: closed room %s", room_id)
    return jsonify({"closed": True})


@blueprint.delete("/admin/api/messages/<conv>/<int:seq>")
def delete_message(conv: str, seq: int) -> Any:
    if not _box().hub.delete_message(conv, seq):
        return _error(404, "That message is already gone.")
    log.info("admin: deleted message %d in %s", seq, conv)
    return jsonify({"deleted": True})


# --- certificates


def _cert_info(path: Path) -> dict[str, Any] | None:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "names": names, "expires": cert.not_valid_after_utc.isoformat()}


def _custom_paths() -> tuple[Path, Path]:
    tls_dir = _box().settings.tls_dir
    return tls_dir / "custom.crt", tls_dir / "custom.key"


@blueprint.get("/admin/api/certificates")
def certificates() -> Response:
    tls_dir = _box().settings.tls_dir
    custom_cert, custom_key = _custom_paths()
    custom = _cert_info(custom_cert) if custom_key.exists() else None
    return jsonify({
        "ca": _cert_info(tls_dir / "ahoy-ca.crt"),
        "box": _cert_info(tls_dir / "server.crt"),
        "custom": custom,
        "in_use": "custom" if custom else "box",
        "downloads": {"ca": "/ca.crt", "ios_profile": "/ahoy.mobileconfig"},
    })


def _upload(name: str) -> bytes:
    file = request.files.get(name)
    if file is not None:
        return file.read(MAX_UPLOAD + 1)
    return request.form.get(name, "").encode()


@blueprint.post("/admin/api/certificates/custom")
def upload_certificate() -> Any:
    from provisioning.datadir import write_file
    from provisioning.tls import CertificateProblem, validate_uploaded_certificate

    cert_pem, key_pem = _upload("certificate"), _upload("key")
    if not cert_pem or not key_pem:
        return _error(400, "Choose both files: the certificate (with its chain) and its "
                           "private key.")
    if len(cert_pem) > MAX_UPLOAD or len(key_pem) > MAX_UPLOAD:
        return _error(400, f"Each file must be at most {MAX_UPLOAD // 1024} KiB.")
    try:
        uploaded = validate_uploaded_certificate(cert_pem, key_pem)
    except CertificateProblem as exc:
        message = str(exc)
        return _error(400, message[:1].upper() + message[1:] + ".")
    cert_path, key_path = _custom_paths()
    write_file(key_path, key_pem, mode=0o600)
    write_file(cert_path, cert_pem, mode=0o644)
    log.info("admin: uploaded a certificate for %s", ", ".join(uploaded.dns_names))
    return jsonify({
        "saved": True,
        "names": uploaded.dns_names,
        "expires": uploaded.not_after.isoformat(),
        "message": "Saved. The box uses it from its next restart (Power: restart the box).",
    })


@blueprint.delete("/admin/api/certificates/custom")
def remove_certificate() -> Response:
    for path in _custom_paths():
        path.unlink(missing_ok=True)
    log.info("admin: removed the uploaded certificate")
    return jsonify({"removed": True,
                    "message": "Removed. The box uses its own certificate from its next "
                               "restart."})


# --- clock


@blueprint.get("/admin/api/clock")
def get_clock() -> Response:
    return jsonify({"time_ms": int(time.time() * 1000)})


@blueprint.post("/admin/api/clock")
def set_clock() -> Any:
    # The root side has the last word on the clock: the same bounds, the same words.
    from provisioning.requests import clock_problem

    value = _json_body().get("time_ms")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _error(400, "Send the browser's time as time_ms (milliseconds since 1970).")
    problem = clock_problem(value / 1000)
    if problem:
        return _error(400, problem)
    when = dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    if _box().settings.dev:
        return jsonify({"applied": False, "time_ms": int(time.time() * 1000),
                        "message": "Development mode: this machine's clock was not changed."})
    try:
        time.clock_settime(time.CLOCK_REALTIME, value / 1000)
        applied = True
    except (PermissionError, OSError, AttributeError):
        # The service lacks CAP_SYS_TIME: the privileged step sets it.
        _request_privileged("set-clock", {"time": value / 1000})
        applied = False
    log.info("admin: clock set to %s UTC from the admin's browser", f"{when:%Y-%m-%d %H:%M:%S}")
    return jsonify({"applied": applied, "time_ms": int(time.time() * 1000),
                    "message": "The box's clock is set." if applied
                    else "The box sets its clock in a moment."})


# --- logs


@blueprint.get("/admin/api/logs")
def logs() -> Response:
    from provisioning.configstore import read_status

    admin = admin_state(current_app)
    after = request.args.get("after", "0")
    records = admin.logs.records(int(after) if after.isdigit() else 0)
    box = _box()
    return jsonify({"records": records[-500:], "hotspot": box.status,
                    "config_status": read_status(box.settings.data_dir)})


# --- power, backup, restore, factory reset


@blueprint.post("/admin/api/power")
def power() -> Any:
    action = _json_body().get("action")
    if action not in ("reboot", "shutdown"):
        return _error(400, "Choose reboot or shutdown.")
    if _box().settings.dev:
        return jsonify({"done": False,
                        "message": f"Development mode: the box would {action} now; "
                                   "nothing was done."})
    _request_privileged(action)
    message = ("The box restarts now. This page comes back in about a minute." if
               action == "reboot" else
               "The box shuts down now. Wait until its lights stay dark for ten seconds "
               "before pulling the plug.")
    return jsonify({"done": True, "message": message})


def _backup_text() -> bytes:
    from provisioning.config import format_config

    settings = _box().settings
    if settings.box_config is not None:
        try:
            return settings.box_config.read_bytes()
        except OSError:
            pass
    return format_config(_current_config()).encode()


@blueprint.get("/admin/api/backup")
def backup() -> Response:
    stamp = time.strftime("%Y%m%d")
    response = Response(_backup_text(), mimetype="text/plain; charset=utf-8")
    name = f"ahoy-{_box().settings.box_name}-{stamp}.txt"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@blueprint.post("/admin/api/restore")
def restore() -> Any:
    from provisioning.config import decode_config
    from provisioning.configstore import interface_mac, request_changes

    data = _upload("file")
    if not data:
        return _error(400, "Choose a backup file (ahoy.txt) to restore.")
    current = _effective_config()
    try:
        plan = restore_plan(decode_config(data), current, interface_mac(current.interface))
        new = request_changes(_data_dir(), plan.changes) if plan.changes else current
    except ConfigError as exc:
        return _error(400, "Nothing was restored: the file has problems.",
                      problems=exc.messages)
    answer = {"restored": bool(plan.changes), "changed": sorted(plan.changes),
              "skipped": plan.skipped, "skipped_message": _skipped_message(plan.skipped)}
    if not plan.changes:
        return jsonify({**answer, "notes": [],
                        "message": "Nothing to restore: the box already has the settings "
                                   "this page can change."})
    log.info("admin: restored a config backup: %s", ", ".join(sorted(plan.changes)))
    dev = _box().settings.dev
    if not dev:
        _request_privileged("apply")
    restored = ", ".join(FIELD_LABELS[k] for k in SETTINGS_FIELDS if k in plan.changes)
    return jsonify({**answer, "notes": disconnect_notes(list(plan.changes), new),
                    "message": f"Restored: {restored}. Development mode: nothing is applied "
                               "to this machine." if dev else
                               f"Restored: {restored}. The box applies them in a few seconds."})


@blueprint.post("/admin/api/factory-reset")
def factory_reset() -> Any:
    confirm = _json_body().get("confirm")
    if not isinstance(confirm, str) or confirm.strip().upper() != FACTORY_RESET_WORD:
        return _error(400, f"Type {FACTORY_RESET_WORD} to confirm the factory reset.",
                      fields={"confirm": f"Type {FACTORY_RESET_WORD} here."})
    log.warning("admin: factory reset requested")
    if _box().settings.dev:
        return jsonify({"done": False,
                        "message": "Development mode: the box would wipe its data partition "
                                   "and restart now; nothing was done."})
    _request_privileged("factory-reset")
    return jsonify({"done": True,
                    "message": "The box wipes its settings, messages and certificates and "
                               "restarts. Afterwards it is like new: see the SD card for the "
                               "new admin password."})
