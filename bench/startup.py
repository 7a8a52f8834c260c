"""Start-up: process start to `/healthz` answering, and the slow imports."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
import urllib.request

from .servers import KINDS, REPO, Server


def run_startup(kind_name: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        server = Server(KINDS[kind_name])
        try:
            server.start()
            times.append(server.ready_s)
        finally:
            server.stop()
    return times


def slow_imports(dev: bool, top: int = 12) -> list[tuple[str, float]]:
    """Cumulative import time (ms) of the slowest top-level-ish modules at start-up.

    Runs the service under `python -X importtime` until `/healthz` answers.
    """
    server = Server(KINDS["ahoy-werkzeug" if dev else "ahoy-gevent"])
    cmd = server.command()
    cmd.insert(1, "-X")
    cmd.insert(2, "importtime")
    proc = subprocess.Popen(cmd, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=_env(server))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(server.url + "/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
        server.stop()
    rows: list[tuple[str, float]] = []
    for line in err.decode(errors="replace").splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(3)) <= 3:  # top-level imports and their direct children
            rows.append((m.group(4).strip(), int(m.group(2)) / 1000))
    rows.sort(key=lambda r: -r[1])
    return rows[:top]


def _env(server: Server) -> dict[str, str]:
    return dict(os.environ, GPIOZERO_PIN_FACTORY="mock", PYTHONWARNINGS="ignore")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
