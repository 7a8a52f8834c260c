"""Helpers for the terminal client's tests: run a BoxClient, record what it reports."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

from appliance.terminal.boxclient import BoxClient
from appliance.terminal.boxes import parse_box
from appliance.terminal.conversations import Message
from appliance.terminal.state import StateFile


def run(coro: Coroutine[Any, Any, Any], timeout: float = 90) -> Any:
    """Run an async scenario from a plain pytest test."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Recorder:
    """Every event a client reports, in order."""

    def __init__(self, client: Any) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        client.listeners.append(self)

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        self.events.append((event, data))

    def messages(self, conv: str | None = None) -> list[Message]:
        """New messages from others, as reported (each should come once)."""
        return [d["message"] for e, d in self.events
                if e == "message" and not d["own"] and (conv is None or d["conv"] == conv)]

    async def wait(self, test: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not test():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or test}; events: "
                                     f"{[e for e, _ in self.events]}")
            await asyncio.sleep(0.02)


def new_client(url: str, state_path: Path, name: str | None = None,
               **options: Any) -> BoxClient:
    return BoxClient(parse_box(url), StateFile(state_path), name, **options)


@contextlib.asynccontextmanager
async def running(client: Any, online: bool = True) -> AsyncIterator[Any]:
    """The client connected (joined, with ``online``) for the block, stopped after."""
    task = asyncio.ensure_future(client.run())
    try:
        if online:
            await client.wait_online(10)
        yield client
    finally:
        client.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
