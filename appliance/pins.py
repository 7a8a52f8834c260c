"""lgpio, gpiozero's pin library on a Pi, made safe to import under gevent.

On import, lgpio starts a thread that reads the GPIO edge reports from a FIFO
(`.lgd-nfy<N>` in `LG_WD`) with a plain blocking `read`. The production server
runs on gevent, which makes threads greenlets of one loop: that read then holds
the whole loop until a button is pressed, and the box answers nobody (seen
booting the arm64 image: `ahoy.service` was running and `/healthz` never
answered). So lgpio is imported here first, with that FIFO opened non-blocking
and read through gevent: the read waits in the loop like a socket does, and
the edge callbacks run in the loop like everything else.
"""

from __future__ import annotations

import builtins
import logging
import os
import sys
from typing import Any

log = logging.getLogger(__name__)

# lgpio's notification FIFOs (lgNotifyOpen in its C library).
FIFO_PREFIX = ".lgd-nfy"


class GreenFifo:
    """The read end of a FIFO whose reads wait in gevent's loop."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        from gevent import os as green_os
        from gevent import sleep

        data = green_os.nb_read(self.fd, size if size > 0 else 65536)
        if not data:
            # No writer (lgpio's library keeps one open, so only at its end):
            # the plain read returned at once too; do not spin the loop.
            sleep(1.0)
        return data

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


def threads_are_greenlets() -> bool:
    if "gevent" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("threading"))


def import_lgpio() -> Any:
    """Import lgpio (None when it is not installed) so that it cannot stop the loop."""
    if "lgpio" in sys.modules or not threads_are_greenlets():
        try:
            import lgpio
        except ImportError:
            return None
        return lgpio
    real_open = builtins.open

    def green_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if (isinstance(file, str) and os.path.basename(file).startswith(FIFO_PREFIX)
                and "r" in mode and "+" not in mode):
            return GreenFifo(file)
        return real_open(file, mode, *args, **kwargs)

    # Only for the import: lgpio opens its FIFO and starts its reader there.
    builtins.open = green_open
    try:
        import lgpio
    except ImportError:
        return None
    except Exception as e:  # its FIFO could not be made (LG_WD not writable)
        log.warning("lgpio could not start: %s", e)
        return None
    finally:
        builtins.open = real_open
    log.info("lgpio imported with its edge reports read through gevent")
    return lgpio
