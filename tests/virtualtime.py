"""Virtual time for a driver thread (status lights, status button).

The drivers take a clock and a wait (``clock=``, ``wait=``). Given a
:class:`VirtualTime`, their thread sees time move only when the test moves it,
and the test knows when the thread has acted on each moment: the thread is back
asleep. So a test checks what happens at which moment exactly, however slow the
machine is, instead of sleeping real time and hoping the thread kept up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

# Real seconds a test waits for the thread to act before calling it hung: only
# reached when something is broken, so generous for a loaded machine.
PATIENCE = 30.0


class Waitable(Protocol):
    def wait(self, timeout: float | None = None) -> bool: ...


class VirtualTime:
    """Clock and wait for exactly one driver thread; starts at an arbitrary moment."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._cond = threading.Condition()
        self._asleep = False
        self._deadline: float | None = None
        self._sleeps = 0  # how often the thread went to sleep
        self._waitable: Waitable | None = None

    def __call__(self) -> float:
        return self.now

    def wait(self, waitable: Waitable, timeout: float | None) -> bool:
        """The driver's wait: until woken, or until the test moves time to the deadline.

        Waits on ``waitable`` with no timeout, so no wake-up is ever lost (a
        ``Condition.wait`` with a timeout can swallow one); :meth:`advance`
        wakes it when time reaches the deadline.
        """
        with self._cond:
            self._waitable = waitable
            self._deadline = None if timeout is None else self.now + timeout
            self._asleep = True
            self._sleeps += 1
            self._cond.notify_all()
        try:
            return waitable.wait(None)
        finally:
            with self._cond:
                self._asleep = False
                self._cond.notify_all()

    def _wake(self) -> None:
        """Wake the thread as its own timeout would (drivers re-check everything on waking)."""
        waitable = self._waitable
        if isinstance(waitable, threading.Event):
            waitable.set()
        elif isinstance(waitable, threading.Condition):
            with waitable:
                waitable.notify_all()
        else:
            raise TypeError(f"cannot wake a thread waiting on {waitable!r}")

    def _until(self, condition: Callable[[], bool], what: str) -> None:
        with self._cond:
            assert self._cond.wait_for(condition, PATIENCE), f"driver thread never {what}"

    def settle(self) -> None:
        """Wait until the thread is asleep (after starting, say)."""
        self._until(lambda: self._asleep, "went to sleep")

    @contextmanager
    def wakes(self) -> Iterator[None]:
        """Around something that wakes the thread: returns once it has acted and sleeps again."""
        self.settle()
        before = self._sleeps
        yield
        self._until(lambda: self._asleep and self._sleeps > before, "acted and slept again")

    def advance(self, seconds: float, on_step: Callable[[float], None] | None = None) -> None:
        """Move time forward, stopping at every moment the thread asked to wake at.

        ``on_step(now)`` runs after the thread has acted at each such moment.
        """
        target = self.now + seconds
        self.settle()
        standing = 0
        while True:
            with self._cond:
                deadline = self._deadline
            if deadline is None or deadline > target:
                break
            standing = standing + 1 if deadline <= self.now else 0
            assert standing < 100, "the driver thread keeps waking without time moving on"
            with self.wakes():
                with self._cond:
                    self.now = max(self.now, deadline)
                self._wake()
            if on_step:
                on_step(self.now)
        with self._cond:
            self.now = target


def wait_until(condition: Callable[[], object], timeout: float = PATIENCE) -> None:
    """Poll ``condition`` in real time (for threads not on virtual time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
