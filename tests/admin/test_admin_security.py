"""The admin API's locks: sessions, CSRF tokens, origin checks, the login lockout, cookies,
and static files that stay inside their folder."""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from admintest import ORIGIN, PASSWORD, Admin, FakeClock
from flask import Flask

from appliance.admin.auth import SESSION_IDLE_S

PUBLIC = {"/admin/api/session", "/admin/api/login"}


def admin_api_calls(app: Flask) -> list[tuple[str, str]]:
    """Every (method, url) of the admin API, with made-up path arguments."""
    calls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin/api/") or rule.rule in PUBLIC:
            continue
        url = re.sub(r"<(?:int:)?seq>", "3", rule.rule)
        url = re.sub(r"<[^>]+>", "x", url)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            calls.append((method, url))
    return calls


def test_every_admin_call_is_listed(app: Flask) -> None:
    calls = admin_api_calls(app)
    assert ("GET", "/admin/api/dashboard") in calls
    assert ("POST", "/admin/api/settings") in calls
    assert ("DELETE", "/admin/api/users/x") in calls
    assert ("POST", "/admin/api/factory-reset") in calls
    assert len(calls) >= 20


def test_no_admin_api_without_a_session(app: Flask) -> None:
    stranger = Admin(app)
    for method, url in admin_api_calls(app):
        response = stranger.send(method, url, json={})
        assert response.status_code == 401, (method, url, response.status_code)
        assert response.json["error"] == "Please sign in."


def test_a_made_up_session_cookie_is_no_session(app: Flask) -> None:
    stranger = Admin(app)
    stranger.client.set_cookie("ahoy-admin", "guessed-session-id", path="/admin")
    assert stranger.get("/admin/api/dashboard").status_code == 401


def test_session_info_says_signed_out_and_gives_no_token(app: Flask) -> None:
    info = Admin(app).get("/admin/api/session").json
    assert info["signed_in"] is False
    assert "csrf_token" not in info
    assert info["has_password"] is True


def test_signed_in_admin_reads_the_dashboard(admin: Admin) -> None:
    data = admin.get("/admin/api/dashboard").json
    assert data["users"] == []
    assert data["clients"] == []  # development mode: no hotspot
    assert data["wifi"]["qr_url"].startswith("/api/qr.svg?text=WIFI%3A")
    assert abs(data["time_ms"] / 1000 - __import__("time").time()) < 5


@pytest.mark.parametrize("headers", [{}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": "not-the-token"}])
def test_changes_without_the_csrf_token_are_refused(admin: Admin, headers: dict[str, str]) -> None:
    response = admin.send("POST", "/admin/api/settings", json={"box_name": "boat"},
                          headers=headers, csrf=None)
    assert response.status_code == 403
    assert "security token" in response.json["error"]
    assert admin.get("/admin/api/settings").json["values"]["box_name"] == "ahoy"


def test_csrf_token_also_works_as_a_form_field(admin: Admin) -> None:
    import io

    response = admin.send("POST", "/admin/api/restore", csrf=None,
                          data={"csrf_token": admin.csrf,
                                "file": (io.BytesIO(b"box_name = boat\n"), "ahoy.txt")})
    assert response.status_code == 200, response.json


def test_the_token_of_one_session_does_not_work_for_another(app: Flask, admin: Admin) -> None:
    other = Admin(app)
    assert other.login().status_code == 200
    response = other.post("/admin/api/settings", {"box_name": "boat"}, csrf=admin.csrf)
    assert response.status_code == 403


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://localhost.evil.example"},
    {"Origin": "https://localhost"},
    {"Origin": "null"},
    {"Referer": "http://evil.example/admin/"},
    {},
])
def test_changes_from_another_origin_are_refused(admin: Admin, headers: dict[str, str]) -> None:
    response = admin.send("POST", "/admin/api/settings", json={"box_name": "boat"},
                          origin=None, headers=headers)
    assert response.status_code == 403
    assert "did not come from the admin page" in response.json["error"]


