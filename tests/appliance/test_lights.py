"""Status lights: the pure state machine and pattern table, then the real
gpiozero drivers on gpiozero's MockFactory pins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from hypothesis import given
from hypothesis import strategies as st
from virtualtime import VirtualTime

from appliance.lights import (
    LOOKS,
    BoxFacts,
    BoxState,
    Look,
    Pattern,
    StatusLights,
    blink,
    box_state,
)

# ---------------------------------------------------------------- pure core


def test_box_state_follows_the_lifecycle() -> None:
    assert box_state(BoxFacts(hotspot_up=None)) is BoxState.BOOTING
    assert box_state(BoxFacts(hotspot_up=True)) is BoxState.READY
    assert box_state(BoxFacts(True, clients=2)) is BoxState.CLIENTS_CONNECTED
    assert box_state(BoxFacts(True, clients=2, calls=1)) is BoxState.CALL_IN_PROGRESS
    assert box_state(BoxFacts(False, clients=2, calls=1)) is BoxState.HOTSPOT_FAILED


def test_a_box_of_a_site_that_hears_no_other_box_shows_it_over_calls_but_not_over_faults(
) -> None:
    alone = BoxFacts(True, clients=2, calls=1, site_alone=True)
    assert box_state(alone) is BoxState.ALONE_IN_SITE
    assert box_state(BoxFacts(False, site_alone=True)) is BoxState.HOTSPOT_FAILED
    assert box_state(BoxFacts(True, config_ok=False, site_alone=True)) is BoxState.CONFIG_ERROR


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


# ------------------------------------------------------------ mock hardware

# The driver runs on virtual time (tests/virtualtime.py), so these check the
# real pattern table edge by edge, exactly, however loaded the machine is.


@pytest.fixture
def act_led(tmp_path: Path) -> Path:
    act = tmp_path / "ACT"
    act.mkdir()
    (act / "trigger").write_text("none rc-feedback [mmc0] timer heartbeat\n")
    (act / "brightness").write_text("0\n")
    (act / "max_brightness").write_text("255\n")
    return act


@pytest.fixture
def clock() -> VirtualTime:
    return VirtualTime()


def lights_on(clock: VirtualTime, *args: Any, **kwargs: Any) -> StatusLights:
    lights = StatusLights(*args, clock=clock, wait=clock.wait, **kwargs)
    clock.settle()
    return lights


def trace(clock: VirtualTime, pin: Any, seconds: float) -> list[tuple[float, bool]]:
    """Run ``seconds`` on; the pin's changes as (seconds from now, level)."""
    start, last = clock.now, pin.state
    changes: list[tuple[float, bool]] = []

    def step(now: float) -> None:
        nonlocal last
        if pin.state != last:
            last = pin.state
            changes.append((round(now - start, 6), last))

    clock.advance(seconds, on_step=step)
    return changes


def edges(*times: float) -> list[float]:
    return [round(t, 6) for t in times]


def test_lights_follow_the_box_through_its_lifecycle(
    pins: MockFactory, act_led: Path, clock: VirtualTime
) -> None:
    lights = lights_on(clock, act_path=act_led)
    green, red = pins.pin(17), pins.pin(27)
    brightness = act_led / "brightness"
    try:
        # Booting: green and ACT blink slowly (1 s on, 1 s off).
        assert lights.state is BoxState.BOOTING
        assert green.state and not red.state
        assert (act_led / "trigger").read_text() == "none"
        assert brightness.read_text() == "255"
        changes = trace(clock, green, 4.5)
        assert changes == list(zip(edges(1, 2, 3, 4), [False, True, False, True], strict=True))
        assert not red.state and len(red.states) == 1  # never lit

        # Ready: green and ACT solid, red dark.
        with clock.wakes():
            lights.set_facts(hotspot_up=True, clients=0, calls=0)
        assert green.state and not red.state
        assert trace(clock, green, 10) == []

        # A call: the heartbeat, two short flashes then a long pause.
        with clock.wakes():
            state = lights.set_facts(hotspot_up=True, clients=2, calls=1)
        assert state is BoxState.CALL_IN_PROGRESS
        assert green.state
        changes = trace(clock, green, 2.4)
        assert changes == list(zip(
            edges(0.15, 0.3, 0.45, 1.2, 1.35, 1.5, 1.65, 2.4),
            [False, True, False, True] * 2,
            strict=True))
        assert brightness.read_text() == "255"  # ACT beats along

        # The hotspot fails: green goes dark, red blinks fast (0.2 s on, 0.2 s off).
        with clock.wakes():
            lights.set_facts(hotspot_up=False, clients=0, calls=0)
        assert not green.state and red.state
        changes = trace(clock, red, 1.0)
        assert changes == list(zip(edges(0.2, 0.4, 0.6, 0.8, 1.0),
                                   [False, True, False, True, False], strict=True))
        assert not green.state
    finally:
        lights.close()
    assert not green.state and not red.state
    assert (act_led / "trigger").read_text() == "mmc0"  # ACT handed back


def test_config_error_shows_red_slow_blink_over_solid_green(
    pins: MockFactory, clock: VirtualTime
) -> None:
    lights = lights_on(clock, act_path=None)
    green, red = pins.pin(17), pins.pin(27)
    try:
        with clock.wakes():
            lights.set_facts(hotspot_up=True, config_ok=False, clients=3)
        assert green.state and red.state
        changes = trace(clock, red, 4)
        assert changes == list(zip(edges(1, 2, 3, 4), [False, True, False, True], strict=True))
        assert green.state and len(green.states) == 2  # lit once, never blinked
    finally:
        lights.close()


def test_show_status_lamp_tests_then_replays_the_pattern(
    pins: MockFactory, clock: VirtualTime
) -> None:
    lights = lights_on(clock, act_path=None)
    green, red = pins.pin(17), pins.pin(27)
    try:
        with clock.wakes():
            lights.set_facts(hotspot_up=True, clients=2, calls=1)  # the heartbeat
        clock.advance(0.2)  # mid-pattern: green dark
        assert not green.state
        with clock.wakes():
            lights.show_status()
        assert red.state and green.state  # lamp test: everything lit
        # 1 s lamp test, a 0.5 s dark pause, then the heartbeat from its start.
        changes = trace(clock, green, 1.5)
        assert changes == [(1.0, False), (1.5, True)]
        assert not red.state
        assert trace(clock, green, 1.2) == list(zip(
            edges(0.15, 0.3, 0.45, 1.2), [False, True, False, True], strict=True))
        assert not red.state
    finally:
        lights.close()


def test_pins_are_configurable_and_a_missing_act_led_is_skipped(
    pins: MockFactory, tmp_path: Path, clock: VirtualTime
) -> None:
    lights = lights_on(clock, 5, 6, act_path=tmp_path / "no-such-led")
    try:
        with clock.wakes():
            lights.set_facts(hotspot_up=True)
        assert pins.pin(5).state
        assert not pins.pin(6).state
        assert not (tmp_path / "no-such-led").exists()
    finally:
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


def test_level_and_next_change_agree_at_a_cycle_boundary() -> None:
    # 98 s is 42 cycles of 2 + 1/3 s, which float rounding puts a hair before
    # the end of a cycle: both answers must see the same stretch.
    pattern = Pattern(((2.0, 1 / 3),))
    edge = pattern.next_change(98.0)
    assert edge is not None
    assert pattern.level_at(98.0) == pattern.level_at(edge - 1e-6)
    assert pattern.level_at(edge + 1e-6) != pattern.level_at(98.0)
