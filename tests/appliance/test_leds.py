"""Status lights and button: the pure state machine, then the real gpiozero
drivers on gpiozero's MockFactory pins."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from hypothesis import given
from hypothesis import strategies as st

from appliance.leds import (
    LOOKS,
    SHOW_STATUS_PRELUDE,
    BoxFacts,
    BoxState,
    ButtonAction,
    ButtonGestures,
    ButtonTimings,
    Look,
    Pattern,
    StatusButton,
    StatusLights,
    blink,
    box_state,
    interpret_presses,
)

# The light thread sleeps until each edge; on a loaded CI machine it wakes late.
# Patterns here are sped up ten times, so this still tells the patterns apart.
TOLERANCE = 0.06

# ---------------------------------------------------------------- pure core


def test_box_state_follows_the_lifecycle() -> None:
    assert box_state(BoxFacts(hotspot_up=None)) is BoxState.BOOTING
    assert box_state(BoxFacts(hotspot_up=True)) is BoxState.READY
    assert box_state(BoxFacts(True, clients=2)) is BoxState.CLIENTS_CONNECTED
    assert box_state(BoxFacts(True, clients=2, calls=1)) is BoxState.CALL_IN_PROGRESS
    assert box_state(BoxFacts(False, clients=2, calls=1)) is BoxState.HOTSPOT_FAILED


@given(
    hotspot_up=st.one_of(st.none(), st.booleans()),
    clients=st.integers(0, 50),
    calls=st.integers(0, 10),
)
def test_config_error_wins_over_everything(
    hotspot_up: bool | None, clients: int, calls: int
) -> None:
    facts = BoxFacts(hotspot_up, config_ok=False, clients=clients, calls=calls)
    assert box_state(facts) is BoxState.CONFIG_ERROR


@given(clients=st.integers(0, 50), calls=st.integers(0, 10))
def test_hotspot_failure_wins_over_activity(clients: int, calls: int) -> None:
    assert box_state(BoxFacts(False, True, clients, calls)) is BoxState.HOTSPOT_FAILED


def test_every_state_has_its_own_look_on_the_leds_and_on_act_alone() -> None:
    assert set(LOOKS) == set(BoxState)
    pairs = {(look.green, look.red) for look in LOOKS.values()}
    acts = {look.act for look in LOOKS.values()}
    assert len(pairs) == len(BoxState)
    assert len(acts) == len(BoxState)


def test_faults_and_only_faults_light_red() -> None:
    faults = {BoxState.CONFIG_ERROR, BoxState.HOTSPOT_FAILED}
    for state, look in LOOKS.items():
        red_lit = look.red.steady or bool(look.red.steps)
        assert red_lit == (state in faults), state


def test_patterns_are_slow_enough_to_read_across_a_room() -> None:
    for look in LOOKS.values():
        for pattern in (look.green, look.red, look.act):
            for on, off in pattern.steps:
                assert on >= 0.1 and off >= 0.1


def test_blink_level_and_edges() -> None:
    pattern = blink(1.0, 0.5)
    assert [pattern.level_at(t) for t in (0, 0.99, 1.0, 1.49, 1.5, 2.6)] == [
        True,
        True,
        False,
        False,
        True,
        False,
    ]
    assert pattern.next_change(0) == 1.0
    assert pattern.next_change(1.0) == 1.5
    assert pattern.next_change(1.7) == pytest.approx(2.5)
    assert Pattern(steady=True).next_change(5) is None


@given(
    steps=st.lists(st.tuples(st.floats(0.05, 3), st.floats(0.05, 3)), min_size=1, max_size=4),
    t=st.floats(0, 100),
)
def test_next_change_is_where_the_level_flips(steps: list[tuple[float, float]], t: float) -> None:
    pattern = Pattern(tuple(steps))
    edge = pattern.next_change(t)
    assert edge is not None and edge > t
    # Steady from t until just before the edge, different just after it.
    before = max(t, edge - 1e-6)
    assert pattern.level_at(before) == pattern.level_at(t)
    assert pattern.level_at(edge + 1e-6) != pattern.level_at(t)


def test_heartbeat_is_a_double_blink() -> None:
    call = LOOKS[BoxState.CALL_IN_PROGRESS].green
    samples = [call.level_at(i * 0.05) for i in range(int(call.period / 0.05))]
    rising = sum(1 for a, b in zip([False, *samples[:-1]], samples, strict=True) if b and not a)
    assert rising == 2


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

# The real table sped up ten times, so a lifecycle test takes seconds.
FAST = 0.1
FAST_LOOKS = {state: look.scaled(FAST) for state, look in LOOKS.items()}
FAST_PRELUDE = tuple((look, seconds * FAST) for look, seconds in SHOW_STATUS_PRELUDE)


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    factory = MockFactory()
    saved = Device.pin_factory
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = saved


@pytest.fixture
def act_led(tmp_path: Path) -> Path:
    act = tmp_path / "ACT"
    act.mkdir()
    (act / "trigger").write_text("none rc-feedback [mmc0] timer heartbeat\n")
    (act / "brightness").write_text("0\n")
    (act / "max_brightness").write_text("255\n")
    return act


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def intervals(pin: Any) -> list[float]:
    """Seconds between the pin's changes (the first entry is its start)."""
    return [state.timestamp for state in pin.states[2:]]


