"""Starting the servers under test on free loopback ports, and reading their memory."""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    dialect: str  # how the load generator talks to it: ahoy, socketio, relay


KINDS = {
    k.name: k for k in [
        Kind("ahoy-gevent", "Ahoy, gevent pywsgi (production)", "ahoy"),
        Kind("ahoy-gevent-tmpfs", "Ahoy, gevent, database on tmpfs (no fsync cost)", "ahoy"),
        Kind("ahoy-werkzeug", "Ahoy, Werkzeug threaded (--dev)", "ahoy"),
        Kind("ahoy-gunicorn", "Ahoy, gunicorn gthread", "ahoy"),
        Kind("socketio", "Flask-SocketIO, gevent", "socketio"),
        Kind("ws-relay", "bare websockets relay", "relay"),
        Kind("flask-sock-relay", "the same relay on Flask, flask-sock and gevent", "relay"),
    ]
}


def raise_fd_limit(want: int = 8192) -> None:
    """Children inherit it: 1000 clients need more than the usual 1024 descriptors."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


CGROUP_CPU = Path("/sys/fs/cgroup/cpu")  # cgroup v1; v2 has cpu.max instead
QUOTA_PERIOD_US = 10_000
MIN_QUOTA_US = 1000


def cpu_quota_group(share: float) -> Path:
    """A new CPU cgroup whose processes get `share` of one CPU (10 ms periods,
    so the server is throttled finely, as a slower core would be)."""
    name = f"ahoy-bench-{os.getpid()}-{time.monotonic_ns()}"
    v2 = Path("/sys/fs/cgroup/unified") if (Path("/sys/fs/cgroup/unified") / "cgroup.procs"
                                            ).exists() else Path("/sys/fs/cgroup")
    group = (CGROUP_CPU if CGROUP_CPU.is_dir() else v2) / name
    group.mkdir()
    set_cpu_quota(group, share)
    return group


def set_cpu_quota(group: Path, share: float) -> None:
    """Give `group` `share` of one CPU. The kernel's smallest quota is 1 ms, so
    below 10 % the period grows instead of the quota being rounded up (a 7.5 %
    share in 10 ms periods would otherwise get 10 %)."""
    period = max(QUOTA_PERIOD_US, math.ceil(MIN_QUOTA_US / share))
    quota = max(MIN_QUOTA_US, round(share * period))
    if (group / "cpu.cfs_quota_us").exists():
        (group / "cpu.cfs_quota_us").write_text("-1")  # the period may shrink below it
        (group / "cpu.cfs_period_us").write_text(str(period))
        (group / "cpu.cfs_quota_us").write_text(str(quota))
    else:
        (group / "cpu.max").write_text(f"{quota} {period}")


@dataclass
class Server:
    kind: Kind
    port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    workdir: Path = field(default_factory=lambda: Path())
    started_at: float = 0.0
    ready_s: float = 0.0
    extra_args: tuple[str, ...] = ()  # more `serve` options (Ahoy only)
    # Run on this one CPU only, with at most `cpu_quota` of it (bench/pi.py).
    cpu: int | None = None
    cpu_quota: float | None = None
    cgroup: Path | None = None
    # More environment for the server (bench/sdcard.py: a slow fsync).
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}" + ("/ws" if self.kind.dialect == "ahoy" else "")

    def command(self) -> list[str]:
        py = sys.executable
        data = str(self.workdir / "data")
        # Every load-generator client connects from 127.0.0.1: lift the per-device
        # limits (bench/flood.py measures them).
        ahoy = [py, "-m", "appliance", "serve", "--data-dir", data, "--host", "127.0.0.1",
                "--port", str(self.port), "--https-port", str(self.https_port),
                "--log-level", "WARNING", "--max-connections-per-client", "100000",
                "--max-unfinished-per-client", "100000", *self.extra_args]
        match self.kind.name:
            case "ahoy-gevent":
                return ahoy
            case "ahoy-gevent-tmpfs":
                return ahoy
            case "ahoy-werkzeug":
                return [*ahoy, "--dev"]
            case "ahoy-gunicorn":
                return [py, "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads", "4000",
                        "--worker-connections", "4000", "--timeout", "600",
                        "--log-level", "warning", "-b", f"127.0.0.1:{self.port}",
                        "bench.ahoy_wsgi:create()"]
            case "socketio":
                return [py, "-m", "bench.baselines.socketio_server", "--port", str(self.port)]
            case "ws-relay":
                return [py, "-m", "bench.baselines.ws_relay", "--port", str(self.port)]
            case "flask-sock-relay":
                return [py, "-m", "bench.baselines.flask_sock_relay", "--port", str(self.port)]
        raise ValueError(self.kind.name)

    def __post_init__(self) -> None:
        if self.cpu_quota is not None:
            self.cgroup = cpu_quota_group(self.cpu_quota)
        # The database goes on the real disk (fsync costs what it costs here),
        # except for the tmpfs variant, which shows Ahoy without that cost.
        where = "/dev/shm" if self.kind.name.endswith("-tmpfs") else None
        self.workdir = Path(tempfile.mkdtemp(prefix="ahoy-bench-", dir=where))

    def start(self, timeout: float = 30) -> Server:
        raise_fd_limit()
        env = dict(os.environ, PYTHONUNBUFFERED="1", GPIOZERO_PIN_FACTORY="mock",
                   AHOY_BENCH_DATA=str(self.workdir / "data"), AHOY_BENCH_PORT=str(self.port),
                   PYTHONWARNINGS="ignore", **self.extra_env)
        log = open(self.workdir / "server.log", "ab")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(self.command(), cwd=REPO, stdout=log,
                                        stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=self._confine if self.cpu is not None
                                        or self.cpu_quota is not None else None)
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind.name} exited with {self.process.returncode}; "
                                   f"see {self.workdir / 'server.log'}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        self.ready_s = time.monotonic() - self.started_at
                        return self
            except OSError:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"{self.kind.name} did not answer /healthz within {timeout} s")

    def _confine(self) -> None:
        """In the child before exec: pin to one CPU, join the CPU-quota group."""
        if self.cpu is not None:
            os.sched_setaffinity(0, {self.cpu})
        if self.cgroup is not None:
            (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))

    def pids(self) -> list[int]:
        """The server process and its children (gunicorn's worker)."""
        assert self.process is not None
        out = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            out += [int(p) for p in children.read_text().split()]
        except OSError:
            pass
        return out

    def status(self, field_name: str) -> int:
        """A /proc/<pid>/status figure summed over the server's processes (kB for VmRSS)."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(field_name + ":"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def cpu_seconds(self) -> float:
        """User and system CPU time of the server's processes so far (/proc/<pid>/stat)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
            except (OSError, IndexError, ValueError):
                pass
        return total

    def rss_bytes(self) -> int:
        return self.status("VmRSS") * 1024

    def threads(self) -> int:
        return self.status("Threads")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.cgroup is not None:
            try:
                self.cgroup.rmdir()
            except OSError:
                pass
            self.cgroup = None
