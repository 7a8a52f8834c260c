"""The box under test: the production-mode service on a data folder, killed
and restarted, and the small ext4 file system whose power can be cut."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..servers import REPO, free_port, raise_fd_limit

# linux/fs.h: FS_IOC_SHUTDOWN = _IOR('X', 125, __u32), the ioctl xfstests' `godown`
# uses to simulate a power failure; NOLOGFLUSH writes neither the journal nor data.
FS_IOC_SHUTDOWN = 0x8004587D
FS_GOING_FLAGS_NOLOGFLUSH = 2


class ServiceDidNotStart(RuntimeError):
    pass


class Service:
    """`python -m appliance serve` in production mode (gevent) on loopback ports.

    The ports stay the same across restarts, so phones come back to the same
    address. Retention is off (`0`, keep forever), so a missing old message is
    a loss, not a prune.
    """

    def __init__(self, data_dir: Path, workdir: Path) -> None:
        self.data_dir = data_dir
        self.workdir = workdir
        self.port = free_port()
        self.https_port = free_port()
        self.config = workdir / "ahoy.txt"
        self.config.write_text("retention_days = 0\nretention_messages = 0\n")
        self.log_path = workdir / "service.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = 30) -> float:
        """Start and wait until /healthz answers; returns the seconds that took."""
        raise_fd_limit()
        env = dict(os.environ, PYTHONUNBUFFERED="1", GPIOZERO_PIN_FACTORY="mock",
                   PYTHONWARNINGS="ignore")
        command = [sys.executable, "-m", "appliance", "serve", "--data-dir", str(self.data_dir),
                   "--host", "127.0.0.1", "--port", str(self.port),
                   "--https-port", str(self.https_port), "--config", str(self.config),
                   "--no-mdns", "--log-level", "WARNING"]
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"--- start at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.process = subprocess.Popen(command, cwd=REPO, stdout=log,
                                            stderr=subprocess.STDOUT, env=env)
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise ServiceDidNotStart(
                    f"the service exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise ServiceDidNotStart(f"no /healthz answer within {timeout:.0f} s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 6) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:])


class PowerCutUnavailable(RuntimeError):
    pass


class PowerCutDisk:
    """A small ext4 file system in a loop device, mounted as the box mounts /data
    (`noatime,commit=5,errors=remount-ro`), whose power can be cut.

    Cutting the power shuts the file system down without flushing its journal
    or any data (FS_IOC_SHUTDOWN, NOLOGFLUSH), so from that instant nothing
    more reaches the disk and whatever the kernel had not yet written is lost;
    what an fsync made durable stays. Then, as at the box's next boot: e2fsck
    -p and a fresh mount (the journal is replayed).

    Not simulated: a disk that loses writes it already reported done (a
    volatile cache that ignores flushes). The loop device passes the kernel's
    writes to the image file as they are issued.
    """

    def __init__(self, workdir: Path, size_mb: int = 128) -> None:
        self.image = workdir / "data.img"
        self.mountpoint = workdir / "data"
        self.size_mb = size_mb
        self.device = ""
        self.method = ""

    @staticmethod
    def unavailable() -> str:
        """Why a power cut cannot be simulated here, or "" when it can."""
        if os.geteuid() != 0:
            return "needs root (a loop device and mount)"
        for tool in ("losetup", "mkfs.ext4", "e2fsck", "mount", "umount"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed"
        if not Path("/dev/loop-control").exists():
            return "no loop devices (/dev/loop-control is missing)"
        if "ext4" not in Path("/proc/filesystems").read_text():
            return "the kernel has no ext4"
        return ""

    def create(self) -> None:
        with open(self.image, "wb") as f:
            f.truncate(self.size_mb * 2**20)
        run("mkfs.ext4", "-q", "-F", "-L", "AHOYDATA", str(self.image))
        self.mountpoint.mkdir(exist_ok=True)

    def mount(self) -> None:
        self.device = run("losetup", "--find", "--show", str(self.image)).strip()
        try:
            run("mount", "-t", "ext4", "-o", "noatime,commit=5,errors=remount-ro",
                self.device, str(self.mountpoint))
        except RuntimeError:
            self._detach()
            raise

    def sync(self) -> None:
        """Everything written so far onto the disk, as after the box ran a while."""
        fd = os.open(self.mountpoint, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.sync()
        finally:
            os.close(fd)

    def cut_power(self) -> None:
        """From now on nothing reaches the disk. Records how in `method`."""
        fd = os.open(self.mountpoint, os.O_RDONLY)
        try:
            fcntl.ioctl(fd, FS_IOC_SHUTDOWN, struct.pack("I", FS_GOING_FLAGS_NOLOGFLUSH))
            self.method = "FS_IOC_SHUTDOWN without log flush"
            return
        except OSError as e:
            shutdown_error = e
        finally:
            os.close(fd)
        # Older kernels: an ext4 error aborts the journal (the mount has errors=remount-ro).
        trigger = Path("/sys/fs/ext4") / Path(self.device).name / "trigger_fs_error"
        try:
            trigger.write_text("1\n")
            self.method = "ext4 trigger_fs_error (journal aborted)"
        except OSError as e:
            raise PowerCutUnavailable(
                f"FS_IOC_SHUTDOWN failed ({shutdown_error.strerror}) and so did "
                f"{trigger} ({e.strerror})") from e

    def unmount(self) -> None:
        if self.device:
            run("umount", str(self.mountpoint))
            self._detach()

    def _detach(self) -> None:
        run("losetup", "-d", self.device)
        self.device = ""

    def fsck(self) -> str:
        """`e2fsck -p`, as systemd-fsck runs it at boot; what it said, in a few words."""
        done = subprocess.run(["e2fsck", "-p", str(self.image)], capture_output=True,
                              text=True, timeout=120)
        if done.returncode == 0:
            return "clean"
        if done.returncode == 1:
            return "fsck fixed errors"
        return f"fsck exit {done.returncode}: {(done.stdout + done.stderr).strip()[-200:]}"

    def remove(self) -> None:
        try:
            self.unmount()
        except RuntimeError:
            pass
        self.image.unlink(missing_ok=True)


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")
    return done.stdout
