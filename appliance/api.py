"""Small JSON/HTTP endpoints: health, box info, rooms, QR codes, the CA file."""

from __future__ import annotations

import io
import ipaddress
import json
import os
import re
import threading
import time
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    request,
    send_file,
    send_from_directory,
)

from . import __version__
from .box import box_of

blueprint = Blueprint("api", __name__)

MAX_QR_TEXT = 600
_USER_ID = re.compile(r"u_[A-Za-z0-9]{1,40}")
_CODE = re.compile(r"[A-Za-z0-9_-]{8,64}")
# One picture decodes at a time: a 12-megapixel one takes some 50 MB while it does.
_decoding = threading.Lock()


@blueprint.get("/healthz")
def healthz() -> Response:
    box = box_of(current_app)
    state: dict[str, Any] = {
        "status": "ok",
        "version": __version__,
        "dev": box.settings.dev,
        "time": int(time.time()),
        **box.hub.snapshot(),
        **box.status,
    }
    if box.site is not None:
        state["site"] = box.site.health()
    return jsonify(state)


def base_urls() -> tuple[str, str]:
    """This request's box as (http, https) base addresses, under the name the phone used."""
    settings = box_of(current_app).settings
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    http = f"http://{host}" + ("" if settings.http_port == 80 else f":{settings.http_port}")
    https = f"https://{host}" + ("" if settings.https_port == 443 else f":{settings.https_port}")
    return http, https


def _joined_the_wifi(address: str | None) -> bool:
    """Whether this client is a phone on the hotspot (or the box itself).

    A phone on the hotspot typed the passphrase to get there, so showing it
    again (for the share-Wi-Fi QR code) tells it nothing new; anyone reaching
    the box some other way (a cable, another network) does not get it.
    """
    network = box_of(current_app).settings.hotspot_network
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    return network is not None and ip in ipaddress.ip_network(network, strict=False)


@blueprint.get("/api/info")
def info() -> Response:
    box = box_of(current_app)
    settings = box.settings
    http_url, https_url = base_urls()
    wifi = None
    if settings.wifi_ssid:
        passphrase = settings.wifi_passphrase if _joined_the_wifi(request.remote_addr) else None
        wifi = {"ssid": settings.wifi_ssid, "passphrase": passphrase or None,
                "open": not settings.wifi_passphrase}
    return jsonify({
        "box_name": settings.box_name,
        "http_url": http_url,
        "https_url": https_url,
        "wifi": wifi,
        "ca_url": "/ca.crt",
        "version": __version__,
    })


@blueprint.get("/api/rooms")
def rooms() -> Response:
    return jsonify({"rooms": box_of(current_app).hub.public_rooms()})


@blueprint.get("/api/qr.svg")
def qr() -> Response:
    import segno

    text = request.args.get("text", "")
    if not text or len(text) > MAX_QR_TEXT:
        abort(400, f"text must be 1 to {MAX_QR_TEXT} characters")
    buf = io.BytesIO()
    # micro=False: many phone scanners cannot read Micro QR codes.
    segno.make(text, error="m", micro=False).save(buf, kind="svg", scale=6, border=2, dark="#000",
                                     light="#fff", xmldecl=False)
    response = Response(buf.getvalue(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def _user_from_bearer() -> str:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        abort(401, "Send your device token as 'Authorization: Bearer <token>'.")
    user_id = box_of(current_app).hub.user_for_token(header[7:].strip())
    if user_id is None:
        abort(401, "This device is not known to the box any more.")
    return user_id


def _json_error(status: int, code: str, message: str) -> Response:
    return Response(json.dumps({"error": message, "code": code}), status=status,
                    mimetype="application/json")


def _from_another_site() -> bool:
    """A real Origin that is not this page's (a missing or "null" one is a same-origin
    fetch under our no-referrer policy; the code or the token is what protects)."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return False
    return origin.lower().rstrip("/") not in {u.lower() for u in base_urls()} | {
        f"{request.scheme}://{request.host}".lower()}


@blueprint.post("/api/handoff")
def handoff_issue() -> Response:
    """A one-time code that carries the caller's identity to the other address
    (see appliance/handoff.py and docs/protocol.md, "Moving to the secure address")."""
    from .handoff import LIFETIME_S

    if _from_another_site():
        return _json_error(403, "origin", "Codes are handed out only to the box's own pages.")
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.startswith("Bearer ") else ""
    user_id = box_of(current_app).hub.user_for_token(token) if token else None
    if user_id is None:
        return _json_error(401, "bad_token", "This device is not known to the box; join first.")
    code = box_of(current_app).handoffs.issue(user_id, token)
    response = jsonify({"code": code, "expires_in": LIFETIME_S})
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.post("/api/handoff/redeem")
def handoff_redeem() -> Response:
    """Trade a code for the device token it carries, once."""
    from .handoff import HandoffRefused

    if _from_another_site():
        return _json_error(403, "origin", "Codes are taken only from the box's own pages.")
    if (request.content_length or 0) > 1024:
        return _json_error(413, "too_large", "A code is a short piece of text.")
    data = request.get_json(silent=True)
    code = data.get("code") if isinstance(data, dict) else None
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        return _json_error(400, "bad_request",
                           "Send the code from the link as {\"code\": \"...\"}.")
    box = box_of(current_app)
    try:
        user_id, token = box.handoffs.redeem(code)
    except HandoffRefused as e:
        return _json_error(410, e.code, e.message)
    if box.hub.user_for_token(token) != user_id:
        return _json_error(410, "removed",
                           "This identity was removed from the box; join with a name.")
    response = jsonify({"token": token, "user": box.hub.user_wire(user_id)})
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.post("/api/avatar")
def upload_avatar() -> Response:
    """Set the caller's profile picture (the body is the image file)."""
    from .avatars import AvatarError, reencode

    user_id = _user_from_bearer()
    data = request.get_data(cache=False)
    try:
        with _decoding:
            picture = box_of(current_app).run_blocking(lambda: reencode(data))
    except AvatarError as e:
        return Response(json.dumps({"error": str(e)}), status=400, mimetype="application/json")
    folder = box_of(current_app).settings.data_dir / "avatars"
    folder.mkdir(exist_ok=True)
    tmp = folder / f"{user_id}.tmp"
    tmp.write_bytes(picture)
    os.replace(tmp, folder / f"{user_id}.webp")
    user = box_of(current_app).hub.avatar_changed(user_id)
    return jsonify({"user": user})


@blueprint.get("/api/avatar/<user_id>")
def avatar(user_id: str) -> Response:
    if not _USER_ID.fullmatch(user_id):
        abort(404)
    folder = box_of(current_app).settings.data_dir / "avatars"
    response = send_from_directory(folder, f"{user_id}.webp", mimetype="image/webp")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@blueprint.get("/ca.crt")
def ca_certificate() -> Response:
    path = box_of(current_app).settings.tls_dir / "ahoy-ca.crt"
    if not path.exists():
        abort(404, "This box has no certificate authority yet.")
    # application/x-x509-ca-cert makes Android offer to install it as a CA.
    return send_file(path, mimetype="application/x-x509-ca-cert", as_attachment=True,
                     download_name="ahoy-ca.crt")