def test_referer_from_the_page_is_enough_without_origin(admin: Admin) -> None:
    response = admin.send("POST", "/admin/api/settings", json={"box_name": "boat"},
                          origin=None, headers={"Referer": f"{ORIGIN}/admin/#settings"})
    assert response.status_code == 200


def test_logging_in_from_another_origin_is_refused(app: Flask) -> None:
    response = Admin(app).login(origin="http://evil.example")
    assert response.status_code == 403
    assert not response.headers.getlist("Set-Cookie")


def test_wrong_password_then_lockout_says_how_long_to_wait(app: Flask, clock: FakeClock) -> None:
    guesser = Admin(app, address="10.42.0.66")
    for _ in range(4):
        response = guesser.login("wrong-password")
        assert response.status_code == 401
        assert response.json["error"] == "Wrong password."
    response = guesser.login("wrong-password")
    assert response.status_code == 429
    assert response.json["error"] == (
        "Too many wrong passwords from this device. Wait 30 seconds, then try again.")
    assert response.headers["Retry-After"] == "30"
    # Locked out even with the right password, and told the time left.
    clock.advance(10)
    response = guesser.login(PASSWORD)
    assert response.status_code == 429
    assert "Wait 20 seconds" in response.json["error"]
    # Another device is not locked out.
    assert Admin(app, address="10.42.0.7").login().status_code == 200
    clock.advance(21)
    assert guesser.login(PASSWORD).status_code == 200


def test_lockout_doubles_with_each_further_failure(app: Flask, clock: FakeClock) -> None:
    guesser = Admin(app, address="10.42.0.66")
    for _ in range(5):
        guesser.login("wrong-password")
    clock.advance(31)
    response = guesser.login("still-wrong")
    assert response.status_code == 429
    assert "Wait 60 seconds" in response.json["error"]


def test_wrong_current_password_counts_towards_the_lockout(admin: Admin) -> None:
    for _ in range(4):
        response = admin.post("/admin/api/password", {"old": "guess-guess", "new": "x" * 12})
        assert response.status_code == 400
        assert response.json["fields"]["old"] == "That is not the current password."
    response = admin.post("/admin/api/password", {"old": "guess-guess", "new": "x" * 12})
    assert response.status_code == 429


