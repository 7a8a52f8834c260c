"""Shared fixtures: the real Ahoy service on loopback, and WebSocket test clients."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ahoytest import AhoyServer, WsClient
from hypothesis import settings

# Tests check behaviour, not timings: on a loaded CI machine a Hypothesis example
# may take longer than its default 200 ms deadline without anything being wrong.
settings.register_profile("ahoy", deadline=None)
settings.load_profile("ahoy")

# Hypothesis imports its regex strategy lazily, inside a test, where it has
# raised the recursion limit; CPython 3.11.7 then fails to compile that module
# ("AST constructor recursion depth mismatch"). Importing it here, at a normal
# depth, avoids the interpreter bug.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # its "slow code in plugin" notice
    try:
        import hypothesis.strategies._internal.regex  # noqa: F401
    except ImportError:  # another hypothesis layout: nothing to work around
        pass


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """One Playwright for the whole run: a second one cannot start inside the
    first one's asyncio loop."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        yield p


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the real-browser tests last.

    Playwright's sync API keeps an asyncio loop running in the main thread for
    as long as its fixture lives, and asyncio.run() (aiortc) and pyroute2 cannot
    run inside it.
    """
    items.sort(key=lambda item: "tests/browser/" in item.nodeid or
               item.get_closest_marker("browser") is not None)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    """Start servers on demand (tests that kill and restart them)."""
    started: list[AhoyServer] = []

    def start(data_dir: Path | None = None, extra_args: tuple[str, ...] = ()) -> AhoyServer:
        server = AhoyServer(data_dir or tmp_path / "data", extra_args=extra_args)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def ahoy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AhoyServer]:
    """One real service shared by the tests of a module."""
    server = AhoyServer(tmp_path_factory.mktemp("ahoy") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def ws_client(ahoy_server: AhoyServer) -> Iterator[Any]:
    """Make connected WebSocket clients to the shared server; all closed afterwards."""
    clients: list[WsClient] = []

    def make(name: str | None = None, url: str | None = None) -> WsClient:
        c = WsClient(url or ahoy_server.ws_url)
        clients.append(c)
        if name is not None:
            reply = c.hello(name)
            assert reply["type"] == "welcome", reply
        return c

    yield make
    for c in clients:
        c.close()
