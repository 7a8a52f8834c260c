"""The overview (webclient/admin/dashboard.js): the Wi-Fi and its QR code, the devices
on it, who is online, rooms, calls, the box's health and its hotspot and config status;
in a site, removing a dead box from it (and adding it again).
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

from flask import Response, jsonify

from provisioning.configstore import read_status

from ..health import read_health
from .access import box, config_in_force, data_dir, error, log


def wifi_qr_text(ssid: str, passphrase: str) -> str:
    """The "join this Wi-Fi" QR payload phones' cameras understand (WIFI:...;;)."""

    def esc(value: str) -> str:
        return re.sub(r'([\\;,:"])', r"\\\1", value)

    if passphrase:
        return f"WIFI:T:WPA;S:{esc(ssid)};P:{esc(passphrase)};;"
    return f"WIFI:T:nopass;S:{esc(ssid)};;"


def _lan() -> dict[str, Any] | None:
    """LAN mode, or the network beside the hotspot (uplink = on): where people on the
    network reach the chat, each with a QR code."""
    the_box = box()
    settings = the_box.settings
    if settings.lan_mode:
        uplink = the_box.status.get("hotspot") or {}
    elif settings.uplink_interface:
        uplink = the_box.status.get("uplink") or {"interface": settings.uplink_interface}
    else:
        return None
    addresses = [a for a in uplink.get("addresses", []) if ":" not in a]
    port = "" if settings.http_port == 80 else f":{settings.http_port}"
    urls = [f"http://{settings.box_name}.local{port}/"]
    urls += [f"http://{a}{port}/" for a in addresses]
    return {"interface": uplink.get("interface"), "addresses": addresses,
            "beside_hotspot": not settings.lan_mode,
            "links": [{"url": u, "qr_url": "/api/qr.svg?text=" + quote(u, safe="")}
                      for u in urls]}


def _wifi() -> dict[str, Any] | None:
    settings = box().settings
    if settings.lan_mode:
        return None  # no Wi-Fi of the box's own
    if settings.wifi_ssid:
        ssid, passphrase = settings.wifi_ssid, settings.wifi_passphrase or ""
    else:
        config = config_in_force()
        ssid, passphrase = config.wifi_name, config.wifi_passphrase
    text = wifi_qr_text(ssid, passphrase)
    return {"ssid": ssid, "passphrase": passphrase or None, "open": not passphrase,
            "qr_url": "/api/qr.svg?text=" + quote(text, safe="")}


def _clients() -> tuple[list[dict[str, Any]], str | None]:
    settings = box().settings
    interface = settings.hotspot_interface
    if settings.dev or not interface:
        return [], None
    # pyroute2 only where there is a hotspot to ask (never in development).
    from ..netwatch import read_clients

    try:
        clients = read_clients(interface, settings.data_dir / "dnsmasq.leases")
    except Exception as exc:  # pyroute2 missing rights, interface gone, ...
        log.warning("admin: cannot list Wi-Fi clients: %s", exc)
        return [], f"The list of devices could not be read ({exc})."
    return [{"mac": c.mac, "ip": c.ip, "hostname": c.hostname, "state": c.state}
            for c in clients], None


def _health() -> dict[str, Any] | None:
    try:
        h = read_health(data_dir())
    except (OSError, ValueError, IndexError) as exc:
        log.warning("admin: cannot read the box's health: %s", exc)
        return None
    return {
        "uptime_s": h.uptime_seconds,
        "cpu_temperature_c": h.cpu_temperature_c,
        "memory_total": h.memory_total_bytes,
        "memory_available": h.memory_available_bytes,
        "memory_used_percent": round(h.memory_used_percent, 1),
        "disk_total": h.disk_total_bytes,
        "disk_free": h.disk_free_bytes,
        "disk_used_percent": round(h.disk_used_percent, 1),
        "load_average": list(h.load_average),
    }


def dashboard() -> Response:
    the_box = box()
    hub = the_box.hub
    clients, clients_problem = _clients()
    return jsonify({
        "box_name": the_box.settings.box_name,
        "dev": the_box.settings.dev,
        "time_ms": int(time.time() * 1000),
        "service_uptime_s": int(time.time() - the_box.started),
        "wifi": _wifi(),
        "lan": _lan(),
        "clients": clients,
        "clients_problem": clients_problem,
        "users": hub.online_users(),
        "rooms": hub.all_rooms(),
        "calls": hub.calls_in_progress(),
        "counts": hub.snapshot(),
        "health": _health(),
        "hotspot": {k: v for k, v in the_box.status.items() if k != "site_link"},
        "config_status": read_status(the_box.settings.data_dir),
        "site_link": the_box.status.get("site_link"),
        # The chat's replication between the boxes (appliance.site); None when alone.
        "site_replication": the_box.site.status() if the_box.site is not None else None,
    })


def _site_change(box_id: str, remove: bool) -> Any:
    from ..site.link import Refused

    link = box().site
    if link is None:
        return error(404, "This box is not part of a site.")
    try:
        if remove:
            link.remove_box(box_id)
        else:
            link.add_box_again(box_id)
    except Refused as exc:
        return error(exc.status, str(exc))
    log.info("admin: %s box %s %s the site", "removed" if remove else "added",
             box_id, "from" if remove else "to")
    return jsonify({"removed": sorted(link.removed)})


def remove_site_box(box_id: str) -> Any:
    return _site_change(box_id, remove=True)


def add_site_box(box_id: str) -> Any:
    return _site_change(box_id, remove=False)
