"""Floods: how fast a newcomer's `/healthz` answers while one device misbehaves.

The production server with its default connection limits, on loopback. The
misbehaving device connects from 127.0.0.2 (and, for the password guessing,
from 127.0.1.x); the newcomer asks `/healthz` from 127.0.0.3 every 50 ms, each
time on a new connection, with a 2 s timeout. Scenarios (docs/protocol.md,
"Connections"; issue 11, items 5 and 7):

- quiet: nothing else happens
- half-open: 1500 requests whose headers never finish
- idle WebSockets: 600 upgrades that never say hello
- wrong passwords: 30 addresses x 4 wrong admin passwords, all at once
- big PNG: uploads of a 12-megapixel PNG (the most a PNG may have), back to back
- 40 MP PNG: uploads of a 39.9-megapixel PNG of 132 KB (refused since the cap)
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .servers import KINDS, Server

NEWCOMER = "127.0.0.3"
FLOODER = "127.0.0.2"
PASSWORD = "sea-shanty-42"
# The service's own defaults (bench/servers.py lifts them for the other sections).
DEFAULT_LIMITS = ("--max-connections-per-client", "64", "--max-unfinished-per-client", "16")


@dataclass
class Latency:
    scenario: str
    samples: list[float] = field(default_factory=list)  # ms, answered ones
    failed: int = 0
    note: str = ""

    def row(self) -> list[str]:
        got = sorted(self.samples)

        def pct(p: float) -> str:
            return f"{got[min(len(got) - 1, int(p * len(got)))]:.1f}" if got else "-"

        median = f"{statistics.median(got):.1f}" if got else "-"
        return [self.scenario, str(len(got) + self.failed), median, pct(0.95),
                f"{got[-1]:.1f}" if got else "-", str(self.failed), self.note]


def healthz_ms(server: Server, timeout: float = 2.0) -> float | None:
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=timeout,
                                      source_address=(NEWCOMER, 0)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Connection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.1 200"):
        return None
    return (time.perf_counter() - started) * 1000


def measure(server: Server, scenario: str, load: Callable[[threading.Event], str],
            seconds: float) -> Latency:
    """Sample /healthz for `seconds` while `load` runs (it returns a note)."""
    result = Latency(scenario)
    stop = threading.Event()
    notes: list[str] = []
    worker = threading.Thread(target=lambda: notes.append(load(stop)), daemon=True)
    worker.start()
    time.sleep(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ms = healthz_ms(server)
        if ms is None:
            result.failed += 1
        else:
            result.samples.append(ms)
        time.sleep(0.05)
    stop.set()
    worker.join(30)
    result.note = notes[0] if notes else ""
    return result


def quiet(stop: threading.Event) -> str:
    stop.wait()
    return ""


def half_open(server: Server) -> Callable[[threading.Event], str]:
    def load(stop: threading.Event) -> str:
        socks = []
        try:
            for _ in range(1500):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=5,
                                             source_address=(FLOODER, 0))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: box\r\n")
                socks.append(s)
            stop.wait()
            refused = sum(_peek(s).startswith(b"HTTP/1.1 429") for s in socks)
            return f"{refused} of {len(socks)} refused (429)"
        except OSError as e:
            return f"flooder stopped after {len(socks)}: {e}"
        finally:
            for s in socks:
                s.close()
    return load


def idle_websockets(server: Server) -> Callable[[threading.Event], str]:
    def load(stop: threading.Event) -> str:
        socks = []
        try:
            for _ in range(600):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=5,
                                             source_address=(FLOODER, 0))
                key = base64.b64encode(os.urandom(16)).decode()
                s.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                          .encode())
                socks.append(s)
            stop.wait()
            answers = [_peek(s) for s in socks]
            kept = sum(a.startswith(b"HTTP/1.1 101") and b"\x88" not in a for a in answers)
            return f"{kept} of {len(socks)} kept open, the rest told 1013 or 429"
        except OSError as e:
            return f"flooder stopped after {len(socks)}: {e}"
        finally:
            for s in socks:
                s.close()
    return load


def wrong_passwords(server: Server) -> Callable[[threading.Event], str]:
    def guess(address: str, out: list[int]) -> None:
        body = json.dumps({"password": "guess-guess"}).encode()
        for _ in range(4):
            out.append(_post(server, "/admin/api/login", body, address,
                             {"Content-Type": "application/json"}))

    def load(stop: threading.Event) -> str:
        statuses: list[int] = []
        started = time.monotonic()
        threads = [threading.Thread(target=guess, args=(f"127.0.1.{i + 1}", statuses))
                   for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        took = time.monotonic() - started
        stop.wait()
        return (f"{len(statuses)} guesses in {took:.1f} s: {statuses.count(401)} wrong, "
                f"{statuses.count(429)} locked out")
    return load


def uploads(server: Server, picture: bytes, count: int) -> Callable[[threading.Event], str]:
    def load(stop: threading.Event) -> str:
        token = _device_token(server)
        statuses, times = [], []
        for _ in range(count):
            if stop.is_set():
                break
            t = time.perf_counter()
            statuses.append(_post(server, "/api/avatar", picture, "127.0.0.4",
                                  {"Authorization": f"Bearer {token}"}))
            times.append(time.perf_counter() - t)
        stop.wait()
        median = statistics.median(times) * 1000 if times else float("nan")
        return (f"{len(statuses)} uploads ({len(picture) // 1024} KB), status "
                f"{sorted(set(statuses))}, {median:.0f} ms each")
    return load


def png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(out, "PNG")
    return out.getvalue()


def run_flood(quick: bool) -> list[Latency]:
    from provisioning.credentials import set_admin_password

    seconds = 3.0 if quick else 8.0
    server = Server(KINDS["ahoy-gevent"], extra_args=DEFAULT_LIMITS)
    set_admin_password(server.workdir / "data", PASSWORD)
    server.start()
    try:
        results = [measure(server, "quiet", quiet, seconds)]
        results.append(measure(server, "1500 half-open requests (one device)",
                               half_open(server), seconds))
        results.append(measure(server, "600 idle WebSockets (one device)",
                               idle_websockets(server), seconds))
        results.append(measure(server, "30 devices x 4 wrong admin passwords",
                               wrong_passwords(server), seconds))
        results.append(measure(server, "12 MP PNG avatar uploads",
                               uploads(server, png(4032, 3024), 20), seconds))
        results.append(measure(server, "39.9 MP PNG avatar uploads",
                               uploads(server, png(7300, 5465), 20), seconds))
        return results
    finally:
        server.stop()


def _peek(sock: socket.socket) -> bytes:
    sock.settimeout(0.01)
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _post(server: Server, path: str, body: bytes, source: str,
          headers: dict[str, str]) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60,
                                      source_address=(source, 0))
    try:
        conn.request("POST", path, body=body,
                     headers={"Origin": f"http://127.0.0.1:{server.port}", **headers})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def _device_token(server: Server) -> str:
    from websockets.sync.client import connect

    with connect(server.ws_url, source_address=("127.0.0.4", 0), close_timeout=1) as ws:
        ws.send(json.dumps({"type": "hello", "name": f"Pic{os.getpid() % 1000}"}))
        while True:
            message: dict[str, Any] = json.loads(ws.recv(timeout=10))
            if message.get("type") == "welcome":
                token: str = message["token"]
                return token
