"""The phone web app: static files from webclient/app, served at the site root.

Sent gzip-compressed to browsers that take it, with strong ETags so a returning
phone revalidates instead of downloading again (see appliance.webfiles).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from .box import Box
from .webfiles import StaticFolder

blueprint = Blueprint("webapp", __name__)

# The page itself, the service worker and the manifest are revalidated at every
# load; the other files may be used for an hour without asking.
_NO_CACHE = {"index.html", "sw.js", "manifest.webmanifest"}


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    box: Box = state.app.extensions["ahoy"]
    settings = box.settings
    state.app.extensions["ahoy_webapp"] = StaticFolder(settings.webclient_dir / "app",
                                                       settings.web_cache_dir / "app")


def files(app: Flask) -> StaticFolder:
    folder: StaticFolder = app.extensions["ahoy_webapp"]
    return folder


def _serve(path: str) -> Response:
    # StaticFolder refuses paths that leave the folder (404).
    response = files(current_app).send(path, request)
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
