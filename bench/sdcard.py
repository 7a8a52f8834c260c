"""Group commit on a slow card: the database on a disk that takes as long per
fsync as an SD card, next to this machine's disk in the same run.

No Pi and no SD card here, and no way to slow a disk down: this kernel has no
device-mapper (dm-delay), and its cgroup v1 blkio throttling does not reach
buffered writes that an fsync flushes (a loop device throttled to 100 writes a
second still fsynced in 0.5 ms). So the server runs with a small preloaded
library (built here with cc) that makes every fsync and fdatasync take
FSYNC_DELAY_MS longer after the real one: SQLite's commit waits for it as it
would for a card. `fsync ms` is measured with the library, as a median of 50
4 KiB writes each fsynced. What it does not model: a card's slower writes
themselves (bandwidth), and its occasional pauses of hundreds of ms (wear
levelling, garbage collection).

The result says what group commit does with a slow disk: the messages that
arrive during one fsync share the next commit, so a slower fsync makes batches
bigger and adds about its own duration to each message's latency, instead of
capping the message rate at one per fsync.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .fanout import Workers, run_step
from .servers import KINDS, Server

FSYNC_DELAY_MS = 20  # a typical SD card's small synchronous write: several ms to tens
RATES = [20.0, 200.0, 400.0]
CLIENTS = 100
ROOM = 50

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
static void slow(void) {
    const char *ms = getenv("AHOY_FSYNC_DELAY_MS");
    long d = ms ? atol(ms) : 0;
    struct timespec t = {d / 1000, (d % 1000) * 1000000L};
    while (d > 0 && nanosleep(&t, &t) != 0) {}
}
int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int r = real(fd); slow(); return r;
}
int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int r = real(fd); slow(); return r;
}
"""


@dataclass
class CardRow:
    disk: str
    fsync_ms: float
    rate: float
    p50: float
    p99: float
    late: int
    expected: int
    errors: int


def why_not() -> str | None:
    if shutil.which("cc") is None:
        return "no C compiler (cc) to build the slow-fsync library"
    return None


def build_shim(folder: Path) -> Path:
    source, lib = folder / "slowfsync.c", folder / "slowfsync.so"
    source.write_text(SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(lib), str(source), "-ldl"],
                   check=True)
    return lib


def fsync_ms(folder: Path, env: dict[str, str]) -> float:
    """Median ms to write 4 KiB and fsync it, with `env` (the library or not)."""
    code = ("import os,time,statistics,sys\n"
            "fd=os.open(sys.argv[1],os.O_WRONLY|os.O_CREAT,0o600);t=[]\n"
            "for i in range(50):\n"
            " s=time.perf_counter();os.pwrite(fd,os.urandom(4096),i*4096);os.fsync(fd)\n"
            " t.append(time.perf_counter()-s)\n"
            "print(statistics.median(t)*1000)\n")
    probe = folder / "fsync-probe"
    out = subprocess.run(["python3", "-c", code, str(probe)], check=True,
                         capture_output=True, text=True, env={**os.environ, **env}).stdout
    probe.unlink()
    return float(out)


def run_sdcard(quick: bool, log: Callable[[str], None]) -> list[CardRow]:
    rows: list[CardRow] = []
    work = Path(tempfile.mkdtemp(prefix="ahoy-card-"))
    try:
        slow = {"LD_PRELOAD": str(build_shim(work)), "AHOY_FSYNC_DELAY_MS": str(FSYNC_DELAY_MS)}
        for disk, env in (("this machine's disk", {}),
                          (f"as an SD card (+{FSYNC_DELAY_MS} ms an fsync)", slow)):
            server = Server(KINDS["ahoy-gevent"], extra_env=env)
            ms = fsync_ms(server.workdir, env)
            log(f"sdcard: {disk}: fsync {ms:.1f} ms")
            server.start()
            pool = Workers(server.ws_url, "ahoy", 2)
            try:
                pool.call("grow", CLIENTS, timeout=600)
                time.sleep(1.0)
                for rate in RATES[:1] if quick else RATES:
                    step = run_step(pool, f"card{rate:.0f}", ROOM, rate, 2.0 if quick else 5.0,
                                    5.0)
                    log(f"  {rate:.0f} msg/s: p50 {step.p50:.1f} p99 {step.p99:.1f} "
                        f"late {step.lost}")
                    rows.append(CardRow(disk, ms, rate, step.p50, step.p99, step.lost,
                                        step.expected, step.errors))
                    time.sleep(2.0)
            finally:
                pool.close()
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def as_json(rows: list[CardRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