def test_lights_follow_the_box_through_its_lifecycle(pins: MockFactory, act_led: Path) -> None:
    lights = StatusLights(act_path=act_led, looks=FAST_LOOKS, prelude=FAST_PRELUDE)
    green, red = pins.pin(17), pins.pin(27)
    try:
        # Booting: green blinks slowly (1 s on, 1 s off, sped up here).
        green.clear_states()
        time.sleep(0.75)
        assert lights.state is BoxState.BOOTING
        assert len(green.states) >= 5
        assert statistics.median(intervals(green)) == pytest.approx(0.1, abs=TOLERANCE)
        assert red.states[-1].state is False
        assert (act_led / "trigger").read_text() == "none"

        # Ready: green solid, red dark.
        lights.set_facts(hotspot_up=True, clients=0, calls=0)
        wait_until(lambda: green.state)
        green.clear_states()
        time.sleep(0.3)
        assert len(green.states) == 1 and green.state
        assert not red.state
        assert (act_led / "brightness").read_text() == "255"

        # A call: the heartbeat, two short flashes then a long pause.
        state = lights.set_facts(hotspot_up=True, clients=2, calls=1)
        assert state is BoxState.CALL_IN_PROGRESS
        time.sleep(0.05)
        green.clear_states()
        time.sleep(0.5)
        gaps = intervals(green)
        assert min(gaps) == pytest.approx(0.015, abs=TOLERANCE)
        assert max(gaps) == pytest.approx(0.075, abs=TOLERANCE)

        # The hotspot fails: green goes dark, red blinks fast.
        lights.set_facts(hotspot_up=False, clients=0, calls=0)
        wait_until(lambda: not green.state)
        red.clear_states()
        time.sleep(0.3)
        assert not green.state
        assert len(red.states) >= 5
        assert statistics.median(intervals(red)) == pytest.approx(0.02, abs=TOLERANCE)
    finally:
        lights.close()
    assert not green.state and not red.state
    assert (act_led / "trigger").read_text() == "mmc0"  # ACT handed back


def test_config_error_shows_red_slow_blink_over_solid_green(pins: MockFactory) -> None:
    lights = StatusLights(act_path=None, looks=FAST_LOOKS)
    green, red = pins.pin(17), pins.pin(27)
    try:
        lights.set_facts(hotspot_up=True, config_ok=False, clients=3)
        time.sleep(0.05)
        red.clear_states()
        time.sleep(0.45)
        assert green.state
        assert statistics.median(intervals(red)) == pytest.approx(0.1, abs=TOLERANCE)
    finally:
        lights.close()


def test_show_status_lamp_tests_then_replays_the_pattern(pins: MockFactory) -> None:
    lights = StatusLights(act_path=None, looks=FAST_LOOKS, prelude=FAST_PRELUDE)
    green, red = pins.pin(17), pins.pin(27)
    try:
        lights.set_facts(hotspot_up=True)
        wait_until(lambda: green.state)
        lights.show_status()
        wait_until(lambda: red.state)  # lamp test: everything lit
        assert green.state
        wait_until(lambda: not red.state and not green.state)  # dark pause
        wait_until(lambda: green.state)  # back to "ready"
        assert not red.state
    finally:
        lights.close()


