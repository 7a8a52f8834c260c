"""The status lights: the box's state shown on the green, red and ACT LEDs.

The box has no screen, so two LEDs on the GPIO header (green and red) and the
Pi's onboard ACT LED, with the status button (:mod:`appliance.button`), are
the whole local interface.

Pure core, tested without hardware: :func:`box_state` turns facts about the
box into one :class:`BoxState`; :data:`LOOKS` maps each state to a
:class:`Look` (one :class:`Pattern` per light), the single table that
``docs/admin.md`` documents.

Driver at the edge: :class:`StatusLights` (gpiozero ``LED`` objects plus the
ACT LED in sysfs).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from gpiozero import LED

from provisioning.config import KEYS

from .button import ButtonAction, Wait, wait_real

log = logging.getLogger(__name__)

Clock = Callable[[], float]

DEFAULT_GREEN_PIN, DEFAULT_RED_PIN = KEYS["status_led_pins"].default
ACT_LED_PATH = Path("/sys/class/leds/ACT")
# Seconds early the lights may change at an edge: far below anything an eye sees.
EDGE_SLACK = 1e-6


# --------------------------------------------------------------------------
# Box state


class BoxState(Enum):
    """What the box is doing, as the lights show it."""

    BOOTING = "booting"
    READY = "ready"
    CLIENTS_CONNECTED = "clients_connected"
    CALL_IN_PROGRESS = "call_in_progress"
    CONFIG_ERROR = "config_error"
    HOTSPOT_FAILED = "hotspot_failed"
    ALONE_IN_SITE = "alone_in_site"


@dataclass(frozen=True)
class BoxFacts:
    """Facts the service knows; :func:`box_state` derives the state from them.

    ``hotspot_up`` is None until the network watcher has first reported.
    """

    hotspot_up: bool | None = None
    config_ok: bool = True
    clients: int = 0
    calls: int = 0
    # In a site and no other box heard on the backbone (False alone or when linked).
    site_alone: bool = False


def box_state(facts: BoxFacts) -> BoxState:
    """The one state to show: faults win over activity, a call wins over clients.

    A config error wins over a failed hotspot because a bad config file is the
    likely cause of the failure and the thing the owner can fix.
    """
    if not facts.config_ok:
        return BoxState.CONFIG_ERROR
    if facts.hotspot_up is None:
        return BoxState.BOOTING
    if not facts.hotspot_up:
        return BoxState.HOTSPOT_FAILED
    if facts.site_alone:
        return BoxState.ALONE_IN_SITE
    if facts.calls > 0:
        return BoxState.CALL_IN_PROGRESS
    if facts.clients > 0:
        return BoxState.CLIENTS_CONNECTED
    return BoxState.READY


# --------------------------------------------------------------------------
# Light patterns


@dataclass(frozen=True)
class Pattern:
    """A repeating light pattern.

    ``steps`` is a cycle of (on seconds, off seconds); with no steps the light
    is steady at ``steady``.
    """

    steps: tuple[tuple[float, float], ...] = ()
    steady: bool = False

    def __post_init__(self) -> None:
        if any(on <= 0 or off <= 0 for on, off in self.steps):
            raise ValueError("pattern steps need positive on and off times")

    @property
    def period(self) -> float:
        """Length of one cycle in seconds (0 for a steady light)."""
        return sum(on + off for on, off in self.steps)

    def level_at(self, t: float) -> bool:
        """Whether the light is on ``t`` seconds after the pattern started."""
        if not self.steps:
            return self.steady
        return self._segment(t)[0]

    def next_change(self, t: float) -> float | None:
        """The first time after ``t`` at which the light switches, or None."""
        if not self.steps:
            return None
        return self._segment(t)[1]

    def _segment(self, t: float) -> tuple[bool, float]:
        """The level of the on or off stretch that holds ``t``, and when it ends.

        One walk for both questions, so that at a cycle boundary float rounding
        cannot put ``t`` in one stretch for ``level_at`` and in another for
        ``next_change``."""
        edge = t - t % self.period
        while True:
            for on, off in self.steps:
                for level, length in ((True, on), (False, off)):
                    edge += length
                    if edge > t:
                        return level, edge

    def scaled(self, factor: float) -> Pattern:
        """The same pattern running ``1 / factor`` times as fast."""
        steps = tuple((on * factor, off * factor) for on, off in self.steps)
        return Pattern(steps, self.steady)


OFF = Pattern()
SOLID = Pattern(steady=True)


def blink(on: float, off: float) -> Pattern:
    """A plain blink: on for ``on`` seconds, off for ``off`` seconds."""
    return Pattern(((on, off),))


@dataclass(frozen=True)
class Look:
    """What every light does at once."""

    green: Pattern
    red: Pattern
    act: Pattern

    def scaled(self, factor: float) -> Look:
        """The same look running ``1 / factor`` times as fast."""
        return Look(
            self.green.scaled(factor),
            self.red.scaled(factor),
            self.act.scaled(factor),
        )


SLOW_BLINK = blink(1.0, 1.0)
FAST_BLINK = blink(0.2, 0.2)
# Solid with a short dark wink every 3 s: "on, and something is going on".
WINK = blink(2.8, 0.2)
# Two quick flashes then a pause, like a heartbeat.
HEARTBEAT = Pattern(((0.15, 0.15), (0.15, 0.75)))
TRIPLE_BLINK = Pattern(((0.2, 0.2), (0.2, 0.2), (0.2, 1.2)))
# Mostly on with two short dark winks every 3 s: "working, but on its own".
DOUBLE_WINK = Pattern(((1.2, 0.2), (1.4, 0.2)))

# The one table of patterns; docs/admin.md ("Status lights and button")
# shows it to owners. Keep every look distinct on the green+red pair and on
# ACT alone, since a box may have no LEDs wired to the header.
LOOKS: Mapping[BoxState, Look] = {
    BoxState.BOOTING: Look(green=SLOW_BLINK, red=OFF, act=SLOW_BLINK),
    BoxState.READY: Look(green=SOLID, red=OFF, act=SOLID),
    BoxState.CLIENTS_CONNECTED: Look(green=WINK, red=OFF, act=WINK),
    BoxState.CALL_IN_PROGRESS: Look(green=HEARTBEAT, red=OFF, act=HEARTBEAT),
    BoxState.CONFIG_ERROR: Look(green=SOLID, red=SLOW_BLINK, act=TRIPLE_BLINK),
    BoxState.HOTSPOT_FAILED: Look(green=OFF, red=FAST_BLINK, act=FAST_BLINK),
    BoxState.ALONE_IN_SITE: Look(green=DOUBLE_WINK, red=OFF, act=DOUBLE_WINK),
}

# Shown while the button is held long enough that letting go will act.
RELEASE_TO_RESET_PASSWORD = Look(green=SOLID, red=SOLID, act=SOLID)
RELEASE_TO_FACTORY_RESET = Look(green=blink(0.1, 0.1), red=blink(0.1, 0.1), act=blink(0.1, 0.1))
# A short press first lights everything (a lamp test), then goes dark, then
# replays the state pattern from its start so it is easy to read.
LAMP_TEST = Look(green=SOLID, red=SOLID, act=SOLID)
DARK = Look(green=OFF, red=OFF, act=OFF)
SHOW_STATUS_PRELUDE: tuple[tuple[Look, float], ...] = ((LAMP_TEST, 1.0), (DARK, 0.5))


# --------------------------------------------------------------------------
# Lights


class Light(Protocol):
    """One light the driver can switch."""

    def set(self, on: bool) -> None: ...

    def close(self) -> None: ...


class GpioLight:
    """An LED on a GPIO pin, through gpiozero."""

    def __init__(self, pin: int | str, pin_factory: Any = None) -> None:
        self._led = LED(pin, pin_factory=pin_factory)

    def set(self, on: bool) -> None:
        if on:
            self._led.on()
        else:
            self._led.off()

    def close(self) -> None:
        self._led.close()


class SysfsLight:
    """A kernel LED such as the Pi's ACT LED; does nothing where it is absent.

    Takes the LED from its kernel trigger (SD card activity) while the
    service runs and hands it back on close.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._saved_trigger: str | None = None
        self._max = "1"
        self._level: bool | None = None
        self._usable = (path / "brightness").exists()
        if not self._usable:
            return
        try:
            self._saved_trigger = _current_trigger((path / "trigger").read_text())
            max_file = path / "max_brightness"
            if max_file.exists():
                self._max = max_file.read_text().strip() or "1"
            (path / "trigger").write_text("none")
        except OSError as exc:
            log.info("ACT LED at %s not usable: %s", path, exc)
            self._usable = False

    def set(self, on: bool) -> None:
        if not self._usable or on == self._level:
            return
        try:
            (self._path / "brightness").write_text(self._max if on else "0")
            self._level = on
        except OSError as exc:
            log.info("ACT LED at %s not usable: %s", self._path, exc)
            self._usable = False

    def close(self) -> None:
        if not self._usable or not self._saved_trigger:
            return
        try:
            (self._path / "trigger").write_text(self._saved_trigger)
        except OSError as exc:
            log.info("could not restore ACT LED trigger: %s", exc)


