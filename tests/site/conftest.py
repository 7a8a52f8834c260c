"""Fixtures shared by the site tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sitetest import SiteBox, make_site, wait_for


@pytest.fixture
def two_boxes(tmp_path: Path) -> Iterator[list[SiteBox]]:
    """Two boxes of one site, started and linked to each other."""
    boxes = make_site(tmp_path, 2)
    try:
        for box in boxes:
            box.start()
        wait_for(lambda: all(b.status().get("linked") == 1 for b in boxes), what="links")
        yield boxes
    finally:
        for box in boxes:
            box.stop()
