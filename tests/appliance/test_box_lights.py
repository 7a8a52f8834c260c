"""The status lights follow the service through a box's life (gpiozero MockFactory pins)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from appliance.app import create_app
from appliance.box import box_of
from appliance.devices import Devices
from appliance.lights import BoxState
from appliance.settings import Settings


class Peer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def close(self, code: int, reason: str) -> None:
        pass


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[Devices]:
    Device.pin_factory = MockFactory()
    app = create_app(Settings(data_dir=tmp_path, dev=True))
    devices = Devices(box_of(app), hotspot_interface=None, led_pins=(5, 6), button_pin=None,
                      announce=False)
    devices.start()
    yield devices
    devices.close()
    Device.pin_factory.close()
    Device.pin_factory = None


def join(devices: Devices, name: str) -> tuple[Peer, str]:
    hub = devices.box.hub
    peer = Peer()
    hub.connect(peer)
    hub.handle(peer, json.dumps({"type": "hello", "name": name}))
    return peer, peer.sent[0]["you"]["id"]


def transitions(pin: Any, seconds: float) -> int:
    """How often the pin changed during the next `seconds` (a quiet window, for
    "never changes": load can only make the light thread change it less)."""
    start = len(pin.states)
    time.sleep(seconds)
    return len(pin.states) - start


def blinks(pin: Any, changes: int) -> None:
    """Wait until the pin has changed `changes` more times (however slow the machine)."""
    start = len(pin.states)
    wait_until(lambda: len(pin.states) - start >= changes)


def test_lights_follow_users_calls_and_failures(devices: Devices) -> None:
    green = Device.pin_factory.pin(5)
    red = Device.pin_factory.pin(6)
    assert devices.lights.state is BoxState.READY
    wait_until(lambda: green.state and not red.state)  # ready: green steady
    assert transitions(green, 1.0) == 0

    ana, _ = join(devices, "Ana")
    ben, ben_id = join(devices, "Ben")
    assert devices.lights.state is BoxState.CLIENTS_CONNECTED

    hub = devices.box.hub
    hub.handle(ana, json.dumps({"type": "call_invite", "to": ben_id}))
    call = [m for m in ana.sent if m["type"] == "call_ringing"][0]["call"]
    hub.handle(ben, json.dumps({"type": "call_accept", "call": call}))
    assert devices.lights.state is BoxState.CALL_IN_PROGRESS
    blinks(green, 4)  # the call heartbeat blinks green

    hub.handle(ben, json.dumps({"type": "call_hangup", "call": call}))
    assert devices.lights.state is BoxState.CLIENTS_CONNECTED

    devices.box.status["hotspot"] = {"up": False}
    devices.refresh()
    assert devices.lights.state is BoxState.HOTSPOT_FAILED
    wait_until(lambda: not green.state)
    blinks(red, 2)  # red blinks
    assert not green.state

    devices.box.status["hotspot"] = {"up": True}
    devices.box.status["config_errors"] = ["line 3: passphrase must be 8 to 63 characters"]
    devices.refresh()
    assert devices.lights.state is BoxState.CONFIG_ERROR


@pytest.mark.parametrize(("led_pins", "driven"), [((), set()), ((5,), {5}), ((5, 6), {5, 6})])
def test_only_the_configured_led_pins_are_ever_driven(
        tmp_path: Path, led_pins: tuple[int, ...], driven: set[int]) -> None:
    """docs/config.md: `status_led_pins = none` drives no pin; one pin is green alone."""
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        app = create_app(Settings(data_dir=tmp_path, dev=True))
        devices = Devices(box_of(app), hotspot_interface=None, led_pins=led_pins,
                          button_pin=None, announce=False)
        devices.start()
        time.sleep(0.3)
        devices.close()
        used = {int(str(info.name).removeprefix("GPIO")) for info in factory.pins}
        assert used == driven
    finally:
        factory.close()
        Device.pin_factory = None


def wait_until(check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_box_of_a_site_shows_alone_until_the_backbone_hears_another_box(
    tmp_path: Path,
) -> None:
    Device.pin_factory = MockFactory()
    app = create_app(Settings(data_dir=tmp_path, dev=True))
    devices = Devices(box_of(app), hotspot_interface=None, led_pins=(5, 6), button_pin=None,
                      announce=False, site=True)
    devices.start()
    try:
        box = devices.box
        wait_until(lambda: box.status.get("site_link"))
        assert box.status["site_link"]["alone"]
        assert devices.lights.state is BoxState.ALONE_IN_SITE
        status = {"box": {"id": "1", "name": "deck-2", "backbone": "169.254.9.9",
                          "hotspot": "10.42.7.0/24"},
                  "peers": [{"id": "2", "name": "deck-4", "backbone": "169.254.3.3",
                             "hotspot": "10.42.9.0/24", "same_wifi": True}],
                  "problems": []}
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "backbone.json").write_text(json.dumps(status))
        link = wait_until(lambda: not box.status["site_link"]["alone"] and box.status["site_link"])
        assert link["text"] == "connected to 1 other box" and link["peers"][0]["name"] == "deck-4"
        assert devices.lights.state is BoxState.READY
    finally:
        devices.close()
        Device.pin_factory.close()
        Device.pin_factory = None
