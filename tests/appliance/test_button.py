"""Status button: the pure gesture recogniser, then the real gpiozero driver
on gpiozero's MockFactory pins."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from hypothesis import given
from hypothesis import strategies as st
from virtualtime import VirtualTime, wait_until

from appliance.button import (
    ButtonAction,
    ButtonGestures,
    ButtonTimings,
    StatusButton,
    interpret_presses,
)
from appliance.lights import LOOKS, StatusLights

# --------------------------------------------------------------- gestures


T = ButtonTimings()


def test_a_short_press_shows_status_once_no_second_press_can_come() -> None:
    assert interpret_presses([(0.0, 0.2)], now=0.5) == []
    assert interpret_presses([(0.0, 0.2)], now=0.8) == [ButtonAction.SHOW_STATUS]


def test_two_quick_presses_shut_down_instead_of_showing_status() -> None:
    assert interpret_presses([(0.0, 0.2), (0.6, 0.8)], now=5) == [ButtonAction.SHUTDOWN]


def test_two_slow_presses_show_status_twice() -> None:
    assert interpret_presses([(0.0, 0.2), (1.5, 1.7)], now=5) == [
        ButtonAction.SHOW_STATUS,
        ButtonAction.SHOW_STATUS,
    ]


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        (0.01, []),  # contact bounce
        (3.0, []),  # neither short nor long enough
        (9.9, []),
        (10.0, [ButtonAction.RESET_ADMIN_PASSWORD]),
        (29.0, [ButtonAction.RESET_ADMIN_PASSWORD]),
        (30.0, [ButtonAction.FACTORY_RESET]),
        (59.0, [ButtonAction.FACTORY_RESET]),
        (90.0, []),  # a stuck button never wipes the box
    ],
)
def test_holding_acts_on_release(held: float, expected: list[ButtonAction]) -> None:
    assert interpret_presses([(0.0, held)], now=held + 5) == expected


def test_contact_bounce_does_not_make_a_double_press() -> None:
    bouncy = [(0.0, 0.004), (0.008, 0.25), (0.252, 0.255)]
    assert interpret_presses(bouncy, now=2) == [ButtonAction.SHOW_STATUS]


def test_hold_feedback_says_what_letting_go_would_do() -> None:
    gestures = ButtonGestures(T)
    gestures.press(100.0)
    assert gestures.hold_action(105) is None
    assert gestures.next_deadline(105) == 110.0
    assert gestures.hold_action(110) is ButtonAction.RESET_ADMIN_PASSWORD
    assert gestures.next_deadline(110) == 130.0
    assert gestures.hold_action(131) is ButtonAction.FACTORY_RESET
    assert gestures.hold_action(161) is None
    assert gestures.next_deadline(161) is None


def test_status_waits_while_a_second_press_is_still_down() -> None:
    gestures = ButtonGestures(T)
    gestures.press(0.0)
    assert gestures.release(0.2) is None
    gestures.press(0.5)
    assert gestures.poll(2.0) is None
    assert gestures.next_deadline(2.0) == 10.5  # no busy wait on the old window
    assert gestures.release(2.1) is None  # 1.6 s: neither press nor hold
    assert gestures.poll(10) is None


@given(st.lists(st.tuples(st.floats(0.0, 5.0), st.floats(0.0, 70.0)), min_size=1, max_size=8))
def test_any_press_sequence_gives_at_most_one_action_per_press(
    gaps_and_holds: list[tuple[float, float]],
) -> None:
    presses, t = [], 0.0
    for gap, held in gaps_and_holds:
        presses.append((t + gap, t + gap + held))
        t += gap + held
    actions = interpret_presses(presses, now=t + 10)
    assert len(actions) <= len(presses)
    destructive = {ButtonAction.RESET_ADMIN_PASSWORD, ButtonAction.FACTORY_RESET}
    long_holds = sum(1 for _, held in gaps_and_holds if held >= T.reset_password_hold)
    assert sum(1 for a in actions if a in destructive) <= long_holds


# ------------------------------------------------------------ mock hardware

# The driver runs on virtual time (tests/virtualtime.py): the real timings, and
# every press and hold exactly as long as the test says however loaded the
# machine is. Pin edges reach the driver at once (gpiozero's mock pins call
# back on the thread that drives them).

# The real light table sped up ten times.
FAST_LOOKS = {state: look.scaled(0.1) for state, look in LOOKS.items()}


class Button:
    """The status button on a mock pin, the callbacks it ran, and its time."""

    def __init__(self, pin: Any, time: VirtualTime) -> None:
        self.pin = pin
        self.time = time
        self.seen: list[str] = []
        self.holds: list[ButtonAction | None] = []

    def callback(self, name: str) -> Callable[[], None]:
        return lambda: self.seen.append(name)

    def down(self) -> None:
        with self.time.wakes():
            self.pin.drive_low()  # the button pulls the pin to ground

    def up(self) -> None:
        with self.time.wakes():
            self.pin.drive_high()

    def press(self, seconds: float) -> None:
        self.down()
        self.time.advance(seconds)
        self.up()


@pytest.fixture
def button(pins: MockFactory) -> Iterator[Button]:
    clock = VirtualTime()
    driven = Button(pins.pin(22), clock)
    status_button = StatusButton(
        show_status=driven.callback("show_status"),
        reset_admin_password=driven.callback("reset_admin_password"),
        factory_reset=driven.callback("factory_reset"),
        shutdown=driven.callback("shutdown"),
        on_hold=driven.holds.append,
        clock=clock,
        wait=clock.wait,
    )
    clock.settle()
    yield driven
    status_button.close()


def test_short_press_shows_status_once_the_double_press_window_is_over(button: Button) -> None:
    button.press(0.2)
    button.time.advance(T.double_press_gap - 0.01)
    assert button.seen == []  # a second press could still come
    button.time.advance(0.01)
    assert button.seen == ["show_status"]


def test_double_press_shuts_down(button: Button) -> None:
    button.press(0.2)
    button.time.advance(0.3)
    button.press(0.2)
    assert button.seen == ["shutdown"]
    button.time.advance(5)
    assert button.seen == ["shutdown"]  # and no status flash after it


def test_two_presses_further_apart_show_status_twice(button: Button) -> None:
    button.press(0.2)
    button.time.advance(T.double_press_gap + 0.1)
    button.press(0.2)
    button.time.advance(5)
    assert button.seen == ["show_status", "show_status"]


def test_holding_resets_the_admin_password(button: Button) -> None:
    button.down()
    button.time.advance(T.reset_password_hold - 0.01)
    assert button.holds == []
    button.time.advance(0.01)
    assert button.holds == [ButtonAction.RESET_ADMIN_PASSWORD]  # "let go to reset"
    assert button.seen == []  # holds act on release
    button.up()
    assert button.seen == ["reset_admin_password"]
    assert button.holds == [ButtonAction.RESET_ADMIN_PASSWORD, None]


def test_holding_longer_factory_resets(button: Button) -> None:
    button.press(T.factory_reset_hold + 1)
    assert button.seen == ["factory_reset"]
    assert button.holds == [
        ButtonAction.RESET_ADMIN_PASSWORD,
        ButtonAction.FACTORY_RESET,
        None,
    ]


def test_a_stuck_button_does_nothing(button: Button) -> None:
    button.press(T.stuck_after + 30)
    button.time.advance(5)
    assert button.seen == []
    assert button.holds == [
        ButtonAction.RESET_ADMIN_PASSWORD,
        ButtonAction.FACTORY_RESET,
        None,
    ]


def test_button_hold_feedback_drives_the_lights(pins: MockFactory) -> None:
    clock = VirtualTime()
    lights = StatusLights(act_path=None, looks=FAST_LOOKS)
    status_button = StatusButton(
        lambda: None,
        lambda: None,
        lambda: None,
        lambda: None,
        on_hold=lights.show_hold,
        clock=clock,
        wait=clock.wait,
    )
    green, red = pins.pin(17), pins.pin(27)
    button = Button(pins.pin(22), clock)
    try:
        lights.set_facts(hotspot_up=True)
        wait_until(lambda: green.state)
        button.down()
        clock.advance(T.reset_password_hold)
        wait_until(lambda: red.state and green.state)  # "let go to reset password"
        button.up()
        wait_until(lambda: not red.state)
        assert green.state
    finally:
        status_button.close()
        lights.close()
