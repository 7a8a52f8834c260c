"""The Flask application factory: `create_app(settings)` wires the hub, the
store and the blueprints (phone web app, JSON API, WebSocket, captive portal,
admin page). Nothing happens at import time.
"""

from __future__ import annotations

import re
import time
from typing import Any

from flask import Flask, request

from . import admin, api, portalweb, webapp, ws
from .box import Box
from .hub import Hub
from .ice import at_current_address, ice_servers, on_the_hotspot, on_the_uplink
from .settings import Settings
from .store import Store

POLICY = ("default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:;"
          " media-src 'self' blob:; style-src 'self' 'unsafe-inline'; script-src 'self';"
          " object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
# A script or style sheet that a page loads ignores a policy of its own (the page's
# applies), so it goes without these 300 bytes over the air; a worker runs under its own.
POLICY_IGNORED = ("text/javascript", "text/css")
WORKERS = ("/sw.js",)
_ORIGIN = re.compile(r"https://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|https://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def site_room_id(site_name: str, room_name: str) -> str:
    """The default room's id on every box of a site: made alike, it is one room."""
    import hashlib

    digest = hashlib.sha256(f"{site_name}|{room_name.casefold()}".encode()).hexdigest()
    return f"r_site{digest[:16]}"


def create_app(settings: Settings) -> Flask:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_path)

    def ice_for(user_id: str, address: str = "") -> list[dict[str, Any]]:
        stun, turn = settings.stun_urls, settings.turn_urls
        if settings.uplink_interface and settings.uplink_address and not on_the_hotspot(
                address, settings.hotspot_network):
            # A phone on the existing network beside the hotspot: the uplink's address now.
            now_at = (box.status.get("uplink") or {}).get("addresses") or []
            stun, turn = (on_the_uplink(urls, settings.box_address, settings.uplink_address,
                                        now_at) for urls in (stun, turn))
        elif settings.lan_mode:
            # The uplink's address now (DHCP may have changed it since the start).
            now_at = (box.status.get("hotspot") or {}).get("addresses") or []
            stun = at_current_address(stun, settings.box_address, now_at)
            turn = at_current_address(turn, settings.box_address, now_at)
        return ice_servers(stun, turn, settings.turn_secret,
                           user_id, int(time.time()), settings.turn_ttl_s)

    hub = Hub(store, ice_servers=ice_for,
              retention=(settings.retention_days, settings.retention_messages),
              default_room=settings.default_room,
              default_room_id=site_room_id(settings.site_name, settings.default_room)
              if settings.site_name and settings.default_room else None)
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024
    box = Box(settings=settings, hub=hub)
    app.extensions["ahoy"] = box
    ws.install(app, hub, settings.extra_origins, hello_timeout_s=settings.hello_timeout_s)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(portalweb.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(webapp.blueprint)
    if settings.site_name:
        from .site.link import SiteLink

        link = SiteLink.for_box(hub, settings.data_dir, settings.site_name, settings.site_peers,
                                settings.site_port)
        if link is not None:
            link.start()
            box.site = link

    @app.after_request
    def security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.mimetype == "text/html":
            # Only a document can be framed (CSP's frame-ancestors says it again
            # for browsers that know it); on a script it is bytes over the air.
            response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype not in POLICY_IGNORED or request.path in WORKERS:
            policy = POLICY
            secure = api.base_urls()[1] if request.path == "/" and request.scheme == "http" else ""
            if _ORIGIN.fullmatch(secure):
                # The plain-http app may check whether this browser can already open
                # the secure address (boxinfo.js secureReachable).
                policy = POLICY.replace("connect-src 'self'", f"connect-src 'self' {secure}", 1)
            response.headers.setdefault("Content-Security-Policy", policy)
        return response

    return app