def test_session_cookie_flags_over_http(app: Flask) -> None:
    response = Admin(app).login()
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("ahoy-admin=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie
    assert "Expires" not in cookie and "Max-Age" not in cookie  # gone when the browser closes
    assert PASSWORD not in cookie


def test_session_cookie_flags_over_https(app: Flask) -> None:
    browser = Admin(app, base_url="https://localhost")
    response = browser.login()
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-ahoy-admin=")
    assert "; Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/;" in cookie or cookie.endswith("Path=/")
    assert "Domain" not in cookie
    assert browser.get("/admin/api/dashboard").status_code == 200


def test_api_answers_are_never_cached_and_keep_their_origin(admin: Admin) -> None:
    response = admin.get("/admin/api/dashboard")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_idle_session_expires(admin: Admin, clock: FakeClock) -> None:
    clock.advance(SESSION_IDLE_S - 5)
    assert admin.get("/admin/api/dashboard").status_code == 200
    clock.advance(SESSION_IDLE_S + 1)
    assert admin.get("/admin/api/dashboard").status_code == 401


def test_logout_ends_the_session_for_good(admin: Admin) -> None:
    cookie = admin.client.get_cookie("ahoy-admin", path="/admin")
    assert cookie is not None
    response = admin.post("/admin/api/logout")
    assert response.status_code == 200
    assert "ahoy-admin=;" in response.headers["Set-Cookie"]
    # Replaying the old cookie does not bring the session back.
    admin.client.set_cookie("ahoy-admin", cookie.value, path="/admin")
    assert admin.get("/admin/api/dashboard").status_code == 401


def test_changing_the_password_signs_out_other_browsers(app: Flask, admin: Admin) -> None:
    other = Admin(app, address="192.168.7.21")
    assert other.login().status_code == 200
    short = admin.post("/admin/api/password", {"old": PASSWORD, "new": "short"})
    assert short.status_code == 400
    assert short.json["fields"]["new"].startswith("The new password must be at least 8")
    response = admin.post("/admin/api/password", {"old": PASSWORD, "new": "new-harbour-lights"})
    assert response.status_code == 200
    assert response.json["other_sessions_ended"] == 1
    assert admin.get("/admin/api/dashboard").status_code == 200
    assert other.get("/admin/api/dashboard").status_code == 401
    assert Admin(app).login(PASSWORD).status_code == 401
    assert Admin(app).login("new-harbour-lights").status_code == 200


def test_fresh_box_without_a_password_says_where_to_find_one(
        make_app: Callable[..., Flask]) -> None:
    app = make_app(password=None)
    browser = Admin(app)
    info = browser.get("/admin/api/session").json
    assert info["has_password"] is False
    assert "prints it at first start" in info["password_hint"]
    response = browser.login("anything-at-all")
    assert response.status_code == 409
    assert response.json["no_password"] is True


def test_box_without_a_password_points_at_the_sd_card(make_app: Callable[..., Flask]) -> None:
    info = Admin(make_app(dev=False, password=None)).get("/admin/api/session").json
    assert "ahoy-admin-password.txt" in info["password_hint"]
    assert "admin_password" in info["password_hint"]


def test_ensure_admin_password_makes_one_once(tmp_path: Path) -> None:
    from appliance.admin import ensure_admin_password
    from provisioning.credentials import verify_admin_password

    made = ensure_admin_password(tmp_path)
    assert made and len(made) >= 16
    assert verify_admin_password(tmp_path, made)
    assert ensure_admin_password(tmp_path) is None
    assert verify_admin_password(tmp_path, made)


# --- static files of the admin page


def test_admin_page_is_served_at_admin(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/admin").status_code == 308
    page = client.get("/admin/")
    assert page.status_code == 200
    assert b"Ahoy admin" in page.data
    assert client.get("/admin/main.js").status_code == 200
    assert client.get("/admin/admin.css").status_code == 200


@pytest.mark.parametrize("path", [
    "/admin/../appliance/app.py",
    "/admin/..%2fappliance%2fapp.py",
    "/admin/%2e%2e/%2e%2e/etc/passwd",
    "/admin/..%5c..%5cappliance%5capp.py",
    "/admin//etc/passwd",
    "/admin/%2fetc%2fpasswd",
    "/admin/....//....//etc/passwd",
    "/admin/main.js%00.html",
])
def test_path_traversal_on_admin_files_fails_in_the_test_client(app: Flask, path: str) -> None:
    response = app.test_client().get(path)
    assert response.status_code in (400, 404), path
    assert b"def create_app" not in response.data and b"root:" not in response.data
    assert b"import" not in response.data or b"Ahoy" in response.data


def raw_get(port: int, path: str) -> tuple[int, bytes]:
    """GET exactly this path: http.client does not clean up dots or slashes."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{port}")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("path", [
    "/admin/../appliance/app.py",
    "/admin/..%2f..%2fappliance%2fapp.py",
    "/admin/%2e%2e/%2e%2e/appliance/app.py",
    "/admin/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/admin/..\\..\\appliance\\app.py",
    "/admin/api/../../appliance/app.py",
    "/admin/%252e%252e/appliance/app.py",
])
def test_path_traversal_on_admin_files_fails_on_the_real_server(ahoy_server: object,
                                                                path: str) -> None:
    port = ahoy_server.http_port  # type: ignore[attr-defined]
    status, body = raw_get(port, path)
    assert b"def create_app" not in body and b"import" not in body[:200], (path, status)
    assert b"root:x:0:0" not in body
