"""Recent service events for the admin page: the last few hundred log records, in memory.

Nothing is written to disk (the journal already keeps the service's output);
this only lets the admin read what happened lately without a screen or SSH.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from typing import Any

CAPACITY = 500
# Every HTTP request is logged by Werkzeug; the admin page's own polling would
# push the interesting events out of the buffer.
IGNORED_LOGGERS = ("werkzeug", "geventwebsocket", "urllib3")
MAX_MESSAGE = 2000


class LogBuffer(logging.Handler):
    """A logging handler that keeps the newest `capacity` records as plain dicts."""

    def __init__(self, capacity: int = CAPACITY, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._records: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(IGNORED_LOGGERS):
            return
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                message += f" ({type(exc).__name__}: {exc})"
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        with self._guard:
            self._records.append({
                "id": next(self._ids),
                "time": record.created,
                "level": record.levelname,
                "logger": record.name,
                "message": message[:MAX_MESSAGE],
            })

    def records(self, after: int = 0) -> list[dict[str, Any]]:
        """Records newer than id `after`, oldest first."""
        with self._guard:
            return [r for r in self._records if r["id"] > after]


_installed: LogBuffer | None = None
_install_lock = threading.Lock()


def install() -> LogBuffer:
    """Attach the process's one LogBuffer to the root logger (once) and return it."""
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = LogBuffer()
            logging.getLogger().addHandler(_installed)
        return _installed
