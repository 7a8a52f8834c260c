"""The admin page's security core, without Flask: sessions, lockouts, origins."""

from __future__ import annotations

import pytest

from appliance.admin.auth import (
    LoginLimiter,
    Sessions,
    cookie_name,
    describe_wait,
    lockout_message,
    same_origin,
)


def test_session_ids_and_csrf_tokens_are_random_and_distinct() -> None:
    sessions = Sessions()
    made = [sessions.create(0.0) for _ in range(20)]
    ids = {s.id for s in made} | {s.csrf_token for s in made}
    assert len(ids) == 40
    assert all(len(s.id) >= 40 for s in made)


def test_session_expires_when_idle_but_activity_keeps_it() -> None:
    sessions = Sessions(idle_s=60, max_s=1000)
    s = sessions.create(0.0)
    assert sessions.get(s.id, 50) is s
    assert sessions.get(s.id, 100) is s  # 50 s after the last use
    assert sessions.get(s.id, 161) is None
    assert sessions.get(s.id, 162) is None  # gone for good


def test_session_has_a_hard_limit_even_when_used() -> None:
    sessions = Sessions(idle_s=60, max_s=200)
    s = sessions.create(0.0)
    for t in range(0, 200, 30):
        assert sessions.get(s.id, t) is s
    assert sessions.get(s.id, 201) is None


def test_unknown_or_empty_session_ids_are_refused() -> None:
    sessions = Sessions()
    sessions.create(0.0)
    assert sessions.get("", 1) is None
    assert sessions.get(None, 1) is None
    assert sessions.get("made-up", 1) is None


def test_logout_ends_only_that_session() -> None:
    sessions = Sessions()
    a, b = sessions.create(0.0), sessions.create(0.0)
    sessions.end(a.id)
    assert sessions.get(a.id, 1) is None
    assert sessions.get(b.id, 1) is b


def test_end_all_except_keeps_the_current_one() -> None:
    sessions = Sessions()
    keep = sessions.create(0.0)
    others = [sessions.create(0.0) for _ in range(3)]
    assert sessions.end_all_except(keep.id) == 3
    assert sessions.get(keep.id, 1) is keep
    assert all(sessions.get(o.id, 1) is None for o in others)


def test_session_count_is_bounded_and_the_least_recent_goes() -> None:
    sessions = Sessions(limit=3)
    first, second, third = (sessions.create(float(t)) for t in range(3))
    sessions.get(first.id, 3.0)  # first is now the most recently used
    sessions.create(4.0)
    assert len(sessions) == 3
    assert sessions.get(second.id, 5.0) is None
    assert sessions.get(first.id, 5.0) is first
    assert sessions.get(third.id, 5.0) is third


def test_csrf_token_must_match_exactly() -> None:
    s = Sessions().create(0.0)
    assert s.csrf_ok(s.csrf_token)
    assert not s.csrf_ok(None)
    assert not s.csrf_ok("")
    assert not s.csrf_ok(s.csrf_token[:-1])
    assert not s.csrf_ok(s.csrf_token + "x")


def test_four_wrong_passwords_are_free_the_fifth_locks_out_for_30_seconds() -> None:
    limiter = LoginLimiter()
    for _ in range(4):
        assert limiter.failed("10.42.0.50", 0.0) == 0
        assert limiter.wait_seconds("10.42.0.50", 0.0) == 0
    assert limiter.failed("10.42.0.50", 0.0) == 30
    assert limiter.wait_seconds("10.42.0.50", 10.0) == 20
    assert limiter.wait_seconds("10.42.0.50", 30.0) == 0


def test_each_further_failure_doubles_the_wait_up_to_an_hour() -> None:
    limiter = LoginLimiter()
    waits = [limiter.failed("a", 0.0) for _ in range(15)]
    assert waits[4:9] == [30, 60, 120, 240, 480]
    assert max(waits) == 3600
    assert waits[-1] == 3600


def test_right_password_clears_the_count() -> None:
    limiter = LoginLimiter()
    for _ in range(4):
        limiter.failed("a", 0.0)
    limiter.succeeded("a")
    assert limiter.failed("a", 1.0) == 0


def test_lockout_is_per_address() -> None:
    limiter = LoginLimiter()
    for _ in range(5):
        limiter.failed("attacker", 0.0)
    assert limiter.wait_seconds("attacker", 1.0) > 0
    assert limiter.wait_seconds("owner", 1.0) == 0


@pytest.mark.parametrize(("seconds", "text"), [
    (1, "1 second"), (30, "30 seconds"), (89, "89 seconds"), (120, "2 minutes"),
    (480, "8 minutes"), (3600, "60 minutes"), (7200, "2 hours"),
])
def test_wait_is_described_for_a_person(seconds: int, text: str) -> None:
    assert describe_wait(seconds) == text
    assert text in lockout_message(seconds)


@pytest.mark.parametrize(("origin", "referer", "ok"), [
    ("http://10.42.0.1", None, True),
    ("HTTP://10.42.0.1", None, True),
    ("http://10.42.0.1", "http://evil.example/", True),  # Origin decides when present
    ("http://evil.example", "http://10.42.0.1/admin/", False),
    ("https://10.42.0.1", None, False),  # another scheme is another origin
    ("http://10.42.0.1:8080", None, False),
    ("null", None, False),
    ("null", "http://10.42.0.1/admin/", True),
    (None, "http://10.42.0.1/admin/#settings", True),
    (None, "http://10.42.0.1.evil.example/admin/", False),
    (None, None, False),
    ("", "", False),
])
def test_changes_must_come_from_the_page_itself(origin: str | None, referer: str | None,
                                                ok: bool) -> None:
    assert same_origin(origin, referer, "http", "10.42.0.1") is ok


def test_https_cookie_uses_the_host_prefix() -> None:
    assert cookie_name(True).startswith("__Host-")
    assert not cookie_name(False).startswith("__Host-")
