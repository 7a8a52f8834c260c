"""Ahoy as a WSGI app for gunicorn (gthread workers), to compare production servers.

    AHOY_BENCH_DATA=/tmp/d gunicorn -k gthread -w 1 --threads 4000 'bench.ahoy_wsgi:create()'

One worker only: presence lives in one process. Housekeeping (call timeouts)
is not started; the fan-out benchmark does not need it.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask


def create() -> Flask:
    from appliance.app import create_app
    from appliance.settings import Settings

    settings = Settings(data_dir=Path(os.environ["AHOY_BENCH_DATA"]).resolve(),
                        host="127.0.0.1", http_port=int(os.environ.get("AHOY_BENCH_PORT", "80")),
                        announce_mdns=False)
    return create_app(settings)
