"""Small JSON/HTTP endpoints: health, box info, rooms, QR codes, the CA file."""

from __future__ import annotations

import io
import time
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_file

from . import __version__, box_of

blueprint = Blueprint("api", __name__)

MAX_QR_TEXT = 600


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
    return jsonify(state)


def _base_urls() -> tuple[str, str]:
    settings = box_of(current_app).settings
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    http = f"http://{host}" + ("" if settings.http_port == 80 else f":{settings.http_port}")
    https = f"https://{host}" + ("" if settings.https_port == 443 else f":{settings.https_port}")
    return http, https


@blueprint.get("/api/info")
def info() -> Response:
    box = box_of(current_app)
    settings = box.settings
    http_url, https_url = _base_urls()
    wifi = None
    if settings.wifi_ssid:
        wifi = {"ssid": settings.wifi_ssid, "passphrase": settings.wifi_passphrase or None}
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
    segno.make(text, error="m").save(buf, kind="svg", scale=6, border=2, dark="#000",
                                     light="#fff", xmldecl=False)
    response = Response(buf.getvalue(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@blueprint.get("/ca.crt")
def ca_certificate() -> Response:
    path = box_of(current_app).settings.tls_dir / "ahoy-ca.crt"
    if not path.exists():
        abort(404, "This box has no certificate authority yet.")
    # application/x-x509-ca-cert makes Android offer to install it as a CA.
    return send_file(path, mimetype="application/x-x509-ca-cert", as_attachment=True,
                     download_name="ahoy-ca.crt")
