"""The phone web app: static files from webclient/app, served at the site root."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, send_from_directory

from .box import box_of

blueprint = Blueprint("webapp", __name__)

# Files that must never be served stale: the page itself and the service worker.
_NO_CACHE = {"index.html", "sw.js", "manifest.webmanifest"}


def _serve(path: str) -> Response:
    folder = box_of(current_app).settings.webclient_dir / "app"
    # send_from_directory refuses paths that leave the folder.
    response = send_from_directory(folder, path)
    if path in _NO_CACHE:
        response.headers["Cache-Control"] = "no-cache"
    else:
        response.headers["Cache-Control"] = "public, max-age=3600"
    if path == "sw.js":
        response.headers["Service-Worker-Allowed"] = "/"
    return response


@blueprint.get("/")
def index() -> Response:
    return _serve("index.html")


@blueprint.get("/<path:path>")
def asset(path: str) -> Response:
    return _serve(path)
