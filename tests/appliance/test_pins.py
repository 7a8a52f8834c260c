"""lgpio (gpiozero's pin library on a Pi) under the production server's gevent.

lgpio reads its GPIO edge reports from a FIFO in a thread of its own; under
gevent that thread is a greenlet, and its plain blocking read stopped the whole
server: booted as a Pi 3, the image's `ahoy.service` ran and never answered
`/healthz`. The real lgpio is used here (its x86-64 wheel); only the GPIO chip
is missing on this machine, so an edge report is written into lgpio's own FIFO,
in its format, as its C library writes them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from ahoytest import REPO, AhoyServer

lgpio = pytest.importorskip("lgpio", reason="lgpio is in requirements-dev.txt for x86-64")

WAIT_S = 60

# In a process of its own: gevent patches the standard library, as `ahoy serve` does.
GREEN_EDGE = r"""
from gevent import monkey
monkey.patch_all()
import json, os, struct, sys, time
import gevent
from appliance.pins import import_lgpio

ticks = []
def ticker():
    while True:
        ticks.append(time.monotonic())
        gevent.sleep(0.02)
gevent.spawn(ticker)
gevent.sleep(0.1)
lgpio = import_lgpio()
edges = []
lgpio.callback(0, 17, lgpio.BOTH_EDGES, lambda chip, gpio, level, tick: edges.append(
    {"chip": chip, "gpio": gpio, "level": level, "tick": tick}))
before = len(ticks)
gevent.sleep(0.5)
print(json.dumps({"ticking": len(ticks) > before}), flush=True)
# The edge report lgpio's library writes: tick, chip, gpio, level, flags, padding.
fifo = os.path.join(os.environ["LG_WD"], ".lgd-nfy0")
with open(fifo, "wb", buffering=0) as w:
    w.write(struct.pack("QBBBBI", 123456789, 0, 17, 1, 0, 0))
while not edges:
    gevent.sleep(0.02)
print(json.dumps({"edges": edges}), flush=True)
"""


def test_lgpio_imports_and_reports_edges_without_stopping_the_loop(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", GREEN_EDGE], cwd=REPO, capture_output=True, text=True,
        timeout=WAIT_S, env={"PATH": "/usr/bin:/bin", "LG_WD": str(tmp_path),
                             "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {"ticking": True}
    assert lines[1]["edges"] == [{"chip": 0, "gpio": 17, "level": 1, "tick": 123456789}]


def test_the_production_server_answers_with_lgpio_as_the_pin_factory(tmp_path: Path) -> None:
    # As on the image: GPIOZERO_PIN_FACTORY=lgpio. This machine has no GPIO chip, so
    # the lights are left out (logged), after lgpio was imported and its reader started.
    server = AhoyServer(tmp_path / "data", production=True, pin_factory="lgpio",
                        env={"LG_WD": str(tmp_path)}).start()
    try:
        deadline = time.monotonic() + WAIT_S
        while "status lights unavailable" not in server.log_path.read_text(errors="replace"):
            assert server.process is not None and server.process.poll() is None
            assert time.monotonic() < deadline, (
                "the devices never got past lgpio: " + server.log_path.read_text()[-2000:])
            time.sleep(0.2)
        assert (tmp_path / ".lgd-nfy0").exists()  # lgpio's reader was started
        answered = []
        for _ in range(3):
            with urllib.request.urlopen(server.http_url + "/healthz", timeout=WAIT_S) as r:
                answered.append(r.status)
        assert answered == [200, 200, 200]
    finally:
        server.stop()
