"""The root side of the service's requests: validate, remove, carry out in order."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from provisioning import requests as req
from provisioning.requests import RequestError, carry_out, parse_request, plan, take_requests

ME = {os.getuid()}


class RecordingMachine:
    def __init__(self) -> None:
        self.done: list[str] = []

    def apply(self) -> int:
        self.done.append("apply")
        return 0

    def set_clock(self, when: float) -> None:
        self.done.append(f"clock {when:.0f}")

    def show_admin_password(self, password: str) -> None:
        self.done.append(f"show {password}")

    def reboot(self) -> None:
        self.done.append("reboot")

    def shutdown(self) -> None:
        self.done.append("shutdown")

    def factory_reset(self) -> None:
        self.done.append("factory-reset")


def drop(folder: Path, name: str, payload: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(payload))
    return path


def test_valid_requests_are_returned_and_every_file_is_removed(tmp_path: Path) -> None:
    drop(tmp_path, "1-shutdown.json", {"action": "shutdown"})
    drop(tmp_path, "2-bogus.json", {"action": "rm -rf /"})
    (tmp_path / "notes.txt").write_text("hello")
    requests, problems = take_requests(tmp_path, ME)
    assert [r.action for r in requests] == ["shutdown"]
    assert any("unknown action" in p for p in problems)
    assert any("notes.txt" in p for p in problems)
    assert list(tmp_path.iterdir()) == []


def test_file_still_being_written_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "1-reboot.tmp").write_text('{"action": "reboot"}')
    assert take_requests(tmp_path, ME) == ([], [])
    assert (tmp_path / "1-reboot.tmp").exists()


def test_symlinked_request_is_refused(tmp_path: Path) -> None:
    target = drop(tmp_path / "elsewhere", "real.json", {"action": "reboot"})
    (tmp_path / "requests").mkdir()
    (tmp_path / "requests" / "1-reboot.json").symlink_to(target)
    requests, problems = take_requests(tmp_path / "requests", ME)
    assert requests == [] and "cannot be opened" in problems[0]
    assert target.exists()


def test_request_from_another_user_is_refused(tmp_path: Path) -> None:
    drop(tmp_path, "1-reboot.json", {"action": "reboot"})
    requests, problems = take_requests(tmp_path, {os.getuid() + 12345})
    assert requests == [] and "owned by user" in problems[0]


def test_missing_folder_means_nothing_to_do(tmp_path: Path) -> None:
    assert take_requests(tmp_path / "requests", ME) == ([], [])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"action": "format-disk"}', "unknown action"),
        (b'{"action": "show-admin-password"}', "printable password"),
        (b'{"action": "show-admin-password", "password": "a\\u001b[2Jb"}', "printable password"),
        (b'{"action": "reboot", "pad": "' + b"x" * 20000 + b'"}', "larger than"),
    ],
)
def test_bad_requests_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(RequestError, match=reason):
        parse_request("1-x.json", data)


def test_apply_request_file_from_the_admin_page_needs_no_action() -> None:
    assert parse_request("apply-request.json", b"{}").action == "apply"


def test_apply_first_then_password_then_only_the_strongest_power_action() -> None:
    requests = [
        parse_request("1.json", b'{"action": "reboot"}'),
        parse_request("2.json", b'{"action": "factory-reset"}'),
        parse_request("3.json", b'{"action": "show-admin-password", "password": "old"}'),
        parse_request("4.json", b'{"action": "shutdown"}'),
        parse_request("5.json", b'{"action": "apply"}'),
        parse_request("6.json", b'{"action": "show-admin-password", "password": "new"}'),
        parse_request("7.json", b'{"action": "apply"}'),
    ]
    machine = RecordingMachine()
    said: list[str] = []
    carry_out(requests, machine, say=said.append)
    assert machine.done == ["apply", "show new", "factory-reset"]
    assert len(plan(requests)) == 3
    assert "new" not in " ".join(said)  # the password goes to the console, not the journal


def test_factory_reset_empties_the_data_dir_and_reboots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []
    monkeypatch.setattr(req.subprocess, "run", lambda argv, check: commands.append(argv))
    data = tmp_path / "data"
    (data / "secrets").mkdir(parents=True)
    (data / "secrets" / "turn-secret").write_text("s")
    (data / "ahoy.db").write_text("messages")
    req.HostMachine(data, tmp_path / "ahoy.txt").factory_reset()
    assert list(data.iterdir()) == []
    assert commands[0][:2] == ["systemctl", "stop"] and commands[-1] == ["systemctl", "reboot"]


def test_admin_password_note_goes_next_to_the_config(tmp_path: Path) -> None:
    machine = req.HostMachine(tmp_path / "data", tmp_path / "ahoy.txt", consoles=())
    machine.show_admin_password("correct-horse")
    assert "correct-horse" in (tmp_path / "ahoy-admin-password.txt").read_text()


def test_clock_from_the_admin_browser_is_set_first_and_must_be_plausible() -> None:
    requests = [
        parse_request("1.json", b'{"action": "apply"}'),
        parse_request("2.json", b'{"action": "set-clock", "time": 1800000000}'),
        parse_request("3.json", b'{"action": "set-clock", "time": 1800000060.5}'),
    ]
    machine = RecordingMachine()
    carry_out(requests, machine, say=lambda line: None)
    assert machine.done == ["clock 1800000060", "apply"]
    for bad in (b'{"action": "set-clock"}', b'{"action": "set-clock", "time": 0}',
                b'{"action": "set-clock", "time": "now"}',
                b'{"action": "set-clock", "time": true}',
                b'{"action": "set-clock", "time": 9999999999}'):
        with pytest.raises(RequestError, match="plausible"):
            parse_request("x.json", bad)


def test_the_service_writes_requests_the_root_side_reads(tmp_path: Path) -> None:
    req.write_request(tmp_path, req.SET_CLOCK, {"time": req.EARLIEST_CLOCK + 60})
    path = req.write_request(tmp_path, req.REBOOT)
    assert path.parent == tmp_path / "requests" and path.stat().st_mode & 0o777 == 0o600
    requests, problems = take_requests(tmp_path / "requests", ME)
    assert problems == []
    assert [(r.action, r.payload) for r in requests] == [
        (req.SET_CLOCK, {"time": req.EARLIEST_CLOCK + 60}), (req.REBOOT, {})]


def test_the_service_cannot_write_an_unknown_action(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown action"):
        req.write_request(tmp_path, "format-disk")
    assert not (tmp_path / "requests").exists()
