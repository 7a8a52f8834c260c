"""Restore on the admin page: only what the page may change, the rest listed, disconnects told true.

Restore used to queue every key in the file, including the ones docs/admin.md
says are set only in ahoy.txt (`ssh_authorized_key`, `network`), and then
said "Nobody is disconnected".
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from admintest import Admin, requests_made
from flask import Flask

from appliance.admin.system import restore_plan
from appliance.box import box_of
from provisioning.config import BoxConfig

KEY_BLOB = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(32)).decode()
SSH_KEY = f"ssh-ed25519 {KEY_BLOB} someone@laptop"


def restore(admin: Admin, text: bytes) -> Any:
    return admin.send("POST", "/admin/api/restore",
                      data={"file": (io.BytesIO(text), "ahoy.txt")})


def queued(app: Flask) -> dict[str, str]:
    path = box_of(app).settings.data_dir / "config" / "requested-changes.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_restore_applies_only_what_the_admin_page_may_change_and_lists_the_rest(
    app: Flask, admin: Admin
) -> None:
    backup = (f"wifi_name = Seagull\nnetwork = 10.50.0.0/24\nssh_authorized_key = {SSH_KEY}\n"
              "interface = eth0\nbutton_pin = none\nadmin_password = not-taken-from-here\n")
    response = restore(admin, backup.encode())
    assert response.status_code == 200, response.json
    body = response.json
    assert body["restored"] is True
    assert body["changed"] == ["wifi_name"]
    assert body["skipped"] == ["network", "ssh_authorized_key", "interface", "button_pin",
                               "admin_password"]
    assert body["skipped_message"] == (
        "Not restored, because they are set only in ahoy.txt on the SD card: network, "
        "ssh_authorized_key, interface, button_pin. The admin password is never restored "
        "from a file; change it under Admin password."
    )
    assert queued(app) == {"wifi_name": "Seagull"}
    assert body["message"].startswith("Restored: Wi-Fi name.")


def test_a_backup_that_only_differs_in_file_only_keys_restores_nothing_and_says_so(
    app: Flask, admin: Admin
) -> None:
    response = restore(admin, f"network = 10.50.0.0/24\nssh_authorized_key = {SSH_KEY}\n"
                              .encode())
    assert response.status_code == 200
    body = response.json
    assert body["restored"] is False and body["changed"] == []
    assert body["skipped"] == ["network", "ssh_authorized_key"]
    assert body["message"] == ("Nothing to restore: the box already has the settings this "
                               "page can change.")
    assert body["notes"] == []  # nobody is told they stay connected to a network that moved
    assert queued(app) == {}


def test_restoring_the_boxs_own_backup_changes_nothing(app: Flask, admin: Admin) -> None:
    backup = admin.get("/admin/api/backup").data
    body = restore(admin, backup).json
    assert (body["restored"], body["changed"], body["skipped"]) == (False, [], [])
    assert queued(app) == {}


@pytest.mark.parametrize(("backup", "changed", "leaves_wifi"), [
    (b"retention_days = 7\n", ["retention_days"], True),
    (b"channel = 11\n", ["channel"], False),
    (b"wifi_passphrase = seagull-42\nretention_messages = 500\n",
     ["retention_messages", "wifi_passphrase"], False),
])
def test_restore_says_truthfully_who_is_disconnected(
    admin: Admin, backup: bytes, changed: list[str], leaves_wifi: bool
) -> None:
    body = restore(admin, backup).json
    assert body["changed"] == changed
    notes = " ".join(body["notes"])
    assert ("Every phone and laptop on the Wi-Fi is disconnected" in notes) is not leaves_wifi
    assert ("Nobody leaves the Wi-Fi" in notes) is leaves_wifi
    assert "Nobody is disconnected" not in notes


def test_a_band_restored_without_a_channel_brings_the_files_channel_for_that_band(
    app: Flask, admin: Admin
) -> None:
    body = restore(admin, b"country = DE\nband = 5\n").json
    assert body["changed"] == ["band", "channel", "country"]
    assert queued(app) == {"country": "DE", "band": "5", "channel": "36"}


def test_a_broken_backup_restores_nothing_and_lists_every_problem(
    app: Flask, admin: Admin
) -> None:
    for text in (b"", b"# only notes\n", b"wifi_name = Seagull\nchannel = 99\n",
                 b"interface = lo\nwifi_name = Seagull\n"):
        response = restore(admin, text)
        assert response.status_code == 400, text
        assert queued(app) == {}
    problems = restore(admin, b"interface = lo\n").json["problems"]
    assert problems == ["line 1: interface lo is the loopback interface, not Wi-Fi; the "
                        "hotspot needs a Wi-Fi adapter: wlan0 is the Pi's own, wlan1 a USB one"]


def test_on_the_box_restore_asks_the_apply_step_only_when_something_changes(
    box_admin: tuple[Flask, Admin],
) -> None:
    app, admin = box_admin
    assert restore(admin, b"network = 10.50.0.0/24\n").json["restored"] is False
    assert requests_made(app) == []
    body = restore(admin, b"retention_days = 3\n").json
    assert body["restored"] is True
    assert requests_made(app) == [{"action": "apply"}]
    assert "sign in again" in " ".join(body["notes"])


def test_the_restore_plan_compares_with_the_settings_in_force(tmp_path: Path) -> None:
    current = BoxConfig(wifi_name="Seagull", channel=11)
    plan = restore_plan("wifi_name = Seagull\nchannel = 1\nnetwork = 10.42.0.0/24\n", current)
    assert plan.changes == {"channel": "1"}
    assert plan.skipped == []  # the same network: nothing was left out
