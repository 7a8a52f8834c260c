"""Ahoy: the service that runs on the box.

`create_app(settings)` builds the Flask application: the phone web app, the
JSON API, the WebSocket hub (presence, rooms, chat, call signaling), the
captive portal and the admin page. Nothing happens at import time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:  # the terminal client imports this package without Flask
    from flask import Flask

__version__ = "0.1.0"


def run_here(work: Callable[[], Any]) -> Any:
    """Run `work` in the calling thread (development; `Box.run_blocking`'s default)."""
    return work()


@dataclass
class Box:
    """Everything the blueprints share, kept in `app.extensions["ahoy"]`."""

    settings: Settings
    hub: Any
    started: float = field(default_factory=time.time)
    # Facts about the hotspot and config, updated by the watchers.
    status: dict[str, Any] = field(default_factory=dict)
    # Runs blocking or CPU-heavy work (password hashing, decoding pictures) and
    # returns its result. In production a thread of gevent's pool, so the loop
    # serves everyone else meanwhile; in development the calling thread.
    run_blocking: Callable[[Callable[[], Any]], Any] = run_here

    def request(self, action: str, payload: dict[str, Any] | None = None) -> Path:
        """Ask the privileged apply step (a root systemd path unit) to do `action`.

        The service runs unprivileged; it only drops a request file into
        `<data_dir>/requests/`, which the root side validates and carries out.
        """
        from provisioning.datadir import write_file

        path = self.settings.data_dir / "requests" / f"{time.time_ns()}-{action}.json"
        write_file(path, json.dumps({"action": action, **(payload or {})}).encode(), mode=0o600)
        return path


def create_app(settings: Settings) -> Flask:
    from . import admin, api, portalweb, webapp, ws
    from .hub import Hub
    from .ice import ice_servers
    from .store import Store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_path)

    def ice_for(user_id: str) -> list[dict[str, Any]]:
        return ice_servers(settings.stun_urls, settings.turn_urls, settings.turn_secret,
                           user_id, int(time.time()), settings.turn_ttl_s)

    hub = Hub(store, ice_servers=ice_for,
              retention=(settings.retention_days, settings.retention_messages))
    from flask import Flask

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024
    box = Box(settings=settings, hub=hub)
    app.extensions["ahoy"] = box
    ws.install(app, hub, settings.extra_origins, hello_timeout_s=settings.hello_timeout_s)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(portalweb.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(webapp.blueprint)

    @app.after_request
    def security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:;"
            " media-src 'self' blob:; style-src 'self' 'unsafe-inline'; script-src 'self';"
            " object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        )
        return response

    return app


def box_of(app: Flask) -> Box:
    box: Box = app.extensions["ahoy"]
    return box
