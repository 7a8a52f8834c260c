"""One-time codes for moving to the secure address: short life, single use, bounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from hubdriver import RecordingPeer

from appliance import handoff
from appliance.app import create_app
from appliance.box import box_of
from appliance.handoff import HandoffRefused, Handoffs
from appliance.settings import Settings


def hello_token(app: Flask, name: str) -> tuple[str, str]:
    """Join the app's hub as `name`: (device token, user id)."""
    peer = RecordingPeer()
    box_of(app).hub.connect(peer, "")
    box_of(app).hub.handle(peer, json.dumps({"type": "hello", "name": name}))
    welcome = peer.last("welcome")
    return str(welcome["token"]), str(welcome["you"]["id"])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_code_gives_the_token_once() -> None:
    codes = Handoffs()
    code = codes.issue("u_ana", "tok-ana")
    assert codes.redeem(code) == ("u_ana", "tok-ana")
    with pytest.raises(HandoffRefused) as refused:
        codes.redeem(code)
    assert refused.value.code == "used"
    assert "already used" in refused.value.message


def test_a_code_expires_after_its_lifetime() -> None:
    clock = Clock()
    codes = Handoffs(clock=clock)
    code = codes.issue("u_ana", "tok-ana")
    clock.now += handoff.LIFETIME_S - 1
    fresh = codes.issue("u_ben", "tok-ben")
    clock.now += 1
    with pytest.raises(HandoffRefused) as refused:
        codes.redeem(code)
    assert refused.value.code == "expired"
    assert "too old" in refused.value.message
    assert codes.redeem(fresh) == ("u_ben", "tok-ben")


def test_a_person_holds_a_bounded_number_of_codes_the_newest_win() -> None:
    codes = Handoffs()
    issued = [codes.issue("u_ana", "tok") for _ in range(handoff.PER_USER + 2)]
    assert codes.outstanding("u_ana") == handoff.PER_USER
    for old in issued[:2]:
        with pytest.raises(HandoffRefused):
            codes.redeem(old)
    assert codes.redeem(issued[-1]) == ("u_ana", "tok")


def test_the_box_holds_a_bounded_number_of_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff, "MAX_CODES", 5)
    codes = Handoffs()
    issued = [codes.issue(f"u_{i}", "tok") for i in range(8)]
    assert sum(codes.outstanding(f"u_{i}") for i in range(8)) == 5
    with pytest.raises(HandoffRefused):
        codes.redeem(issued[0])


def test_codes_are_unguessable_and_distinct() -> None:
    codes = Handoffs()
    issued = {codes.issue("u_ana", "tok") for _ in range(3)}
    assert len(issued) == 3
    assert all(len(c) >= 20 for c in issued)


def test_the_http_endpoints_issue_and_take_codes(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", box_name="deck"))
    token, user_id = hello_token(app, "Ana")
    client = app.test_client()
    assert client.post("/api/handoff").status_code == 401
    assert client.post("/api/handoff", headers={"Authorization": "Bearer nope"}).status_code == 401
    refused = client.post("/api/handoff", headers={"Authorization": f"Bearer {token}",
                                                   "Origin": "http://evil.example"})
    assert refused.status_code == 403
    issued = client.post("/api/handoff", headers={"Authorization": f"Bearer {token}"})
    assert issued.status_code == 200
    body = issued.get_json()
    assert body["expires_in"] == handoff.LIFETIME_S
    assert token not in issued.get_data(as_text=True)

    taken = client.post("/api/handoff/redeem", json={"code": body["code"]})
    assert taken.status_code == 200
    assert taken.get_json()["token"] == token
    assert taken.get_json()["user"]["id"] == user_id
    assert taken.headers["Cache-Control"] == "no-store"
    again = client.post("/api/handoff/redeem", json={"code": body["code"]})
    assert again.status_code == 410
    assert again.get_json()["code"] == "used"
    for bad in ({}, {"code": 5}, {"code": "x" * 500}, {"code": "spaces are bad"}):
        answer = client.post("/api/handoff/redeem", json=bad)
        assert answer.status_code == 400, bad
        assert "code" in answer.get_json()["error"]
    assert client.post("/api/handoff/redeem", data="x" * 5000,
                       content_type="application/json").status_code == 413


def test_a_removed_person_cannot_be_carried_over(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", box_name="deck"))
    token, user_id = hello_token(app, "Ana")
    client = app.test_client()
    code = client.post("/api/handoff", headers={"Authorization": f"Bearer {token}"}).get_json()["code"]
    box_of(app).hub.remove_user(user_id)
    answer = client.post("/api/handoff/redeem", json={"code": code})
    assert answer.status_code == 410
    assert answer.get_json()["code"] == "removed"


def test_the_protocol_document_states_the_codes_limits() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    section = doc.split("### Moving to the secure address", 1)[1].split("\n## ", 1)[0]
    assert f"**{handoff.LIFETIME_S} seconds**" in section
    assert f"at most {handoff.PER_USER} unused" in section
    assert f"the box at most {handoff.MAX_CODES}" in section
    assert f'"expires_in": {handoff.LIFETIME_S}' in section


def test_only_the_plain_app_page_may_ask_the_secure_address_and_only_that(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", box_name="deck", http_port=80,
                              https_port=443))
    client = app.test_client()

    def policy(path: str, host: str = "10.42.0.1", scheme: str = "http") -> str:
        response = client.get(path, base_url=f"{scheme}://{host}")
        return str(response.headers.get("Content-Security-Policy", ""))

    assert "connect-src 'self' https://10.42.0.1 ws: wss:;" in policy("/")
    assert "https://10.42.0.1" not in policy("/api/info")
    assert "connect-src 'self' ws: wss:;" in policy("/", scheme="https")
    # A made-up Host header cannot write into the policy.
    assert "evil" not in policy("/", host="x;script-src evil")
