"""Cheap requests stall nobody: CPU-heavy work runs off the event loop and is capped.

The admin sign-in's scrypt and the decoding of profile pictures used to run on
gevent's loop, so a few wrong passwords or one big PNG froze every phone's
chat. Against the production server (gevent) on loopback, with spies noting
the OS thread of each call (offloop_spy.py).
"""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ahoytest import AhoyServer, WsClient, unique
from PIL import Image

from appliance.admin.auth import BOX_FAILURES, LoginLimiter, lockout_message
from appliance.avatars import MAX_JPEG_PIXELS, MAX_PIXELS, AvatarError, reencode

SPY = Path(__file__).with_name("offloop_spy.py")
PASSWORD = "sea-shanty-42"


def spied_server(folder: Path) -> AhoyServer:
    """The production server with an admin password, under the spies."""
    from provisioning.credentials import set_admin_password

    set_admin_password(folder / "data", PASSWORD)
    return AhoyServer(folder / "data", production=True, program=(str(SPY),),
                      env={"AHOY_SPY_LOG": str(folder / "spy.log")}).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AhoyServer]:
    box = spied_server(tmp_path_factory.mktemp("cheap"))
    yield box
    box.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[AhoyServer]:
    box = spied_server(tmp_path)
    yield box
    box.stop()


def spied(server: AhoyServer) -> list[str]:
    log = server.data_dir.parent / "spy.log"
    return log.read_text().splitlines() if log.exists() else []


def post(server: AhoyServer, path: str, body: bytes, source: str = "127.0.0.1",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30,
                                      source_address=(source, 0))
    try:
        conn.request("POST", path, body=body, headers={
            "Origin": f"http://127.0.0.1:{server.http_port}", **(headers or {})})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def login(server: AhoyServer, password: str, source: str) -> tuple[int, dict[str, Any]]:
    return post(server, "/admin/api/login", json.dumps({"password": password}).encode(),
                source, {"Content-Type": "application/json"})


def picture(width: int, height: int, image_format: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(out, image_format)
    return out.getvalue()


def upload_avatar(server: AhoyServer, data: bytes) -> tuple[int, dict[str, Any]]:
    phone = WsClient(server.ws_url)
    try:
        assert phone.hello(unique("Pic"))["type"] == "welcome"
        return post(server, "/api/avatar", data,
                    headers={"Authorization": f"Bearer {phone.token}"})
    finally:
        phone.close()


def test_password_checks_and_picture_decoding_run_off_the_event_loop(
        server: AhoyServer) -> None:
    assert login(server, "not-the-password", "127.0.0.60")[0] == 401
    assert login(server, PASSWORD, "127.0.0.61")[0] == 200
    assert upload_avatar(server, picture(640, 480, "PNG"))[0] == 200
    calls = spied(server)
    assert "scrypt worker" in calls and "reencode worker" in calls, calls
    assert not [c for c in calls if c.endswith(" main")], calls


def test_changing_the_admin_password_hashes_off_the_event_loop(
        fresh_server: AhoyServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fresh_server.http_port, timeout=30)
    origin = {"Origin": f"http://127.0.0.1:{fresh_server.http_port}",
              "Content-Type": "application/json"}
    try:
        conn.request("POST", "/admin/api/login", json.dumps({"password": PASSWORD}), origin)
        response = conn.getresponse()
        assert response.status == 200
        csrf = json.loads(response.read())["csrf_token"]
        cookie = response.getheader("Set-Cookie", "").split(";")[0]
        (fresh_server.data_dir.parent / "spy.log").unlink()
        conn.request("POST", "/admin/api/password",
                     json.dumps({"old": PASSWORD, "new": "a-longer-shanty-43"}),
                     {**origin, "Cookie": cookie, "X-CSRF-Token": csrf})
        response = conn.getresponse()
        assert response.status == 200, response.read()
        response.read()
    finally:
        conn.close()
    calls = spied(fresh_server)
    # One check of the old password, one hash of the new one: both on a worker.
    assert calls == ["scrypt worker", "scrypt worker"], calls


def test_a_picture_with_too_many_pixels_is_refused_with_a_clear_message(
        server: AhoyServer) -> None:
    # 39.9 megapixels in 132 KB: under the old 40-megapixel limit.
    status, body = upload_avatar(server, picture(7300, 5465, "PNG"))
    assert status == 400
    assert body["error"] == ("The picture has too many pixels (at most 12 megapixels, "
                             "4032 × 3024, or 25 megapixels as a JPEG).")


def test_a_24_megapixel_phone_photo_is_accepted(server: AhoyServer) -> None:
    status, body = upload_avatar(server, picture(5712, 4284, "JPEG"))
    assert status == 200, body


def test_bmp_pictures_are_refused_as_the_protocol_says(server: AhoyServer) -> None:
    status, body = upload_avatar(server, picture(64, 64, "BMP"))
    assert status == 400
    assert body["error"] == "Use a JPEG, PNG, WebP or GIF picture."


def test_wrong_passwords_from_many_addresses_meet_a_box_wide_lockout(
        fresh_server: AhoyServer) -> None:
    server = fresh_server
    answers = []
    for address in range(40):
        for _ in range(4):
            answers.append(login(server, "guess-guess", f"127.0.1.{address + 1}"))
    statuses = [status for status, _ in answers]
    assert statuses[:BOX_FAILURES - 1] == [401] * (BOX_FAILURES - 1)
    assert statuses[BOX_FAILURES - 1] == 429
    assert set(statuses[BOX_FAILURES:]) == {429}
    message = answers[-1][1]["error"]
    assert message.startswith("Too many wrong passwords on this box lately, "
                              "from several devices. Nobody can sign in for ")
    # Not even the right password, from a device that never guessed.
    status, body = login(server, PASSWORD, "127.0.2.1")
    assert status == 429 and body["error"] == message


# -- the same rules, without the server ---------------------------------------


def test_the_box_wide_limit_counts_every_address_and_lifts_after_ten_minutes() -> None:
    limiter = LoginLimiter()
    for i in range(BOX_FAILURES - 1):
        assert limiter.failed(f"10.42.0.{i + 10}", float(i)) == 0
    # The 20th in ten minutes: nobody may try until the first is ten minutes old.
    assert limiter.failed("10.42.0.99", 19.0) == 581
    assert limiter.wait_seconds("10.42.0.200", 20.0) == 580
    assert limiter.box_wait_seconds(20.0) == 580
    assert limiter.wait_seconds("10.42.0.200", 600.0) == 0
    assert limiter.failed("10.42.0.200", 600.0) == 1  # then one more, a second later


def test_the_box_wide_lockout_says_it_is_for_everyone() -> None:
    assert lockout_message(600, everyone=True) == (
        "Too many wrong passwords on this box lately, from several devices. "
        "Nobody can sign in for 10 minutes; then try again.")
    assert lockout_message(30).startswith("Too many wrong passwords from this device.")


def test_pixels_are_capped_like_a_phone_photo() -> None:
    assert reencode(picture(4032, 3024, "PNG"))[:4] == b"RIFF"
    with pytest.raises(AvatarError, match="too many pixels"):
        reencode(picture(4032, 3025, "PNG"))
    assert MAX_PIXELS == 4032 * 3024
    assert MAX_JPEG_PIXELS == 25_000_000
    with pytest.raises(AvatarError, match="a JPEG may have at most 25 megapixels"):
        reencode(picture(5000, 5001, "JPEG"))
