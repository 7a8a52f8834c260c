"""The logs (webclient/admin/logs.js): what the service did lately (kept in memory by
logbuffer.py), the hotspot's state and the config file's problems.
"""

from __future__ import annotations

from flask import Response, current_app, jsonify, request

from provisioning.configstore import read_status

from .access import admin_state, box


def logs() -> Response:
    admin = admin_state(current_app)
    after = request.args.get("after", "0")
    records = admin.logs.records(int(after) if after.isdigit() else 0)
    the_box = box()
    return jsonify({"records": records[-500:], "hotspot": the_box.status,
                    "config_status": read_status(the_box.settings.data_dir)})
