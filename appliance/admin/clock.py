"""The clock (webclient/admin/clock.js): the Pi has no battery-backed clock, so the
admin's browser sets it."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from flask import Response, jsonify

from provisioning.requests import SET_CLOCK, clock_problem

from .access import box, error, json_body, log, request_privileged


def get_clock() -> Response:
    return jsonify({"time_ms": int(time.time() * 1000)})


def set_clock() -> Any:
    # The root side has the last word on the clock: the same bounds, the same words.
    value = json_body().get("time_ms")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return error(400, "Send the browser's time as time_ms (milliseconds since 1970).")
    problem = clock_problem(value / 1000)
    if problem:
        return error(400, problem)
    when = dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    if box().settings.dev:
        return jsonify({"applied": False, "time_ms": int(time.time() * 1000),
                        "message": "Development mode: this machine's clock was not changed."})
    try:
        time.clock_settime(time.CLOCK_REALTIME, value / 1000)
        applied = True
    except (PermissionError, OSError, AttributeError):
        # The service lacks CAP_SYS_TIME: the privileged step sets it.
        request_privileged(SET_CLOCK, {"time": value / 1000})
        applied = False
    log.info("admin: clock set to %s UTC from the admin's browser", f"{when:%Y-%m-%d %H:%M:%S}")
    return jsonify({"applied": applied, "time_ms": int(time.time() * 1000),
                    "message": "The box's clock is set." if applied
                    else "The box sets its clock in a moment."})