def test_pins_are_configurable_and_a_missing_act_led_is_skipped(
    pins: MockFactory, tmp_path: Path
) -> None:
    lights = StatusLights(5, 6, act_path=tmp_path / "no-such-led", looks=FAST_LOOKS)
    try:
        lights.set_facts(hotspot_up=True)
        wait_until(lambda: pins.pin(5).state)
        assert not pins.pin(6).state
    finally:
        lights.close()


# Sped-up button timings: short < 0.2 s, double within 0.15 s, holds 0.3/0.6 s.
QUICK = ButtonTimings(
    noise_under=0.01,
    short_press_under=0.2,
    double_press_gap=0.15,
    reset_password_hold=0.3,
    factory_reset_hold=0.6,
    stuck_after=1.2,
)


class Calls:
    """Records which button callbacks ran."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.holds: list[ButtonAction | None] = []
        self.event = threading.Event()

    def callback(self, name: str) -> Callable[[], None]:
        def record() -> None:
            self.seen.append(name)
            self.event.set()

        return record

    def wait(self, timeout: float = 2.0) -> list[str]:
        assert self.event.wait(timeout), "no callback ran"
        self.event.clear()
        return self.seen


@pytest.fixture
def button(pins: MockFactory) -> Iterator[tuple[Any, Calls]]:
    calls = Calls()
    status_button = StatusButton(
        show_status=calls.callback("show_status"),
        reset_admin_password=calls.callback("reset_admin_password"),
        factory_reset=calls.callback("factory_reset"),
        shutdown=calls.callback("shutdown"),
        on_hold=calls.holds.append,
        timings=QUICK,
    )
    yield pins.pin(22), calls
    status_button.close()


def press(pin: Any, seconds: float) -> None:
    pin.drive_low()  # the button pulls the pin to ground
    time.sleep(seconds)
    pin.drive_high()


def test_short_press_shows_status(button: tuple[Any, Calls]) -> None:
    pin, calls = button
    press(pin, 0.05)
    assert calls.wait() == ["show_status"]


def test_double_press_shuts_down(button: tuple[Any, Calls]) -> None:
    pin, calls = button
    press(pin, 0.05)
    time.sleep(0.05)
    press(pin, 0.05)
    assert calls.wait() == ["shutdown"]
    time.sleep(0.25)
    assert calls.seen == ["shutdown"]  # and no status flash after it


def test_holding_resets_the_admin_password(button: tuple[Any, Calls]) -> None:
    pin, calls = button
    press(pin, 0.4)
    assert calls.wait() == ["reset_admin_password"]
    assert calls.holds == [ButtonAction.RESET_ADMIN_PASSWORD, None]


def test_holding_longer_factory_resets(button: tuple[Any, Calls]) -> None:
    pin, calls = button
    press(pin, 0.7)
    assert calls.wait() == ["factory_reset"]
    assert calls.holds == [
        ButtonAction.RESET_ADMIN_PASSWORD,
        ButtonAction.FACTORY_RESET,
        None,
    ]


def test_button_hold_feedback_drives_the_lights(pins: MockFactory) -> None:
    lights = StatusLights(act_path=None, looks=FAST_LOOKS)
    status_button = StatusButton(
        lambda: None,
        lambda: None,
        lambda: None,
        lambda: None,
        on_hold=lights.show_hold,
        timings=QUICK,
    )
    green, red, pin = pins.pin(17), pins.pin(27), pins.pin(22)
    try:
        lights.set_facts(hotspot_up=True)
        pin.drive_low()
        wait_until(lambda: red.state and green.state)  # "let go to reset password"
        pin.drive_high()
        wait_until(lambda: not red.state)
        assert green.state
    finally:
        status_button.close()
        lights.close()


def test_looks_scale_keeps_shape() -> None:
    look = LOOKS[BoxState.CALL_IN_PROGRESS]
    assert isinstance(look.scaled(0.5), Look)
    assert look.scaled(0.5).green.period == pytest.approx(look.green.period / 2)


def test_the_admin_guide_documents_every_state() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "admin.md").read_text()
    section = guide[guide.index("## Status lights and button") :]
    for state in BoxState:
        title = state.value.replace("_", " ").capitalize()
        assert f"| {title} |" in section, f"docs/admin.md lacks a row for {title}"
