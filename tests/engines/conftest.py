"""Fixtures for the cross-engine tests: one box per module; for the whole run
one Firefox (a browser context per person), one private X display for WebKit
(a MiniBrowser per person) and one Chromium through Playwright, the usual
other side."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ahoytest import AhoyServer
from enginekit import (
    ADMIN_PASSWORD,
    ChromiumPhone,
    EnginePhone,
    FirefoxDriver,
    FirefoxPhone,
    WebKitPhone,
    Xvfb,
    firefox_missing,
    webkit_missing,
)

from provisioning.credentials import set_admin_password

CHROMIUM = os.environ.get("AHOY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 "--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-gpu", "--no-first-run", "--ignore-certificate-errors"]



@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AhoyServer]:
    """One real box shared by a module's tests, with an admin password set."""
    data_dir = tmp_path_factory.mktemp("engines") / "data"
    set_admin_password(data_dir, ADMIN_PASSWORD)
    server = AhoyServer(data_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium(playwright: Any) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="session")
def firefox() -> Iterator[FirefoxDriver]:
    why = firefox_missing()
    if why:
        pytest.skip(why)
    try:
        driver = FirefoxDriver()
    except subprocess.CalledProcessError as err:  # npm ci: no registry here
        pytest.skip(f"cannot install puppeteer-core (npm ci in tests/engines/firefox): "
                    f"{(err.stderr or b'').decode(errors='replace')[-300:]}")
    yield driver
    driver.close()


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    why = webkit_missing()
    if why:
        pytest.skip(why)
    x = Xvfb()
    yield x.display
    x.close()


@pytest.fixture
def people(request: pytest.FixtureRequest) -> Iterator[Callable[[str, str], EnginePhone]]:
    """open(engine, url): a new person in that engine; closed (and checked for
    JavaScript errors) after the test."""
    opened: list[EnginePhone] = []

    def open_person(engine: str, url: str) -> EnginePhone:
        phone: EnginePhone
        if engine == "chromium":
            phone = ChromiumPhone(request.getfixturevalue("chromium"), url)
        elif engine == "firefox":
            phone = FirefoxPhone(request.getfixturevalue("firefox"), url)
        elif engine == "webkit":
            phone = WebKitPhone(request.getfixturevalue("display"), url)
        else:
            raise ValueError(engine)
        opened.append(phone)
        return phone

    yield open_person
    failures = []
    for phone in opened:
        try:
            phone.check_no_errors()
        except AssertionError as err:
            failures.append(str(err))
        finally:
            phone.close()
    assert not failures, failures
