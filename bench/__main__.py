"""`python -m bench` (`make bench`): Ahoy and its baselines side by side, as tables.

    python -m bench            the full run (about 10 minutes on 2 cores)
    python -m bench --quick    a small smoke run (100 clients, short steps)
    python -m bench --only fanout,memory --servers ahoy-gevent,ws-relay

Everything is on loopback; every loop is bounded. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .servers import KINDS, REPO, raise_fd_limit

COMPARE_ONLY = {"ahoy-werkzeug", "ahoy-gunicorn", "ahoy-gevent-tmpfs"}
SECTIONS = ["startup", "memory", "callsetup", "rates", "connect", "fanout", "flood", "pi", "sdcard",
            "webapp", "site"]
# Issue 17's figures: fixed rates in rooms of 50, and connecting crowds.
RATES = [20.0, 200.0, 400.0, 800.0]
RATE_SERVERS = ["ahoy-gevent", "ws-relay", "socketio"]
# The relay again on Flask, flask-sock and gevent: what Ahoy's own stack costs
# before Ahoy does anything. Measured connecting only.
CONNECT_SERVERS = ["ahoy-gevent", "ws-relay", "flask-sock-relay"]
CONNECT_ONLY = [k for k in CONNECT_SERVERS if k not in RATE_SERVERS]
CONNECT_SIZES = [500, 1000]


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    return (f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 2**20:.1f} GB RAM, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in cells]
    return "\n".join([line, sep, *body])


def ms(v: float) -> str:
    return "-" if v != v else f"{v:.1f}"


def section_startup(quick: bool, out: dict[str, Any]) -> str:
    from .startup import median, run_startup, slow_imports

    runs = 2 if quick else 5
    rows = []
    for kind in ("ahoy-gevent", "ahoy-werkzeug"):
        times = run_startup(kind, runs)
        out.setdefault("startup", {})[kind] = times
        rows.append([KINDS[kind].label, f"{median(times):.2f}",
                     " ".join(f"{t:.2f}" for t in times)])
    imports = slow_imports(dev=False)
    out["imports"] = imports
    text = "### Start-up: process start to /healthz answering\n\n"
    text += table(["server", "median s", f"runs ({runs})"], rows)
    text += "\n\nSlowest imports at start-up (production, cumulative ms):\n\n"
    text += table(["module", "ms"], [[m, f"{t:.0f}"] for m, t in imports])
    return text


def section_memory(quick: bool, out: dict[str, Any]) -> str:
    from .memory import bytes_per_connection, run_memory

    sizes = [100] if quick else [100, 500, 1000]
    rows = []
    runs = [("ahoy-gevent", True)] if quick else [
        ("ahoy-gevent", True), ("ahoy-gevent", False), ("ahoy-werkzeug", True)]
    for kind, deflate in runs:
        # Werkzeug with 3000 threads stalls for minutes at 1000 clients: stop it at 500.
        points = run_memory(kind, [n for n in sizes if kind != "ahoy-werkzeug" or n <= 500],
                            log=log, compression=deflate)
        out.setdefault("memory", {})[f"{kind} deflate={deflate}"] = [asdict(p) for p in points]
        label = KINDS[kind].label + ("" if deflate else ", clients without permessage-deflate")
        for p in points:
            rows.append([label, p.connected, f"{p.rss_bytes / 2**20:.1f}", p.threads, ""])
        rows[-1][-1] = f"{bytes_per_connection(points) / 1024:.0f} KiB"
    text = ("### Memory: idle clients that said hello (offering permessage-deflate, "
            "as browsers do, unless noted)\n\n")
    return text + table(["server", "clients", "RSS MB", "threads", "per connection"], rows)


def section_callsetup(quick: bool, out: dict[str, Any]) -> str:
    from .callsetup import run_callsetup, summary

    runs = 5 if quick else 20
    results = run_callsetup(runs)
    rows = []
    for name, r in results.items():
        out.setdefault("callsetup", {})[name] = asdict(r)
        c50, c95 = summary(r.connected_ms)
        o50, o95 = summary(r.channel_ms)
        rows.append([name, len(r.connected_ms), r.failures, ms(c50), ms(c95), ms(o50), ms(o95)])
    text = "### Call set-up: two aiortc peers, from the offer (ms)\n\n"
    return text + table(["path", "runs", "failed", "connected p50", "connected p95",
                         "channel open p50", "channel open p95"], rows)


def section_fanout(quick: bool, servers: list[str], out: dict[str, Any],
                   max_clients: int = 1000) -> str:
    from .fanout import FIXED_RATE, P99_LIMIT_MS, run_server

    results = []
    for kind in [k for k in servers if k not in CONNECT_ONLY]:
        # The other Ahoy server choices stop at 500 clients to keep the run near 10 minutes.
        sizes = [100] if quick else [100, 500] if kind in COMPARE_ONLY else [100, 500, 1000]
        sizes = [n for n in sizes if n <= max_clients]
        log(f"fan-out: {KINDS[kind].label}")
        results.append(run_server(kind, sizes, [10, 50], step_s=1.0 if quick else 2.0,
                                  drain_s=1.5 if quick else 2.0,
                                  max_steps=2 if quick else 5, log=log))
    fixed_rows, knee_rows, size_rows = [], [], []
    for r in results:
        out.setdefault("fanout", {})[r.kind] = asdict(r)
        label = KINDS[r.kind].label + (f" (stopped: {r.error})" if r.error else "")
        for s in r.sizes:
            size_rows.append([label, s.clients, s.connected, f"{s.setup_s:.1f}",
                              f"{s.rss_bytes / 2**20:.0f}", s.threads])
            for room in (10, 50):
                f = s.fixed(room)
                if f is not None:
                    fixed_rows.append([label, s.clients, room, ms(f.p50), ms(f.p99), ms(f.max),
                                       f.lost, f.duplicates])
                best, bad = s.knee(room)
                knee_rows.append([
                    label, s.clients, room,
                    f"{best.deliveries_per_s:.0f}" if best else "-",
                    f"{best.rate:.0f}" if best else "-",
                    (f"{bad.rate:.0f} msg/s: p99 {ms(bad.p99)}, lost {bad.lost}, "
                     f"dup {bad.duplicates}" if bad else "not reached"),
                ])
    text = "### Fan-out: connecting\n\n"
    text += table(["server", "clients", "connected", "setup s", "RSS MB", "threads"], size_rows)
    text += f"\n\n### Fan-out: {FIXED_RATE:.0f} messages/s in all, latency to every recipient (ms)\n\n"
    text += table(["server", "clients", "room", "p50", "p99", "max", "lost", "dup"], fixed_rows)
    text += (f"\n\n### Fan-out: rate ramp (doubling), best deliveries/s with p99 <= "
             f"{P99_LIMIT_MS:.0f} ms, no loss\n\n")
    text += table(["server", "clients", "room", "deliveries/s", "at msg/s", "first step over"],
                  knee_rows)
    return text


def section_rates(quick: bool, servers: list[str], out: dict[str, Any],
                  rates: bool = True, connect: bool = True) -> str:
    """`rates`: 100 clients in two rooms of 50 at 20, 200, 400 and 800 msg/s;
    `connect`: 500 and 1000 clients connecting to a fresh server, until all
    have joined their rooms."""
    from .fanout import Workers, run_step
    from .servers import Server

    rate_rows, connect_rows = [], []
    kinds = [k for k in RATE_SERVERS if k in servers] if rates else []
    for kind in kinds:
        if kind == "socketio" and not _importable("flask_socketio"):
            rate_rows.append([KINDS[kind].label, "-", "-", "-", "-", "-", "not installed"])
            continue
        log(f"rates: {KINDS[kind].label}")
        server = Server(KINDS[kind]).start()
        pool = Workers(server.ws_url, KINDS[kind].dialect, 2)
        try:
            pool.call("grow", 100, timeout=600)
            time.sleep(1.0)
            for rate in RATES[:2] if quick else RATES:
                step = run_step(pool, f"rate{rate:.0f}", 50, rate, 2.0 if quick else 5.0, 5.0)
                out.setdefault("rates", {}).setdefault(kind, []).append(asdict(step))
                log(f"  {rate:.0f} msg/s: p50 {ms(step.p50)} p99 {ms(step.p99)} lost "
                    f"{step.lost} dup {step.duplicates} errors {step.errors}")
                rate_rows.append([KINDS[kind].label, f"{rate:.0f}", ms(step.p50), ms(step.p99),
                                  ms(step.max), f"{step.lost} of {step.expected}",
                                  f"{step.duplicates} dup, {step.errors} errors, "
                                  f"{step.disconnects} closed"])
                time.sleep(2.0)  # let an overloaded server drain before the next rate
        finally:
            pool.close()
            server.stop()
    # Size by size, the servers one after the other: a machine's slow and fast
    # spells (they move all servers' figures together) then hit each size's
    # figures alike, and the ratios hold better than the seconds.
    connect_kinds = [k for k in CONNECT_SERVERS if k in servers and connect]
    for n in ([100] if quick else CONNECT_SIZES) if connect_kinds else []:
        for kind in connect_kinds:
            log(f"connect: {KINDS[kind].label}, {n} clients")
            server = Server(KINDS[kind]).start()
            pool = Workers(server.ws_url, KINDS[kind].dialect, 2)
            try:
                cpu_before = server.cpu_seconds()
                grown = pool.call("grow", n, timeout=900)
                cpu = server.cpu_seconds() - cpu_before
                connected = sum(g["connected"] for g in grown)
                seconds = max(g["seconds"] for g in grown)
                frames = sum(g["frames"] for g in grown)
                received = sum(g["received"] for g in grown)
                rss = server.rss_bytes()
            finally:
                pool.close()
                server.stop()
            out.setdefault("connect", {}).setdefault(kind, []).append(
                {"clients": n, "connected": connected, "seconds": seconds, "frames": frames,
                 "received": received, "server_cpu_s": cpu})
            log(f"  {connected}/{n} in {seconds:.2f} s, {frames} frames to the clients, "
                f"{received / 1e6:.1f} MB, server CPU {cpu:.2f} s")
            connect_rows.append([KINDS[kind].label, n, connected, f"{seconds:.2f}", frames,
                                 f"{received / 1e6:.1f}", f"{cpu:.2f}", f"{rss / 2**20:.0f}"])
    relay = {r[1]: float(r[3]) for r in connect_rows if r[0] == KINDS["ws-relay"].label}
    for r in connect_rows:
        base = relay.get(r[1])
        r.append(f"{float(r[3]) / base:.1f}x" if base else "-")
    text = ""
    if rates:
        text += ("### Fixed rates: 100 clients in two rooms of 50, latency to every recipient "
                 "(ms); 'late' = not delivered within 5 s after the step\n\n")
        text += table(["server", "msg/s", "p50", "p99", "max", "late", "other"], rate_rows)
        text += "\n\n" + highest_rates(out.get("rates", {}))
    if not connect:
        return text
    text += ("\n\n### Connecting: a fresh server, clients say hello (Ahoy) and join a room of "
             "10 and one of 50, 32 at a time per load process; frames = every frame the "
             "clients received meanwhile (MB: their size), server CPU = its processes' "
             "user and system time meanwhile (what the machine's load changes least)\n\n")
    text += table(["server", "clients", "connected", "seconds", "frames", "MB", "server CPU s",
                   "RSS MB", "vs relay"], connect_rows)
    return text


def highest_rates(steps: dict[str, list[dict[str, Any]]]) -> str:
    """Each server's highest rate held: p99 within the limit, nothing late,
    duplicated or refused, no connection closed; and Ahoy's against the others'."""
    from .fanout import P99_LIMIT_MS

    held: dict[str, float] = {}
    for kind, runs in steps.items():
        held[kind] = 0.0
        for s in sorted(runs, key=lambda s: s["rate"]):  # up to the first step missed
            if not (s["p99"] <= P99_LIMIT_MS and s["delivered"] == s["expected"]
                    and not (s["duplicates"] or s["errors"] or s["disconnects"])):
                break
            held[kind] = s["rate"]
    rows = []
    ahoy = held.get("ahoy-gevent", 0.0)
    for kind, rate in held.items():
        ratio = f"{ahoy / rate:.1f}x" if rate and kind != "ahoy-gevent" else "-"
        rows.append([KINDS[kind].label, f"{rate:.0f}" if rate else "none", ratio])
    return (f"Highest rate held (p99 <= {P99_LIMIT_MS:.0f} ms, nothing late, duplicated "
            f"or refused; the ladder is {', '.join(f'{r:.0f}' for r in RATES)} msg/s, so "
            "'800' means 800 or more):\n\n"
            + table(["server", "highest msg/s", "Ahoy's against it"], rows))


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def phones_served(phones: int, never_over: bool, smallest: int) -> str:
    if not phones:
        return f"under {smallest}"
    # The largest size tried held: the board may serve more.
    return f"{phones} or more" if never_over else f"about {phones}"


def section_pi(quick: bool, out: dict[str, Any]) -> str:
    from .pi import RATE, ROOM, SIZES, run_pi

    here, results = run_pi(quick=quick, log=log)
    out["pi"] = {"nbody_s_per_step_here": here, "boards": [asdict(r) for r in results]}
    rows = [[r.board, f"{r.quota * 100:.1f} %", f"{r.nbody_check:.2f}x", f"{r.startup_s:.1f}",
             phones_served(r.phones, r.first_over == "not reached", SIZES[0]), r.first_over,
             r.source]
            for r in results]
    text = (f"### Capacity per board: the server on one CPU with a quota calibrated to the "
            f"board (bench/pi.py); phones at {RATE:.0f} msg/s in all in rooms of {ROOM}, "
            f"p99 <= 100 ms, nothing lost\n\n")
    return text + table(["board", "CPU quota", "n-body vs board", "start-up s", "phones",
                         "first size over", "calibration"], rows)


def section_sdcard(quick: bool, out: dict[str, Any]) -> str:
    from .sdcard import CLIENTS, FSYNC_DELAY_MS, ROOM, as_json, run_sdcard, why_not

    title = (f"### Group commit on a slow card: {CLIENTS} clients in rooms of {ROOM}, the "
             f"database on this machine's disk, then with every fsync {FSYNC_DELAY_MS} ms "
             f"longer, as on an SD card (bench/sdcard.py); latency to every recipient (ms); "
             f"'late' = not delivered within 5 s after the step\n\n")
    reason = why_not()
    if reason is not None:
        return title + f"skipped: {reason}."
    rows = run_sdcard(quick, log)
    out["sdcard"] = as_json(rows)
    return title + table(["disk", "fsync ms", "msg/s", "p50", "p99", "late", "errors"],
                         [[r.disk, f"{r.fsync_ms:.1f}", f"{r.rate:.0f}", ms(r.p50), ms(r.p99),
                           f"{r.late} of {r.expected}", r.errors] for r in rows])


def section_flood(quick: bool, out: dict[str, Any]) -> str:
    from .flood import run_flood

    results = run_flood(quick)
    out["flood"] = [asdict(r) for r in results]
    text = ("### Floods: a newcomer's /healthz (ms, new connection each, 2 s timeout) "
            "while one device misbehaves\n\n")
    return text + table(["scenario", "requests", "p50", "p95", "max", "failed", "the load"],
                        [r.row() for r in results])


def section_webapp() -> str:
    script = REPO / "bench" / "webapp_weight.py"
    if not script.exists():
        return "### Web app over the air\n\nskipped: bench/webapp_weight.py is not there yet."
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True,
                              text=True, timeout=180)
    except subprocess.TimeoutExpired:
        return "### Web app over the air\n\nskipped: bench/webapp_weight.py took over 3 minutes."
    body = done.stdout.strip() or done.stderr.strip()[-2000:]
    return "### Web app over the air: the first chat screen\n\n```\n" + body + "\n```"


def section_site(quick: bool) -> str:
    """Several boxes as one site (bench/site.py): in its own process, as its own tables."""
    args = [sys.executable, "-m", "bench.site", *(["--quick"] if quick else [])]
    try:
        done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        return "### Site\n\nskipped: bench/site.py took over an hour."
    return done.stdout.strip() or "### Site\n\nfailed:\n\n" + done.stderr.strip()[-2000:]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small, short smoke run")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (default: all of {','.join(SECTIONS)})")
    parser.add_argument("--servers", default=",".join(KINDS),
                        help=f"fan-out servers (default: {','.join(KINDS)})")
    parser.add_argument("--max-clients", type=int, default=1000,
                        help="fan-out: stop at this many clients (default 1000)")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    args = parser.parse_args()
    raise_fd_limit()
    sections = [s for s in args.only.split(",") if s]
    servers = [s for s in args.servers.split(",") if s]
    for name in sections:
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; pick from {', '.join(SECTIONS)}")
    for name in servers:
        if name not in KINDS:
            parser.error(f"unknown server {name!r}; pick from {', '.join(KINDS)}")
    started = time.monotonic()
    raw: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    load = os.getloadavg()
    parts = [f"## Ahoy benchmarks{' (quick)' if args.quick else ''}\n\nMachine: {machine()}\n\n"
             f"Load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
             f"({os.cpu_count()} CPUs; above about 1 per CPU the figures are from a busy machine)"]
    for name in sections:
        load = os.getloadavg()
        log(f"== {name} (load average {load[0]:.2f})")
        t = time.monotonic()
        parts.append(f"<!-- {name}: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
                     "at its start -->")
        try:
            if name == "startup":
                parts.append(section_startup(args.quick, raw))
            elif name == "memory":
                parts.append(section_memory(args.quick, raw))
            elif name == "callsetup":
                parts.append(section_callsetup(args.quick, raw))
            elif name == "rates":
                parts.append(section_rates(args.quick, servers, raw, connect=False))
            elif name == "connect":
                parts.append(section_rates(args.quick, servers, raw, rates=False))
            elif name == "pi":
                parts.append(section_pi(args.quick, raw))
            elif name == "sdcard":
                parts.append(section_sdcard(args.quick, raw))
            elif name == "fanout":
                parts.append(section_fanout(args.quick, servers, raw, args.max_clients))
            elif name == "flood":
                parts.append(section_flood(args.quick, raw))
            elif name == "webapp":
                parts.append(section_webapp())
            elif name == "site":
                parts.append(section_site(args.quick))
        except Exception as e:  # one broken section must not hide the others' figures
            parts.append(f"### {name}\n\nfailed: {type(e).__name__}: {e}")
        log(f"   {name} took {time.monotonic() - t:.0f} s")
    parts.append(f"Total bench time: {time.monotonic() - started:.0f} s")
    print("\n\n".join(parts))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