def _current_trigger(text: str) -> str | None:
    """The selected trigger in a sysfs ``trigger`` file ("none [mmc0] timer")."""
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return None


class StatusLights:
    """Drives the green, red and ACT LEDs from the box's facts.

    One background thread plays the current :class:`Look`; it sleeps until
    the next edge of any light or until something changes.
    """

    def __init__(
        self,
        green_pin: int | str | None = DEFAULT_GREEN_PIN,
        red_pin: int | str | None = DEFAULT_RED_PIN,
        act_path: Path | None = ACT_LED_PATH,
        *,
        looks: Mapping[BoxState, Look] = LOOKS,
        prelude: Sequence[tuple[Look, float]] = SHOW_STATUS_PRELUDE,
        hold_looks: Mapping[ButtonAction, Look] | None = None,
        pin_factory: Any = None,
        clock: Clock = time.monotonic,
        wait: Wait = wait_real,
    ) -> None:
        self._looks = dict(looks)
        self._prelude = tuple(prelude)
        self._hold_looks = dict(
            hold_looks
            if hold_looks is not None
            else {
                ButtonAction.RESET_ADMIN_PASSWORD: RELEASE_TO_RESET_PASSWORD,
                ButtonAction.FACTORY_RESET: RELEASE_TO_FACTORY_RESET,
            }
        )
        self._clock = clock
        self._wait = wait
        # A pin set to none in ahoy.txt is never driven: something else may be wired there.
        self._lights: list[Light] = [
            GpioLight(pin, pin_factory) if pin is not None else _NoLight()
            for pin in (green_pin, red_pin)
        ]
        self._lights.append(SysfsLight(act_path) if act_path else _NoLight())
        self._facts = BoxFacts()
        self._state = box_state(self._facts)
        self._started = clock()
        # Timed looks shown before the state pattern: (look, end time).
        self._queued: list[tuple[Look, float]] = []
        self._hold: tuple[Look, float] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="status-lights", daemon=True)
        self._thread.start()

    @property
    def state(self) -> BoxState:
        """The state currently shown."""
        return self._state

    def set_facts(
        self,
        hotspot_up: bool | None,
        config_ok: bool = True,
        clients: int = 0,
        calls: int = 0,
        site_alone: bool = False,
    ) -> BoxState:
        """Update what the box knows; the lights change only if the state does."""
        facts = BoxFacts(hotspot_up, config_ok, clients, calls, site_alone)
        with self._lock:
            self._facts = facts
            state = box_state(facts)
            if state != self._state:
                self._state = state
                self._started = self._clock()
                self._wake.set()
        return state

    def show_status(self) -> None:
        """Lamp test, a dark pause, then the state pattern from its start."""
        with self._lock:
            end = self._clock()
            self._queued = []
            for look, seconds in self._prelude:
                end += seconds
                self._queued.append((look, end))
            self._started = end
            self._wake.set()

    def show_hold(self, action: ButtonAction | None) -> None:
        """Show what letting go of the button would do now (None: nothing)."""
        with self._lock:
            look = self._hold_looks.get(action) if action else None
            self._hold = (look, self._clock()) if look else None
            if self._hold is None:
                self._started = self._clock()
            self._wake.set()

    def close(self) -> None:
        """Stop the pattern, turn the LEDs off and release the pins."""
        with self._lock:
            self._closed = True
            self._wake.set()
        self._thread.join(timeout=5)
        for light in self._lights:
            light.set(False)
            light.close()

    def _current(self, now: float) -> tuple[Look, float, float | None]:
        """The look to show now, when it started and when it stops (if known)."""
        if self._hold is not None:
            return self._hold[0], self._hold[1], None
        while self._queued and self._queued[0][1] <= now:
            self._queued.pop(0)
        if self._queued:
            look, end = self._queued[0]
            return look, now, end  # prelude looks are steady
        return self._looks[self._state], self._started, None

    def _run(self) -> None:
        while True:
            # Clear before reading so a change made meanwhile wakes us at once.
            self._wake.clear()
            with self._lock:
                if self._closed:
                    return
                now = self._clock()
                # Waking at an edge may read the clock a rounding error before
                # it; show the lights as they are a hair later instead of
                # sleeping again for 1e-14 s (forever, on a clock that stands still).
                ahead = now + EDGE_SLACK
                look, started, ends = self._current(ahead)
                t = ahead - started
                patterns = (look.green, look.red, look.act)
                for light, pattern in zip(self._lights, patterns, strict=True):
                    light.set(pattern.level_at(t))
                edges = [p.next_change(t) for p in patterns]
                waits = [started + edge - now for edge in edges if edge is not None]
                if ends is not None:
                    waits.append(ends - now)
            self._wait(self._wake, min(waits) if waits else None)


class _NoLight:
    def set(self, on: bool) -> None:
        pass

    def close(self) -> None:
        pass
