"""Box health for the admin page: uptime, temperature, memory, disk, load.

Parsers take file contents, :func:`read_health` does the reading; the
``proc`` and ``sysfs`` roots are arguments so tests can point at fake trees.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
SYS = Path("/sys")


@dataclass(frozen=True)
class Health:
    """A snapshot of the box's health."""

    uptime_seconds: float
    cpu_temperature_c: float | None  # None where there is no thermal sensor
    memory_total_bytes: int
    memory_available_bytes: int
    disk_total_bytes: int
    disk_free_bytes: int
    load_average: tuple[float, float, float]

    @property
    def memory_used_percent(self) -> float:
        if not self.memory_total_bytes:
            return 0.0
        used = self.memory_total_bytes - self.memory_available_bytes
        return 100.0 * used / self.memory_total_bytes

    @property
    def disk_used_percent(self) -> float:
        if not self.disk_total_bytes:
            return 0.0
        return 100.0 * (self.disk_total_bytes - self.disk_free_bytes) / self.disk_total_bytes


def parse_uptime(text: str) -> float:
    """Seconds since boot, from ``/proc/uptime`` ("12345.67 54321.00")."""
    return float(text.split()[0])


def parse_meminfo(text: str) -> tuple[int, int]:
    """(total, available) bytes from ``/proc/meminfo``."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            scale = 1024 if fields[1:] == ["kB"] else 1
            values[key.strip()] = int(fields[0]) * scale
    total = values.get("MemTotal", 0)
    # MemAvailable exists since Linux 3.14; older kernels only have MemFree.
    available = values.get("MemAvailable", values.get("MemFree", 0))
    return total, available


def parse_temperature(text: str) -> float | None:
    """Degrees Celsius from a thermal zone's ``temp`` (millidegrees)."""
    try:
        return int(text.strip()) / 1000
    except ValueError:
        return None


def parse_loadavg(text: str) -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages from ``/proc/loadavg``."""
    one, five, fifteen = (float(f) for f in text.split()[:3])
    return one, five, fifteen


def read_health(data_dir: Path, *, proc: Path = PROC, sysfs: Path = SYS) -> Health:
    """Read the box's health now; ``data_dir`` is the data partition's mount."""
    total, available = parse_meminfo((proc / "meminfo").read_text())
    disk = shutil.disk_usage(data_dir)
    return Health(
        uptime_seconds=parse_uptime((proc / "uptime").read_text()),
        cpu_temperature_c=_read_temperature(sysfs / "class/thermal/thermal_zone0/temp"),
        memory_total_bytes=total,
        memory_available_bytes=available,
        disk_total_bytes=disk.total,
        disk_free_bytes=disk.free,
        load_average=_read_loadavg(proc / "loadavg"),
    )


def _read_temperature(path: Path) -> float | None:
    try:
        return parse_temperature(path.read_text())
    except OSError:
        return None  # no sensor (a VM, a container), or it is not readable


def _read_loadavg(path: Path) -> tuple[float, float, float]:
    try:
        return parse_loadavg(path.read_text())
    except OSError:
        return os.getloadavg()
