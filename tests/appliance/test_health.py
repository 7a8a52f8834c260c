"""Box health: parsers on sample text, then a read of this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.health import (
    Health,
    parse_loadavg,
    parse_meminfo,
    parse_temperature,
    parse_uptime,
    read_health,
)

MEMINFO = """\
MemTotal:         944120 kB
MemFree:          101236 kB
MemAvailable:     612344 kB
Buffers:           40212 kB
HugePages_Total:       0
"""


def test_parsers_read_the_kernel_formats() -> None:
    assert parse_uptime("3725.51 14612.02\n") == 3725.51
    assert parse_meminfo(MEMINFO) == (944120 * 1024, 612344 * 1024)
    assert parse_meminfo("MemTotal: 1000 kB\nMemFree: 250 kB\n") == (1024000, 256000)
    assert parse_temperature("48312\n") == pytest.approx(48.312)
    assert parse_temperature("garbage") is None
    assert parse_loadavg("0.52 0.31 0.20 2/181 1234\n") == (0.52, 0.31, 0.20)


@pytest.fixture
def fake_pi(tmp_path: Path) -> tuple[Path, Path]:
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    proc.mkdir()
    (proc / "uptime").write_text("90061.00 1.00\n")
    (proc / "meminfo").write_text(MEMINFO)
    (proc / "loadavg").write_text("1.50 1.00 0.50 1/99 42\n")
    zone = sys / "class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("61500\n")
    return proc, sys


def test_health_of_a_pi(fake_pi: tuple[Path, Path], tmp_path: Path) -> None:
    proc, sys = fake_pi
    health = read_health(tmp_path, proc=proc, sysfs=sys)
    assert health.uptime_seconds == 90061.0
    assert health.cpu_temperature_c == 61.5
    assert health.memory_used_percent == pytest.approx(100 * (1 - 612344 / 944120))
    assert health.load_average == (1.5, 1.0, 0.5)
    assert 0 < health.disk_free_bytes <= health.disk_total_bytes
    assert 0 <= health.disk_used_percent <= 100


def test_no_thermal_sensor_means_no_temperature(fake_pi: tuple[Path, Path], tmp_path: Path) -> None:
    proc, _ = fake_pi
    health = read_health(tmp_path, proc=proc, sysfs=tmp_path / "empty-sys")
    assert health.cpu_temperature_c is None


def test_health_of_this_machine(tmp_path: Path) -> None:
    health = read_health(tmp_path)
    assert isinstance(health, Health)
    assert health.uptime_seconds > 0
    assert health.memory_total_bytes > health.memory_available_bytes > 0
