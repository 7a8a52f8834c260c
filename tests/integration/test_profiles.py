"""Profile pictures over HTTP: re-encoded, size-limited, only for the device's own user."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pytest
from ahoytest import AhoyServer, unique
from PIL import Image


def post_avatar(server: AhoyServer, token: str | None, body: bytes) -> tuple[int, dict]:  # type: ignore[type-arg]
    headers = {"Content-Type": "application/octet-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(server.http_url + "/api/avatar", data=body, headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"error": body.decode(errors="replace")}


def photo_with_gps() -> bytes:
    image = Image.new("RGB", (1200, 800), (200, 30, 30))
    exif = Image.Exif()
    exif[0x8825] = {2: (59.0, 54.0, 0.0)}  # GPSInfo: a latitude
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_avatar_is_reencoded_without_metadata_and_announced(ws_client, ahoy_server: AhoyServer) -> None:  # type: ignore[no-untyped-def]
    ana = ws_client(unique("Ana"))
    ben = ws_client(unique("Ben"))
    ben.request("people", "people", watch=True)  # told of everyone's changes
    status, reply = post_avatar(ahoy_server, ana.token, photo_with_gps())
    assert status == 200
    url = reply["user"]["avatar"]
    assert url.startswith(f"/api/avatar/{ana.user_id}?v=")
    assert ben.expect_user(ana.user_id, avatar=url)["avatar"] == url
    with urllib.request.urlopen(ahoy_server.http_url + url) as r:
        assert r.headers["Content-Type"] == "image/webp"
        stored = Image.open(io.BytesIO(r.read()))
    assert stored.size == (256, 256)
    assert not stored.getexif()


@pytest.mark.parametrize("body", [b"", b"GIF89a not really", b"<svg onload=alert(1)>", b"\x00" * 5000])
def test_bad_pictures_are_refused_with_a_reason(ws_client, ahoy_server: AhoyServer, body: bytes) -> None:  # type: ignore[no-untyped-def]
    ana = ws_client(unique("Ana"))
    status, reply = post_avatar(ahoy_server, ana.token, body)
    assert status == 400 and reply["error"]


def test_avatar_upload_needs_a_device_token(ahoy_server: AhoyServer) -> None:
    assert post_avatar(ahoy_server, None, photo_with_gps())[0] == 401
    assert post_avatar(ahoy_server, "forged", photo_with_gps())[0] == 401
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(ahoy_server.http_url + "/api/avatar/..%2f..%2fahoy.db")
    assert e.value.code == 404
