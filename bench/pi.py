"""Capacity on a Raspberry Pi, estimated here: the server pinned to one CPU with a
CPU quota calibrated so that a CPU-bound Python program runs as slowly as on the
board.

Calibration. The program is the n-body simulation of the Computer Language
Benchmarks Game (five planets, dt = 0.01), written here in plain Python. The
published figure:

- Raspberry Pi 4 Model B (Cortex-A72, 1.5 GHz, performance governor): Python
  ran 5,000,000 n-body steps in 158.3 s (Chaitanya Mehta, "Performance Analysis
  of Languages on Raspberry Pi",
  https://chaitanyamehta.github.io/projects/performance-analysis-of-programming-languages).

No Python figure for the Pi 3 and the Zero 2 W was found in the same form, so
they are scaled from the Pi 4 by published single-core sysbench CPU figures
(L. Coles, "Raspberry Pi CPU Benchmarks", https://leoncode.co.uk/articles/raspberry-pi-benchmarks:
Pi 3B+ 687.45 events/s, Pi 4 1477.83 events/s, one thread) and by clock (the
Pi 3B and the Zero 2 W have the same Cortex-A53 cores as the 3B+, at 1.2 and
1.0 GHz instead of 1.4). Their rows are estimates of estimates.

The quota starts as (seconds per step here) / (seconds per step on the board)
of one CPU, in 10 ms periods (longer below 10 %: the kernel's smallest quota is
1 ms); the bench then runs the n-body program under it and adjusts it until
n-body runs within 5 % of the board's time (at most five rounds), and prints
how close it came. A size of phones that misses p99 <= 100 ms is tried once
more before it counts as over. The Python on the board may be older than here
(the figure's page does not say); a newer Python on the Pi would be faster than
this calibration assumes.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from .fanout import Workers, run_step
from .servers import KINDS, REPO, Server, set_cpu_quota

PI4_NBODY_S_PER_STEP = 158.3 / 5_000_000
SYSBENCH_PI3BPLUS, SYSBENCH_PI4 = 687.45, 1477.83


@dataclass(frozen=True)
class Board:
    name: str
    nbody_s_per_step: float
    source: str


BOARDS = [
    Board("Raspberry Pi 4 B (1.5 GHz)", PI4_NBODY_S_PER_STEP, "measured (Python n-body)"),
    Board("Raspberry Pi 3 B (1.2 GHz)",
          PI4_NBODY_S_PER_STEP * SYSBENCH_PI4 / (SYSBENCH_PI3BPLUS * 1.2 / 1.4),
          "Pi 4 figure scaled by sysbench and clock"),
    Board("Raspberry Pi Zero 2 W (1.0 GHz)",
          PI4_NBODY_S_PER_STEP * SYSBENCH_PI4 / (SYSBENCH_PI3BPLUS * 1.0 / 1.4),
          "Pi 4 figure scaled by sysbench and clock"),
]

# How many phones to try, in order; each is a total (clients are added).
SIZES = [50, 100, 150, 200, 300, 400, 500, 700, 1000]  # whole rooms of 50
RATE = 20.0  # messages a second in all, in rooms of 50
ROOM = 50
CALIBRATION_ROUNDS = 5
MAX_CONNECT_S = 60.0  # a size whose phones take longer to connect counts as over


def nbody(steps: int) -> float:
    """Run `steps` steps of the n-body simulation; returns the energy (a check)."""
    pi = math.pi
    solar_mass = 4 * pi * pi
    year = 365.24
    bodies = [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, solar_mass],
        [4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03 * year, 7.69901118419740425e-03 * year,
         -6.90460016972063023e-05 * year, 9.54791938424326609e-04 * solar_mass],
        [8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03 * year, 4.99852801234917238e-03 * year,
         2.30417297573763929e-05 * year, 2.85885980666130812e-04 * solar_mass],
        [1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03 * year, 2.37847173959480950e-03 * year,
         -2.96589568540237556e-05 * year, 4.36624404335156298e-05 * solar_mass],
        [1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03 * year, 1.62824170038242295e-03 * year,
         -9.51592254519715870e-05 * year, 5.15138902046611451e-05 * solar_mass],
    ]
    px = sum(b[3] * b[6] for b in bodies)
    py = sum(b[4] * b[6] for b in bodies)
    pz = sum(b[5] * b[6] for b in bodies)
    bodies[0][3], bodies[0][4], bodies[0][5] = (-px / solar_mass, -py / solar_mass,
                                                -pz / solar_mass)
    pairs = [(bodies[i], bodies[j]) for i in range(5) for j in range(i + 1, 5)]
    dt = 0.01
    for _ in range(steps):
        for a, b in pairs:
            dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
            d2 = dx * dx + dy * dy + dz * dz
            mag = dt / (d2 * math.sqrt(d2))
            bm, am = b[6] * mag, a[6] * mag
            a[3] -= dx * bm
            a[4] -= dy * bm
            a[5] -= dz * bm
            b[3] += dx * am
            b[4] += dy * am
            b[5] += dz * am
        for body in bodies:
            body[0] += dt * body[3]
            body[1] += dt * body[4]
            body[2] += dt * body[5]
    energy = 0.0
    for i, a in enumerate(bodies):
        energy += 0.5 * a[6] * (a[3] ** 2 + a[4] ** 2 + a[5] ** 2)
        for b in bodies[i + 1:]:
            energy -= a[6] * b[6] / math.dist(a[:3], b[:3])
    return energy


def time_nbody(steps: int, cpu: int, cgroup: Any = None, wall: bool = False) -> float:
    """Seconds of CPU time (or, with `wall`, of wall time) for `steps` n-body
    steps in a fresh process on `cpu`, inside `cgroup` when given."""

    def confine() -> None:
        os.sched_setaffinity(0, {cpu})
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    # CPU time, not wall time: other programs on this machine must not count.
    clock = "perf_counter" if wall else "process_time"
    code = (f"import time; from bench.pi import nbody; t = time.{clock}(); "
            f"nbody({steps}); print(time.{clock}() - t)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          preexec_fn=confine, timeout=600, check=True, cwd=REPO)
    return float(done.stdout.strip())


def calibrate(cgroup: Any, share: float, board: Board, cpu: int, steps: int,
              log: Any) -> tuple[float, float]:
    """Adjust the quota until n-body under it runs within 5 % of the board's
    time (a quota is not a slower core: throttling costs a little, and
    small quotas lose more to it); returns the share and the last check."""
    check = 0.0
    for _ in range(CALIBRATION_ROUNDS):
        set_cpu_quota(cgroup, share)
        check = time_nbody(steps, cpu, cgroup, wall=True) / steps / board.nbody_s_per_step
        if abs(check - 1) <= 0.05:
            break
        log(f"    quota {share * 100:.1f} %: n-body at {check:.2f}x the board's time; adjusting")
        share = min(1.0, share * check)
    return share, check


def settle(server: Server, share: float, limit_s: float = 60.0) -> None:
    """Wait until the server has done what the arrivals left it (their rooms'
    and people's changes go out for a while after the last hello on a slow
    board): until it uses under a quarter of its quota for a second (CPU time
    is counted in 10 ms ticks)."""
    deadline = time.monotonic() + limit_s
    time.sleep(0.5)
    while time.monotonic() < deadline:
        before = server.cpu_seconds()
        time.sleep(1.0)
        if server.cpu_seconds() - before < 0.25 * share:
            return


@dataclass
class BoardResult:
    board: str
    source: str
    quota: float  # share of one CPU here
    nbody_check: float  # n-body under the quota, as a share of the board's time
    startup_s: float
    phones: int  # most phones with p99 <= limit and nothing lost
    first_over: str
    steps: list[dict[str, Any]]


def run_pi(cpu: int = 1, quick: bool = False, log: Any = print) -> tuple[float, list[BoardResult]]:
    """Calibrate, then per board: start-up time and phones served at 20 msg/s."""
    steps = 50_000 if quick else 200_000
    here = min(time_nbody(steps, cpu) for _ in range(3)) / steps
    log(f"  n-body here: {here * 1e6:.2f} us a step on CPU {cpu}")
    results = []
    for board in BOARDS:
        share = here / board.nbody_s_per_step
        server = Server(KINDS["ahoy-gevent"], cpu=cpu, cpu_quota=share)
        assert server.cgroup is not None
        share, check = calibrate(server.cgroup, share, board, cpu, max(5000, steps // 10), log)
        server.cpu_quota = share
        log(f"  {board.name}: quota {share * 100:.1f} % of one CPU; n-body under it runs at "
            f"{check:.2f}x the board's time")
        result = BoardResult(board.name, board.source, share, check, 0.0, 0, "not reached", [])
        try:
            server.start(timeout=120)
            result.startup_s = server.ready_s
            pool = Workers(server.ws_url, "ahoy", 2)
            try:
                for n in SIZES[:3] if quick else SIZES:
                    grown = pool.call("grow", n, timeout=900)
                    connected = sum(g["connected"] for g in grown)
                    setup = max(g["seconds"] for g in grown)
                    settle(server, share)
                    tries = 0
                    while True:
                        tries += 1
                        step = run_step(pool, f"pi{n}-{tries}", ROOM, RATE,
                                        3.0 if quick else 6.0, 5.0)
                        # One slow moment must not decide a board's figure: a
                        # size is over only when a second try fails too.
                        if step.ok or connected < n or tries == 2:
                            break
                        log(f"    {n} phones: p99 {step.p99:.1f} ms lost {step.lost}; again")
                    row = {"phones": n, "connected": connected, "setup_s": setup,
                           "p50": step.p50, "p99": step.p99, "lost": step.lost,
                           "dup": step.duplicates, "tries": tries}
                    result.steps.append(row)
                    log(f"    {n} phones ({connected} connected in {setup:.1f} s): p50 "
                        f"{step.p50:.1f} p99 {step.p99:.1f} ms lost {step.lost}")
                    if setup > MAX_CONNECT_S:
                        result.first_over = f"{n}: connecting took {setup:.0f} s"
                        break
                    if connected < n or not step.ok:
                        result.first_over = (f"{n}: p99 {step.p99:.0f} ms, lost {step.lost}"
                                             + ("" if connected == n else
                                                f", {connected} connected"))
                        break
                    result.phones = n
            finally:
                pool.close()
        except Exception as e:
            result.first_over = f"stopped: {type(e).__name__}: {e}"[:200]
            log(f"    stopped: {e}")
        finally:
            server.stop()
        results.append(result)
    return here, results
