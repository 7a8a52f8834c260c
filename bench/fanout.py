"""Fan-out: N connected clients in rooms of 10 and 50, messages at a fixed rate, then a ramp.

For each server: connect 100, then 500, then 1000 clients (each in one room of
10 and one room of 50). At each size, for each room size, send messages at
20 a second in all (the fixed-rate figure), then double the rate every step
until p99 delivery latency passes 100 ms (or a message is lost, or the
per-client rate would pass Ahoy's 20 frames/s limit).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from .loadgen import BIG, SMALL, worker_main
from .servers import KINDS, Server

FIXED_RATE = 20.0
P99_LIMIT_MS = 100.0
MAX_CLIENT_RATE = 15.0  # below Ahoy's 20 frames/s per client


@dataclass
class Step:
    rate: float  # messages a second, all workers
    room: int
    sent: int
    expected: int
    delivered: int
    duplicates: int
    errors: int
    disconnects: int
    deliveries_per_s: float
    p50: float
    p99: float
    max: float
    error_samples: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.expected - self.delivered

    @property
    def ok(self) -> bool:
        return self.p99 <= P99_LIMIT_MS and self.lost == 0 and self.duplicates == 0


@dataclass
class SizeResult:
    clients: int
    connected: int
    setup_s: float
    rss_bytes: int
    threads: int
    failures: list[str]
    steps: list[Step] = field(default_factory=list)

    def fixed(self, room: int) -> Step | None:
        return next((s for s in self.steps if s.room == room and s.rate == FIXED_RATE), None)

    def knee(self, room: int) -> tuple[Step | None, Step | None]:
        """The best step within the p99 limit, and the first that passed it."""
        steps = [s for s in self.steps if s.room == room]
        good = [s for s in steps if s.ok]
        bad = next((s for s in steps if not s.ok), None)
        best = max(good, key=lambda s: s.deliveries_per_s, default=None)
        return best, bad


@dataclass
class ServerResult:
    kind: str
    rss_idle: int
    threads_idle: int
    sizes: list[SizeResult] = field(default_factory=list)
    error: str | None = None


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[i]


class Workers:
    def __init__(self, url: str, dialect: str, count: int, compression: bool = True) -> None:
        ctx = mp.get_context("spawn")
        self.pipes = []
        self.procs = []
        for i in range(count):
            ours, theirs = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(theirs, url, dialect, i, count, compression),
                            daemon=True)
            p.start()
            self.pipes.append(ours)
            self.procs.append(p)

    def call(self, command: str, *args: Any, timeout: float = 600) -> list[Any]:
        for pipe in self.pipes:
            pipe.send((command, args))
        out = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"load generator did not finish {command} in {timeout} s")
            out.append(pipe.recv())
        return out

    def close(self) -> None:
        try:
            self.call("close", timeout=30)
        except Exception:
            pass
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()


def run_step(workers: Workers, tag: str, room: int, rate: float, duration: float,
             drain: float) -> Step:
    kind = "s" if room == SMALL else "b"
    n = len(workers.pipes)
    parts = workers.call("phase", tag, kind, rate / n, duration, drain,
                         timeout=duration * 4 + drain + 60)
    lat = array("q")
    for p in parts:
        lat.extend(p["latencies"])
    ms = sorted(x / 1e6 for x in lat)
    span_s = max(p["span_ns"] for p in parts) / 1e9
    delivered = sum(p["delivered"] for p in parts)
    samples = [s for p in parts for s in p["error_samples"]][:3]
    return Step(rate=rate, room=room, sent=sum(p["sent"] for p in parts),
                expected=sum(p["expected"] for p in parts), delivered=delivered,
                duplicates=sum(p["duplicates"] for p in parts),
                errors=sum(p["errors"] for p in parts),
                disconnects=sum(p["disconnects"] for p in parts),
                deliveries_per_s=delivered / span_s if span_s > 0 else 0.0,
                p50=percentile(ms, 50), p99=percentile(ms, 99),
                max=ms[-1] if ms else float("nan"), error_samples=samples)


def run_server(kind_name: str, sizes: list[int], rooms: list[int], step_s: float,
               drain_s: float, max_steps: int, workers: int = 2,
               log: Any = print) -> ServerResult:
    kind = KINDS[kind_name]
    server = Server(kind).start()
    time.sleep(0.5)
    result = ServerResult(kind_name, server.rss_bytes(), server.threads())
    pool = Workers(server.ws_url, kind.dialect, workers)
    try:
        for n in sizes:
            grown = pool.call("grow", n, timeout=900)
            time.sleep(1.0)
            size = SizeResult(clients=n, connected=sum(g["connected"] for g in grown),
                              setup_s=max(g["seconds"] for g in grown),
                              rss_bytes=server.rss_bytes(), threads=server.threads(),
                              failures=[f for g in grown for f in g["failures"]][:5])
            result.sizes.append(size)
            log(f"  {kind_name}: {size.connected}/{n} clients in {size.setup_s:.1f} s, "
                f"RSS {size.rss_bytes / 2**20:.0f} MB, {size.threads} threads"
                + (f", failures: {size.failures[:2]}" if size.failures else ""))
            for room in rooms:
                rate = FIXED_RATE
                cap = MAX_CLIENT_RATE * (n - n % BIG)
                for i in range(max_steps):
                    tag = f"n{n}r{room}s{i}"
                    step = run_step(pool, tag, room, rate, step_s, drain_s)
                    size.steps.append(step)
                    log(f"    room {room:>2} {rate:>6.0f} msg/s: {step.deliveries_per_s:>7.0f} "
                        f"deliveries/s p50 {step.p50:6.1f} p99 {step.p99:7.1f} "
                        f"max {step.max:7.1f} ms lost {step.lost} dup {step.duplicates}"
                        + (f" errors {step.errors} {step.error_samples[:1]}" if step.errors
                           else ""))
                    if not step.ok or rate * 2 > cap:
                        break
                    rate *= 2
                if not size.steps[-1].ok:
                    # Let an overloaded server catch up before the next workload.
                    time.sleep(drain_s)
    except Exception as e:
        result.error = f"{type(e).__name__}: {e}"
        log(f"  {kind_name}: stopped: {result.error}")
    finally:
        pool.close()
        server.stop()
    return result
