"""The status button: press and hold gestures turned into box actions.

Pure core, tested without hardware: :class:`ButtonGestures` and
:func:`interpret_presses` turn press and release times into
:class:`ButtonAction` values. Driver at the edge: :class:`StatusButton` (a
gpiozero ``Button``) runs the injected callback for each action.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from gpiozero import Button

from provisioning.config import KEYS

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Waitable(Protocol):
    """A ``threading.Event`` or ``threading.Condition`` a driver thread sleeps on."""

    def wait(self, timeout: float | None = None) -> bool: ...


# How a driver thread sleeps until woken or until ``timeout`` seconds pass on its
# clock. Tests pass a virtual clock's wait with its clock, so time moves only
# when the test says (tests/virtualtime.py).
Wait = Callable[[Waitable, float | None], object]


def wait_real(waitable: Waitable, timeout: float | None) -> object:
    """Sleep on ``waitable`` for at most ``timeout`` real seconds (None: until woken)."""
    return waitable.wait(timeout)

DEFAULT_BUTTON_PIN: int = KEYS["button_pin"].default


class ButtonAction(Enum):
    """What a gesture on the status button asks for."""

    SHOW_STATUS = "show_status"
    RESET_ADMIN_PASSWORD = "reset_admin_password"
    FACTORY_RESET = "factory_reset"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class ButtonTimings:
    """Gesture timings in seconds.

    Holds act on release, so the lights can say what letting go will do and
    a person can still back out. A hold longer than ``stuck_after`` does
    nothing: a jammed button or a box lying on it must not wipe the box.
    """

    noise_under: float = 0.03
    short_press_under: float = 1.0
    double_press_gap: float = 0.6
    reset_password_hold: float = 10.0
    factory_reset_hold: float = 30.0
    stuck_after: float = 60.0

    def __post_init__(self) -> None:
        ordered = (
            self.noise_under,
            self.short_press_under,
            self.reset_password_hold,
            self.factory_reset_hold,
            self.stuck_after,
        )
        if list(ordered) != sorted(ordered) or self.double_press_gap <= 0:
            raise ValueError("button timings must increase: noise < short < 10 s < 30 s")


@dataclass
class ButtonGestures:
    """Pure gesture recogniser: feed it press and release times, get actions.

    A short press waits ``double_press_gap`` for a second one before it counts
    as SHOW_STATUS, so :meth:`poll` must be called at :meth:`next_deadline`.
    """

    timings: ButtonTimings = field(default_factory=ButtonTimings)
    _pressed_at: float | None = field(default=None, init=False)
    _pending_release: float | None = field(default=None, init=False)

    def press(self, t: float) -> None:
        """The button went down at ``t``."""
        if self._pressed_at is None:
            self._pressed_at = t

    def release(self, t: float) -> ButtonAction | None:
        """The button came up at ``t``; returns an action that is due now."""
        if self._pressed_at is None:
            return None
        start, self._pressed_at = self._pressed_at, None
        held = t - start
        timings = self.timings
        if held < timings.noise_under:
            return None  # contact bounce, not a press
        if held < timings.short_press_under:
            if self._second_press(start):
                self._pending_release = None
                return ButtonAction.SHUTDOWN
            self._pending_release = t
            return None
        self._pending_release = None
        return self._hold_result(held)

    def poll(self, t: float) -> ButtonAction | None:
        """An action that became due by ``t`` without any edge (a lone short press)."""
        pending = self._pending_release
        if pending is None or t - pending < self.timings.double_press_gap:
            return None
        if self._pressed_at is not None and self._second_press(self._pressed_at):
            return None  # the second press is still going on
        self._pending_release = None
        return ButtonAction.SHOW_STATUS

    def hold_action(self, t: float) -> ButtonAction | None:
        """What letting go at ``t`` would do, while the button is held."""
        if self._pressed_at is None:
            return None
        return self._hold_result(t - self._pressed_at)

    def next_deadline(self, t: float) -> float | None:
        """When, after ``t``, :meth:`poll` or :meth:`hold_action` may change."""
        times: list[float] = []
        pressed = self._pressed_at
        if self._pending_release is not None and not (
            pressed is not None and self._second_press(pressed)
        ):
            times.append(self._pending_release + self.timings.double_press_gap)
        if pressed is not None:
            timings = self.timings
            holds = (
                timings.reset_password_hold,
                timings.factory_reset_hold,
                timings.stuck_after,
            )
            times.extend(pressed + hold for hold in holds if pressed + hold > t)
        return min(times) if times else None

    def _second_press(self, start: float) -> bool:
        pending = self._pending_release
        return pending is not None and start - pending <= self.timings.double_press_gap

    def _hold_result(self, held: float) -> ButtonAction | None:
        timings = self.timings
        if held >= timings.stuck_after:
            return None
        if held >= timings.factory_reset_hold:
            return ButtonAction.FACTORY_RESET
        if held >= timings.reset_password_hold:
            return ButtonAction.RESET_ADMIN_PASSWORD
        return None


def interpret_presses(
    presses: Sequence[tuple[float, float]],
    now: float,
    timings: ButtonTimings | None = None,
) -> list[ButtonAction]:
    """The actions a sequence of (press time, release time) pairs asks for by ``now``."""
    gestures = ButtonGestures(timings or ButtonTimings())
    found: list[ButtonAction | None] = []
    for pressed, released in presses:
        found.append(gestures.poll(pressed))
        gestures.press(pressed)
        found.append(gestures.release(released))
    found.append(gestures.poll(now))
    return [action for action in found if action]


class StatusButton:
    """The status button: turns gestures into calls of the injected callbacks.

    Callbacks run one at a time on the button's own thread, never on
    gpiozero's event thread, so a slow one (a factory reset) blocks nothing.
    ``on_hold`` is told what letting go would do while the button is held,
    for feedback on the lights (:meth:`appliance.lights.StatusLights.show_hold`).
    """

    def __init__(
        self,
        show_status: Callable[[], object],
        reset_admin_password: Callable[[], object],
        factory_reset: Callable[[], object],
        shutdown: Callable[[], object],
        *,
        pin: int | str = DEFAULT_BUTTON_PIN,
        on_hold: Callable[[ButtonAction | None], object] | None = None,
        timings: ButtonTimings | None = None,
        bounce_time: float | None = None,
        pin_factory: Any = None,
        clock: Clock = time.monotonic,
        wait: Wait = wait_real,
    ) -> None:
        self._callbacks: dict[ButtonAction, Callable[[], object]] = {
            ButtonAction.SHOW_STATUS: show_status,
            ButtonAction.RESET_ADMIN_PASSWORD: reset_admin_password,
            ButtonAction.FACTORY_RESET: factory_reset,
            ButtonAction.SHUTDOWN: shutdown,
        }
        self._on_hold = on_hold
        self._clock = clock
        self._wait = wait
        self._gestures = ButtonGestures(timings or ButtonTimings())
        self._due: list[ButtonAction] = []
        self._shown_hold: ButtonAction | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="status-button", daemon=True)
        self._thread.start()
        self._button = Button(pin, pull_up=True, bounce_time=bounce_time, pin_factory=pin_factory)
        self._button.when_pressed = self._pressed
        self._button.when_released = self._released

    def close(self) -> None:
        """Stop listening and release the pin."""
        self._button.close()
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _pressed(self) -> None:
        with self._cond:
            self._gestures.press(self._clock())
            self._cond.notify()

    def _released(self) -> None:
        with self._cond:
            action = self._gestures.release(self._clock())
            if action:
                self._due.append(action)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                now = self._clock()
                action = self._gestures.poll(now)
                if action:
                    self._due.append(action)
                due, self._due = self._due, []
                hold = self._gestures.hold_action(now)
                hold_changed = hold != self._shown_hold
                self._shown_hold = hold
                if not due and not hold_changed:
                    deadline = self._gestures.next_deadline(now)
                    timeout = None if deadline is None else max(0.0, deadline - now)
                    self._wait(self._cond, timeout)
                    continue
            if hold_changed and self._on_hold:
                self._call(functools.partial(self._on_hold, hold))
            for action in due:
                self._call(self._callbacks[action])

    @staticmethod
    def _call(callback: Callable[[], object]) -> None:
        try:
            callback()
        except Exception:
            # A failing action must not stop the button from working.
            log.exception("status button action failed")
