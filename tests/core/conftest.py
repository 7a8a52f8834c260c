"""Fixtures for the core tests."""

from __future__ import annotations

import pytest
from hubdriver import Box

from appliance.store import Store


@pytest.fixture
def box() -> Box:
    return Box(Store(":memory:"))
