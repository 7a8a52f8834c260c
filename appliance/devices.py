"""The box's hardware and network companions, started and stopped with the service.

Status lights and the button (gpiozero), the hotspot link watcher (pyroute2)
and the mDNS announcer (zeroconf). Each is optional: a part that cannot start
on this machine is logged and left out, and the chat keeps working.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from provisioning.config import KEYS
from provisioning.datadir import ADMIN_PASSWORD_NOTE
from provisioning.requests import APPLY, FACTORY_RESET, SHOW_PASSWORD, SHUTDOWN, write_request

from .box import Box

log = logging.getLogger(__name__)

SITE_LINK_SECONDS = 3.0


@dataclass
class Devices:
    box: Box
    hotspot_interface: str | None = None
    led_pins: tuple[int, ...] = KEYS["status_led_pins"].default
    button_pin: int | None = KEYS["button_pin"].default
    announce: bool = True
    site: bool = False  # one of a site's boxes: follow the backbone's link
    follow_addresses: bool = False  # LAN mode: announce whatever address DHCP gave
    # Beside the hotspot (uplink = on): the existing network's interface, watched into
    # status["uplink"]; mDNS then announces its addresses (which the hotspot's phones
    # reach too, the box being their router) on both sides.
    uplink_interface: str | None = None
    parts: list[Any] = field(default_factory=list)
    lights: Any = None
    watcher: Any = None
    announcer: Any = None
    _stop_site: threading.Event = field(default_factory=threading.Event)
    _uplink_applied: list[str] = field(default_factory=list)  # the uplink's, at the last ask

    def start(self) -> None:
        self._start_lights()
        self._start_watcher()
        if self.announce:
            # zeroconf probes for a few seconds; the web app is up meanwhile.
            threading.Thread(target=self._start_mdns, name="ahoy-mdns", daemon=True).start()
        if self.site:
            self._stop_site.clear()
            threading.Thread(target=self._follow_site_link, name="ahoy-site-link",
                             daemon=True).start()
        self.box.hub.on_change.append(self.refresh)
        self.refresh()

    def _start_lights(self) -> None:
        from .button import StatusButton
        from .lights import StatusLights
        from .pins import import_lgpio

        import_lgpio()  # before gpiozero picks it, or it stops gevent's loop

        # `status_led_pins` lists green, then red; a colour with no pin has no light.
        green, red = (*self.led_pins, None, None)[:2]
        try:
            self.lights = StatusLights(green_pin=green, red_pin=red)
            self.parts.append(self.lights)
        except Exception as e:  # no GPIO on this machine
            log.warning("status lights unavailable: %s", e)
            return
        if self.button_pin is None:
            return
        try:
            button = StatusButton(
                show_status=self.lights.show_status,
                reset_admin_password=self.reset_admin_password,
                factory_reset=lambda: write_request(self.box.settings.data_dir, FACTORY_RESET),
                shutdown=lambda: write_request(self.box.settings.data_dir, SHUTDOWN),
                pin=self.button_pin,
                on_hold=self.lights.show_hold,
            )
            self.parts.append(button)
        except Exception as e:
            log.warning("status button unavailable: %s", e)

    def _start_watcher(self) -> None:
        if not self.hotspot_interface:
            return
        from .netwatch import NetWatcher

        def changed(status: Any) -> None:
            self.box.status["hotspot"] = {
                "interface": self.hotspot_interface,
                "up": status.up,
                "carrier": status.carrier,
                "addresses": list(status.addresses),
            }
            log.info("hotspot %s is %s", self.hotspot_interface, "up" if status.up else "down")
            if self.follow_addresses and self.announcer is not None:
                self.announcer.update_addresses(self._ipv4(status.addresses))
            self.refresh()

        try:
            self.watcher = NetWatcher(self.hotspot_interface, changed)
            self.watcher.start()
            self.parts.append(self.watcher)
        except Exception as e:
            log.warning("cannot watch %s: %s", self.hotspot_interface, e)
            self.box.status["hotspot"] = {"interface": self.hotspot_interface, "up": False,
                                          "error": str(e)}
        if self.uplink_interface:
            self._start_uplink_watcher(NetWatcher, self.uplink_interface)

    def _start_uplink_watcher(self, watcher: Any, interface: str) -> None:
        def changed(status: Any) -> None:
            self.box.status["uplink"] = {
                "interface": interface,
                "up": status.up,
                "carrier": status.carrier,
                "addresses": list(status.addresses),
            }
            log.info("uplink %s is %s (%s)", interface, "up" if status.up else "down",
                     ", ".join(status.addresses) or "no address")
            if self.announcer is not None:
                self.announcer.update_addresses(*self._mdns_beside_the_hotspot())
            ipv4 = self._ipv4(status.addresses)
            if ipv4 and ipv4 != self._uplink_applied and not self.box.settings.dev:
                # coturn relays at the uplink's address (provisioning renders it): a new
                # one from the network's DHCP server needs the root side to apply again.
                self._uplink_applied = ipv4
                write_request(self.box.settings.data_dir, APPLY)

        try:
            uplink = watcher(interface, changed)
            uplink.start()
            self.parts.append(uplink)
        except Exception as e:
            log.warning("cannot watch %s: %s", interface, e)
            self.box.status["uplink"] = {"interface": interface, "up": False, "error": str(e)}

    def _mdns_beside_the_hotspot(self) -> tuple[list[str], list[str]]:
        """The addresses to announce and the interfaces (by address) to answer on: the
        uplink's, on both sides; the hotspot's alone while the uplink has none."""
        hotspot = self.box.settings.box_address
        uplink = self._ipv4((self.box.status.get("uplink") or {}).get("addresses", []))
        return (uplink or [hotspot]), [hotspot, *uplink]

    def _start_mdns(self) -> None:
        from .mdns import Announcement, Announcer

        settings = self.box.settings
        addresses = [settings.box_address] if settings.host in ("0.0.0.0", "::") else [
            settings.host]
        interfaces = None
        if self.follow_addresses:
            # LAN mode: whatever the uplink has now (DHCP may not have answered yet).
            addresses = self._ipv4((self.box.status.get("hotspot") or {}).get("addresses", []))
        elif self.uplink_interface:
            addresses, interfaces = self._mdns_beside_the_hotspot()
        try:
            self.announcer = Announcer(
                Announcement(hostname=settings.box_name, http_port=settings.http_port,
                             https_port=settings.https_port),
                addresses, interfaces=interfaces,
            )
            self.announcer.start()
            self.parts.append(self.announcer)
        except Exception as e:
            log.warning("mDNS announcement unavailable: %s", e)

    def _follow_site_link(self) -> None:
        """Read what the backbone (the root side) heard, every few seconds."""
        from provisioning.backbone import read_status, site_link

        while True:
            link = site_link(read_status(self.box.settings.data_dir))
            if link != self.box.status.get("site_link"):
                self.box.status["site_link"] = link
                log.info("site link: %s", link["text"])
                self.refresh()
            if self._stop_site.wait(SITE_LINK_SECONDS):
                return

    @staticmethod
    def _ipv4(addresses: Any) -> list[str]:
        return [a for a in addresses if ":" not in a]

    def refresh(self) -> None:
        """Recompute the lights from the box's facts."""
        if self.lights is None:
            return
        hotspot = self.box.status.get("hotspot")
        hotspot_up = True if hotspot is None else bool(hotspot.get("up"))
        snapshot = self.box.hub.snapshot()
        try:
            self.lights.set_facts(
                hotspot_up=hotspot_up,
                config_ok=not self.box.status.get("config_errors"),
                clients=snapshot["users_online"],
                calls=snapshot["calls"],
                site_alone=bool((self.box.status.get("site_link") or {}).get("alone")),
            )
        except Exception:
            log.exception("cannot update the status lights")

    def reset_admin_password(self) -> None:
        """Button held 10 s: a new admin password, shown like at first boot."""
        from provisioning.credentials import (
            generate_admin_password,
            set_admin_password,
            write_admin_password_note,
        )

        password = generate_admin_password()
        set_admin_password(self.box.settings.data_dir, password)
        boot_dir = self.box.settings.boot_dir
        # The root side writes it too (the service may not write on the boot
        # partition); this one serves a machine without the root side.
        note = boot_dir / ADMIN_PASSWORD_NOTE if boot_dir is not None else None
        if boot_dir is not None:
            try:
                write_admin_password_note(
                    boot_dir, password, "Made new when the status button was held."
                )
            except OSError as e:
                log.warning("cannot write %s: %s", note, e)
        write_request(self.box.settings.data_dir, SHOW_PASSWORD, {"password": password})
        log.warning("admin password was reset with the button; see %s", note or "the console")

    def close(self) -> None:
        self._stop_site.set()
        for part in reversed(self.parts):
            try:
                part.close()
            except Exception:
                log.exception("closing %s failed", type(part).__name__)
        self.parts.clear()

