"""The chat service's LAN-mode companions in a box's network namespace, until terminated.

    lan_box.py DATA_DIR BOX_NAME UPLINK [HOTSPOT HOTSPOT_ADDRESS]

The real `appliance.devices.Devices` with `follow_addresses`: the network watcher
(pyroute2) follows the uplink, and the mDNS announcer (zeroconf) announces
`<BOX_NAME>.local` at whatever address the network's DHCP server gave it. With
HOTSPOT, the box makes its hotspot there too (`uplink = on`): both are watched, and
the uplink's address is announced on both sides.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

from appliance.app import create_app
from appliance.box import box_of
from appliance.devices import Devices
from appliance.settings import Settings


def main() -> None:
    data_dir, name, uplink = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if len(sys.argv) > 4:
        hotspot, address = sys.argv[4], sys.argv[5]
        app = create_app(Settings(data_dir=data_dir, box_name=name, box_address=address,
                                  hotspot_interface=hotspot, uplink_interface=uplink,
                                  uplink_address=f"{name}.local"))
        devices = Devices(box_of(app), hotspot_interface=hotspot, led_pins=(),
                          button_pin=None, announce=True, uplink_interface=uplink)
    else:
        app = create_app(Settings(data_dir=data_dir, box_name=name, box_address="0.0.0.0",
                                  lan_mode=True, hotspot_interface=uplink))
        devices = Devices(box_of(app), hotspot_interface=uplink, led_pins=(), button_pin=None,
                          announce=True, follow_addresses=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    devices.start()
    try:
        stop.wait()
    finally:
        devices.close()


if __name__ == "__main__":
    main()
