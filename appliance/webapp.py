"""The phone web app: static files from webclient/app, served at the site root.

Sent gzip-compressed to browsers that take it, with strong ETags so a returning
phone revalidates instead of downloading again (see appliance.webfiles).

Scripts and style sheets are never kept under a stable name: the page (always
revalidated) names them under the app's version, `/v/<version>/app.js`, where
`<version>` is a hash of every file of the app. A file there never changes, so a
browser keeps it for a year without asking; after an update the page names a new
version and the browser fetches the new files at once, never an old script with a
new page. The scripts import each other by relative names (`./net.js`), so they
all come from the same version. The service worker (`sw.js`, revalidated) carries
the version too: a new version is a new worker with its own cache.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from .box import Box
from .webfiles import StaticFolder

blueprint = Blueprint("webapp", __name__)

# The page itself, the service worker and the manifest are revalidated at every
# load; scripts and style sheets under their stable names too (only old pages
# ask for those); the versioned ones are kept; other files (icons) for an hour.
_NO_CACHE = {"index.html", "sw.js", "manifest.webmanifest"}
_NO_CACHE_TYPES = (".js", ".css", ".html")
KEEP = "public, max-age=31536000, immutable"
# What the page names by its root path: its scripts and style sheets.
_PAGE_FILE = re.compile(rb'(src|href)="/([A-Za-z0-9_./-]+\.(?:js|css))"')
# The line of sw.js that says its version.
_WORKER_VERSION = re.compile(rb"^const VERSION = '[^']*';", flags=re.M)


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    box: Box = state.app.extensions["ahoy"]
    settings = box.settings
    # The page and the worker are sent naming the app's version.
    state.app.extensions["ahoy_webapp"] = StaticFolder(
        settings.webclient_dir / "app", settings.web_cache_dir / "app",
        {"index.html": page_naming, "sw.js": worker_of})


def files(app: Flask) -> StaticFolder:
    folder: StaticFolder = app.extensions["ahoy_webapp"]
    return folder


def page_naming(version: str, page: bytes) -> bytes:
    """The page with its scripts and style sheets under `/v/<version>/`."""
    return _PAGE_FILE.sub(lambda m: m[1] + b'="/v/' + version.encode() + b"/" + m[2] + b'"', page)


def worker_of(version: str, worker: bytes) -> bytes:
    return _WORKER_VERSION.sub(f"const VERSION = '{version}';".encode(), worker, count=1)


def _serve(path: str) -> Response:
    # StaticFolder refuses paths that leave the folder (404).
    response = files(current_app).send(path, request)
    if path in _NO_CACHE or path.endswith(_NO_CACHE_TYPES):
        response.headers["Cache-Control"] = "no-cache"
    else:
        response.headers["Cache-Control"] = "public, max-age=3600"
    if path == "sw.js":
        response.headers["Service-Worker-Allowed"] = "/"
    return response


@blueprint.get("/")
def index() -> Response:
    return _serve("index.html")


@blueprint.get("/v/<version>/<path:path>")
def versioned(version: str, path: str) -> Response:
    """A file of the app's `version`; a page of an older version (open before an
    update) that asks for a file it has not loaded yet gets the current one,
    revalidated, since the old one is gone."""
    folder = files(current_app)
    response = folder.send(path, request)
    response.headers["Cache-Control"] = KEEP if folder.is_version(version) else "no-cache"
    return response


@blueprint.get("/<path:path>")
def asset(path: str) -> Response:
    return _serve(path)
