"""Real-browser fixtures: Debian's Chromium driven by Playwright, with fake camera and mic."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

from browserkit import CHROMIUM, Phone, launch  # noqa: E402


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    b = launch(playwright)
    yield b
    b.close()


@pytest.fixture
def phones(browser: Any) -> Iterator[Any]:
    opened: list[Phone] = []

    def open_phone(url: str) -> Phone:
        phone = Phone(browser, url)
        opened.append(phone)
        return phone

    yield open_phone
    for phone in opened:
        assert not phone.errors, f"JavaScript errors: {phone.errors}"
        phone.close()
