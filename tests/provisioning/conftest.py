"""Fixtures for the provisioning tests: a boot partition and a data partition in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def boot(tmp_path: Path) -> Path:
    (tmp_path / "boot").mkdir()
    return tmp_path / "boot" / "ahoy.txt"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"
