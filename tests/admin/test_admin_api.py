"""What each admin screen's API does: settings, moderation, certificates, clock, logs, power."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from admintest import PASSWORD, Admin, requests_made
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from flask import Flask

from appliance.admin.dashboard import wifi_qr_text
from appliance.admin.settings import disconnect_notes, field_errors
from appliance.box import box_of
from provisioning.config import BoxConfig, Problem
from provisioning.requests import EARLIEST_CLOCK, RequestError, clock_problem, parse_request

# --- settings


def test_settings_show_the_box_config(admin: Admin) -> None:
    data = admin.get("/admin/api/settings").json
    assert data["values"] == {
        "box_name": "ahoy", "wifi_name": "Ahoy", "wifi_passphrase": "", "country": "",
        "band": "2.4", "channel": "6", "retention_days": "30", "retention_messages": "10000",
        "default_room": "Everyone",
    }
    assert data["channels"]["2.4"] == list(range(1, 12))


def test_the_room_everyone_joins_is_a_setting_with_none_for_no_room(admin: Admin) -> None:
    too_long = admin.post("/admin/api/settings", {"default_room": "x" * 49})
    assert too_long.status_code == 400
    assert too_long.json["fields"]["default_room"].startswith(
        "Room everyone joins must be at most 48 characters")
    assert admin.post("/admin/api/settings", {"default_room": "none"}).status_code == 200
    assert admin.get("/admin/api/settings").json["values"]["default_room"] == "none"
    assert admin.post("/admin/api/settings", {"default_room": "Deck crew"}).status_code == 200
    assert admin.get("/admin/api/settings").json["values"]["default_room"] == "Deck crew"


def test_bad_settings_come_back_per_field_in_words(admin: Admin) -> None:
    response = admin.post("/admin/api/settings", {
        "wifi_passphrase": "short", "channel": "14", "box_name": "My Boat!",
        "retention_days": "forever"})
    assert response.status_code == 400
    fields = response.json["fields"]
    assert fields["wifi_passphrase"].startswith("Wi-Fi password must be 8 to 63 characters")
    assert fields["box_name"].startswith("Box name may use only letters a-z")
    assert fields["retention_days"].startswith("Keep messages for (days) must be a whole number")
    assert response.json["error"] == "Nothing was saved: fix the marked settings."
    assert admin.get("/admin/api/settings").json["values"]["wifi_passphrase"] == ""


def test_channel_rules_depend_on_country_and_band(admin: Admin) -> None:
    response = admin.post("/admin/api/settings", {"band": "5"})
    assert response.status_code == 400
    assert response.json["fields"]["band"].startswith("Band 5 needs a country")
    response = admin.post("/admin/api/settings", {"country": "DE", "channel": "13"})
    assert response.status_code == 200, response.json


def test_saving_good_settings_queues_them_for_the_apply_step(app: Flask, admin: Admin) -> None:
    response = admin.post("/admin/api/settings", {
        "wifi_name": "Harbour", "wifi_passphrase": "seagull-42", "retention_days": "7"})
    assert response.status_code == 200
    body = response.json
    assert body["saved"] is True
    assert body["changed"] == ["retention_days", "wifi_name", "wifi_passphrase"]
    assert "Development mode" in body["message"]
    assert any("Every phone and laptop" in n and "Harbour" in n for n in body["notes"])
    queued = json.loads((box_of(app).settings.data_dir / "config/requested-changes.json")
                        .read_text())
    assert queued == {"wifi_name": "Harbour", "wifi_passphrase": "seagull-42",
                      "retention_days": "7"}
    assert admin.get("/admin/api/settings").json["values"]["wifi_name"] == "Harbour"
    assert requests_made(app) == []  # development: nothing touches the machine


def test_unchanged_settings_save_nothing(admin: Admin) -> None:
    values = admin.get("/admin/api/settings").json["values"]
    response = admin.post("/admin/api/settings", values)
    assert response.json == {"saved": False, "message": "Nothing changed.", "notes": []}


def test_settings_outside_the_form_are_refused(admin: Admin) -> None:
    response = admin.post("/admin/api/settings", {"admin_password": "sneaky-password"})
    assert response.status_code == 400
    response = admin.post("/admin/api/settings", {"network": "192.168.5.0/24"})
    assert response.status_code == 400


def test_on_the_box_saved_settings_ask_the_apply_step(box_admin: tuple[Flask, Admin]) -> None:
    app, admin = box_admin
    response = admin.post("/admin/api/settings", {"retention_days": "3"})
    assert response.status_code == 200
    assert response.json["notes"] == [
        "Nobody leaves the Wi-Fi. The chat service restarts to take the change: phones "
        "reconnect by themselves within seconds and miss no messages.",
        "This page signs you out when the service restarts: sign in again.",
    ]
    assert requests_made(app) == [{"action": "apply"}]


def test_field_errors_sort_messages_by_field() -> None:
    fields, general = field_errors([
        Problem(None, "channel", "channel 14 is not allowed on 2.4 GHz in DE; use one of 1 to 13"),
        Problem(3, "country", "country 'UK' is not an ISO 3166 code; did you mean GB?"),
        Problem(None, None, "unknown key 'colour'; known keys are ..."),
    ])
    assert fields == {
        "channel": "Channel 14 is not allowed on 2.4 GHz in DE; use one of 1 to 13",
        "country": "Country 'UK' is not an ISO 3166 code; did you mean GB?",
    }
    assert general == ["unknown key 'colour'; known keys are ..."]


def test_disconnect_notes_say_who_loses_the_connection() -> None:
    new = BoxConfig(wifi_name="Harbour", box_name="harbour")
    assert disconnect_notes([], new) == ["Nobody is disconnected."]
    kept, signed_out = disconnect_notes(["retention_days"], new)
    assert kept.startswith("Nobody leaves the Wi-Fi. The chat service restarts")
    assert "sign in again" in signed_out
    [radio] = disconnect_notes(["channel"], new)  # the radio only: the service keeps running
    assert "Every phone and laptop" in radio and "Harbour" in radio
    name, kept, _ = disconnect_notes(["box_name"], new)
    assert "harbour.local" in name and kept.startswith("Nobody leaves the Wi-Fi")
    opened, signed_out = disconnect_notes(["wifi_passphrase"], new)
    assert "open network" in opened and "sign in again" in signed_out


@pytest.mark.parametrize(("ssid", "passphrase", "text"), [
    ("Ahoy", "", "WIFI:T:nopass;S:Ahoy;;"),
    ("Boat;1", "pa:ss,\"w\\d", 'WIFI:T:WPA;S:Boat\\;1;P:pa\\:ss\\,\\"w\\\\d;;'),
])
def test_join_wifi_qr_text_escapes_special_characters(ssid: str, passphrase: str,
                                                      text: str) -> None:
    assert wifi_qr_text(ssid, passphrase) == text


# --- moderation


def test_moderating_someone_or_something_unknown_says_so(admin: Admin) -> None:
    assert admin.send("DELETE", "/admin/api/users/u_nobody").status_code == 404
    assert admin.send("DELETE", "/admin/api/rooms/r_nothing").status_code == 404
    response = admin.send("DELETE", "/admin/api/messages/room:r_nothing/1")
    assert response.status_code == 404
    assert response.json["error"] == "That message is already gone."


def test_people_lists_users_rooms_and_calls(admin: Admin) -> None:
    assert admin.get("/admin/api/people").json == {"users": [], "rooms": [], "calls": []}


# --- certificates


def make_certificate(names: list[str], days: int = 90) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def upload(admin: Admin, cert: bytes, key: bytes):  # type: ignore[no-untyped-def]
    return admin.send("POST", "/admin/api/certificates/custom", data={
        "certificate": (io.BytesIO(cert), "chat.crt"), "key": (io.BytesIO(key), "chat.key")})


def test_uploaded_certificate_is_checked_and_stored(app: Flask, admin: Admin) -> None:
    cert, key = make_certificate(["chat.example.org"])
    response = upload(admin, cert, key)
    assert response.status_code == 200, response.json
    assert response.json["names"] == ["chat.example.org"]
    tls = box_of(app).settings.tls_dir
    assert (tls / "custom.crt").read_bytes() == cert
    assert (tls / "custom.key").read_bytes() == key
    assert (tls / "custom.key").stat().st_mode & 0o777 == 0o600
    info = admin.get("/admin/api/certificates").json
    assert info["in_use"] == "custom"
    assert info["custom"]["names"] == ["chat.example.org"]
    assert info["downloads"] == {"ca": "/ca.crt", "ios_profile": "/ahoy.mobileconfig"}
    assert admin.send("DELETE", "/admin/api/certificates/custom").status_code == 200
    assert not (tls / "custom.crt").exists() and not (tls / "custom.key").exists()
    assert admin.get("/admin/api/certificates").json["in_use"] == "box"


def test_certificate_with_the_wrong_key_is_refused_with_a_reason(app: Flask,
                                                                 admin: Admin) -> None:
    cert, _ = make_certificate(["chat.example.org"])
    _, other_key = make_certificate(["other.example.org"])
    response = upload(admin, cert, other_key)
    assert response.status_code == 400
    assert response.json["error"].startswith("The private key does not belong to the certificate")
    assert not (box_of(app).settings.tls_dir / "custom.crt").exists()


def test_certificate_upload_needs_both_files_and_no_junk(admin: Admin) -> None:
    cert, key = make_certificate(["chat.example.org"])
    response = admin.send("POST", "/admin/api/certificates/custom",
                          data={"certificate": (io.BytesIO(cert), "c.crt")})
    assert response.status_code == 400
    response = upload(admin, b"hello", key)
    assert response.status_code == 400
    assert "not a PEM file" in response.json["error"]


# --- clock


def test_clock_shows_the_box_time(admin: Admin) -> None:
    assert abs(admin.get("/admin/api/clock").json["time_ms"] / 1000 - time.time()) < 5


def test_clock_is_not_set_in_development(admin: Admin) -> None:
    response = admin.post("/admin/api/clock", {"time_ms": int(time.time() * 1000)})
    assert response.status_code == 200
    assert response.json["applied"] is False
    assert "Development mode" in response.json["message"]


@pytest.mark.parametrize("value", [0, "soon", True, None, 5_000_000_000_000])
def test_clock_refuses_impossible_times(admin: Admin, value: object) -> None:
    response = admin.post("/admin/api/clock", {"time_ms": value})
    assert response.status_code == 400


def test_a_clock_the_root_side_would_refuse_is_refused_by_the_admin_page_in_the_same_words(
        admin: Admin) -> None:
    # 2025-06-01: after the admin page's old lower bound (2024), before the root side's (2026).
    seconds = int(dt.datetime(2025, 6, 1, tzinfo=dt.UTC).timestamp())
    response = admin.post("/admin/api/clock", {"time_ms": seconds * 1000})
    assert response.status_code == 400
    assert response.json["error"] == clock_problem(seconds)
    assert response.json["error"] == ("2025-06-01 00:00 UTC cannot be right (the box takes a time "
                                      "from 2026-01-01 until 2100-01-01); check this device's "
                                      "clock first.")
    with pytest.raises(RequestError) as refused:
        parse_request("x.json", json.dumps({"action": "set-clock", "time": seconds}).encode())
    assert str(refused.value).endswith(response.json["error"])


def test_the_earliest_clock_the_admin_page_takes_is_carried_out_by_the_root_side(
        box_admin: tuple[Flask, Admin], monkeypatch: pytest.MonkeyPatch) -> None:
    app, admin = box_admin

    def refuse(clock_id: int, seconds: float) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(time, "clock_settime", refuse)
    response = admin.post("/admin/api/clock", {"time_ms": EARLIEST_CLOCK * 1000})
    assert response.status_code == 200, response.json
    (path,) = sorted((box_of(app).settings.data_dir / "requests").glob("*.json"))
    request = parse_request(path.name, path.read_bytes())
    assert request.payload == {"time": EARLIEST_CLOCK}
    before = admin.post("/admin/api/clock", {"time_ms": EARLIEST_CLOCK * 1000 - 1})
    assert before.status_code == 400


def test_on_the_box_the_clock_is_set_directly_or_by_the_apply_step(
        box_admin: tuple[Flask, Admin], monkeypatch: pytest.MonkeyPatch) -> None:
    app, admin = box_admin
    calls: list[float] = []

    def refuse(clock_id: int, seconds: float) -> None:
        calls.append(seconds)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(time, "clock_settime", refuse)
    now_ms = int(time.time() * 1000)
    response = admin.post("/admin/api/clock", {"time_ms": now_ms})
    assert response.json["applied"] is False
    assert calls == [now_ms / 1000]
    assert requests_made(app) == [{"action": "set-clock", "time": now_ms / 1000}]


# --- logs, power, backup, restore, factory reset


def test_logs_show_recent_service_events(admin: Admin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("appliance.test").info("the kettle is on <b>now</b>")
    logging.getLogger("werkzeug").info("GET /admin/api/dashboard 200")
    data = admin.get("/admin/api/logs").json
    messages = [r["message"] for r in data["records"]]
    assert "the kettle is on <b>now</b>" in messages
    assert not any("GET /admin/api/dashboard" in m for m in messages)
    last = data["records"][-1]["id"]
    assert admin.get(f"/admin/api/logs?after={last}").json["records"] == []
    assert data["config_status"]["errors"] == []


def test_power_in_development_does_nothing(app: Flask, admin: Admin) -> None:
    response = admin.post("/admin/api/power", {"action": "reboot"})
    assert response.json["done"] is False
    assert requests_made(app) == []
    assert admin.post("/admin/api/power", {"action": "explode"}).status_code == 400


def test_power_on_the_box_asks_the_apply_step(box_admin: tuple[Flask, Admin]) -> None:
    app, admin = box_admin
    assert admin.post("/admin/api/power", {"action": "shutdown"}).json["done"] is True
    assert admin.post("/admin/api/power", {"action": "reboot"}).json["done"] is True
    assert requests_made(app) == [{"action": "shutdown"}, {"action": "reboot"}]


def test_factory_reset_needs_the_typed_word(box_admin: tuple[Flask, Admin]) -> None:
    app, admin = box_admin
    for word in (None, "", "yes", "erase please"):
        response = admin.post("/admin/api/factory-reset", {"confirm": word})
        assert response.status_code == 400
        assert response.json["fields"]["confirm"] == "Type ERASE here."
    assert requests_made(app) == []
    response = admin.post("/admin/api/factory-reset", {"confirm": "erase"})
    assert response.json["done"] is True
    assert requests_made(app) == [{"action": "factory-reset"}]


def test_backup_is_the_box_config_file(admin: Admin) -> None:
    response = admin.get("/admin/api/backup")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert b"wifi_name = Ahoy" in response.data
    assert not re.search(rb"admin_password *= *\S", response.data)


def test_backup_prefers_the_file_on_the_boot_partition(make_app: Callable[..., Flask],
                                                       tmp_path: Path) -> None:
    boot = tmp_path / "boot" / "ahoy.txt"
    boot.parent.mkdir()
    boot.write_bytes(b"# my boat\r\nwifi_name = Seagull\r\n")
    app = make_app(box_config=boot)
    admin = Admin(app)
    admin.login()
    assert admin.get("/admin/api/backup").data == b"# my boat\r\nwifi_name = Seagull\r\n"


def test_restore_checks_the_file_then_queues_it(app: Flask, admin: Admin) -> None:
    def restore(text: bytes):  # type: ignore[no-untyped-def]
        return admin.send("POST", "/admin/api/restore",
                          data={"file": (io.BytesIO(text), "ahoy.txt")})

    bad = restore(b"wifi_name = Seagull\nchannel = 99\ncolour = blue\n")
    assert bad.status_code == 400
    assert bad.json["error"] == "Nothing was restored: the file has problems."
    assert any(p.startswith("line 2: channel") for p in bad.json["problems"])
    assert any(p.startswith("line 3: unknown key 'colour'") for p in bad.json["problems"])
    assert restore(b"\x00\x01binary").status_code == 400
    good = restore(b"wifi_name = Seagull\nadmin_password = not-taken-from-here\n")
    assert good.status_code == 200, good.json
    queued = json.loads((box_of(app).settings.data_dir / "config/requested-changes.json")
                        .read_text())
    assert queued == {"wifi_name": "Seagull"}


def test_removing_a_box_of_a_site_on_a_box_alone_says_there_is_no_site(admin: Admin) -> None:
    for method in ("DELETE", "POST"):
        response = admin.send(method, "/admin/api/site/boxes/0123abcd")
        assert response.status_code == 404
        assert response.json["error"] == "This box is not part of a site."


def test_removing_a_box_of_a_site_needs_the_csrf_token_and_the_page_origin(admin: Admin) -> None:
    assert admin.send("DELETE", "/admin/api/site/boxes/0123abcd", csrf=None).status_code == 403
    assert admin.send("DELETE", "/admin/api/site/boxes/0123abcd",
                      origin="http://evil.example").status_code == 403


def test_half_a_character_is_refused_in_words_and_nothing_is_saved(
        admin: Admin, app: Flask) -> None:
    """JSON can carry half of a UTF-16 pair (\\ud83d); it cannot be written to
    ahoy.txt nor hashed as a password, so every screen refuses it with a 400."""
    for path, body in [("/admin/api/settings", {"box_name": "boat\ud83d"}),
                       ("/admin/api/settings", {"wifi_passphrase": "long enough \udc00"}),
                       ("/admin/api/password", {"old": PASSWORD, "new": "new one \ud800!"})]:
        response = admin.post(path, body)
        assert response.status_code == 400, (path, response.status_code)
        assert "half of a character" in response.json["error"], response.json
    shown = admin.get("/admin/api/settings").json
    assert shown["values"]["wifi_passphrase"] == "" and not shown["pending"]
    # Signing in with such a password is refused the same way (and is no failed try).
    assert Admin(app).login("pass\ud800word").status_code == 400
    assert Admin(app).login().status_code == 200
