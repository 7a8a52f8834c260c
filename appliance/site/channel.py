"""The inbox between the NATS thread and the service: put from any OS thread,
taken in batches on the service's side (a greenlet under gevent, a thread in
development).

Under gevent, a greenlet must never wait on a lock another OS thread holds,
and gevent's own queues are not for other threads. So `put` appends to a
deque (thread-safe) and wakes the service's loop with a libev async watcher,
whose `send` is the one call gevent allows from another thread.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

BATCH = 200


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("threading"))


class Inbox:
    """Items from the NATS thread, handed to `handle` in order, up to BATCH at a time."""

    def __init__(self, handle: Callable[[list[Any]], None]) -> None:
        self.handle = handle
        self.items: collections.deque[Any] = collections.deque()
        self._stopped = False
        self._wake: Callable[[], None]
        if _gevent_patched():
            import gevent
            import gevent.event

            ready = gevent.event.Event()
            watcher = gevent.get_hub().loop.async_()
            watcher.start(ready.set)
            self._watcher = watcher
            self._wake = watcher.send
            self._greenlet = gevent.spawn(self._drain_gevent, ready)
        else:
            event = threading.Event()
            self._wake = event.set
            self._thread = threading.Thread(target=self._drain_thread, args=(event,),
                                            name="ahoy-site-inbox", daemon=True)
            self._thread.start()

    def put(self, item: Any) -> None:
        """From any thread."""
        self.items.append(item)
        self._wake()

    def __len__(self) -> int:
        return len(self.items)

    def close(self) -> None:
        self._stopped = True
        self._wake()

    def _take(self) -> list[Any]:
        batch: list[Any] = []
        while self.items and len(batch) < BATCH:
            batch.append(self.items.popleft())
        return batch

    def _run_batches(self) -> None:
        while not self._stopped:
            batch = self._take()
            if not batch:
                return
            try:
                self.handle(batch)
            except Exception:
                log.exception("site: handling %d events failed", len(batch))

    def _drain_gevent(self, ready: Any) -> None:
        while not self._stopped:
            ready.wait()
            ready.clear()
            self._run_batches()

    def _drain_thread(self, event: threading.Event) -> None:
        while not self._stopped:
            event.wait()
            event.clear()
            self._run_batches()
