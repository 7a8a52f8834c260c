"""The admin page: the UI in webclient/admin at /admin/, and its JSON API at /admin/api/.

One module per screen of webclient/admin/ (signin, dashboard, settings, people,
certificates, clock, logs, system), what they share in `access.py` (the guard
every request passes: origin, session, CSRF token), the sign-in rules in
`auth.py` and the recent log in `logbuffer.py`. Every route is in ROUTES below.

Every API call except reading the sign-in state and signing in needs a
session; every change also needs the session's CSRF token and must come from
the page's own origin. Changes that need root (settings, clock, power, factory
reset) are handed to the privileged apply step as request files
(provisioning.requests); in development mode nothing touches the machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint

from . import access, certificates, clock, dashboard, logs, people, settings, signin, system
from .access import AdminState, admin_state
from .signin import ensure_admin_password

__all__ = ["ROUTES", "AdminState", "admin_state", "blueprint", "ensure_admin_password"]

# (method, URL, view): the view's name is its endpoint ("admin.<name>").
ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    # the page and signing in (main.js)
    ("GET", "/admin", signin.page),
    ("GET", "/admin/", signin.page_slash),
    ("GET", "/admin/<path:path>", signin.asset),
    ("GET", "/admin/api/session", signin.session_info),
    ("POST", "/admin/api/login", signin.login),
    ("POST", "/admin/api/logout", signin.logout),
    # dashboard.js
    ("GET", "/admin/api/dashboard", dashboard.dashboard),
    ("DELETE", "/admin/api/site/boxes/<box_id>", dashboard.remove_site_box),
    ("POST", "/admin/api/site/boxes/<box_id>", dashboard.add_site_box),
    # settings.js
    ("GET", "/admin/api/settings", settings.get_settings),
    ("POST", "/admin/api/settings", settings.save_settings),
    # people.js
    ("GET", "/admin/api/people", people.people),
    ("GET", "/admin/api/rooms/<room_id>/messages", people.room_messages),
    ("DELETE", "/admin/api/users/<user_id>", people.remove_user),
    ("DELETE", "/admin/api/rooms/<room_id>", people.close_room),
    ("DELETE", "/admin/api/messages/<conv>/<int:seq>", people.delete_message),
    # certificates.js
    ("GET", "/admin/api/certificates", certificates.certificates),
    ("POST", "/admin/api/certificates/custom", certificates.upload_certificate),
    ("DELETE", "/admin/api/certificates/custom", certificates.remove_certificate),
    # clock.js
    ("GET", "/admin/api/clock", clock.get_clock),
    ("POST", "/admin/api/clock", clock.set_clock),
    # logs.js
    ("GET", "/admin/api/logs", logs.logs),
    # system.js
    ("POST", "/admin/api/password", system.change_password),
    ("POST", "/admin/api/power", system.power),
    ("GET", "/admin/api/backup", system.backup),
    ("POST", "/admin/api/restore", system.restore),
    ("POST", "/admin/api/factory-reset", system.factory_reset),
]

blueprint = Blueprint("admin", __name__)
blueprint.record_once(access.setup)
blueprint.before_request(access.guard)
blueprint.after_request(access.admin_headers)
for _method, _rule, _view in ROUTES:
    blueprint.add_url_rule(_rule, view_func=_view, methods=[_method])
