"""The privileged side of the admin page and the status button: carry out request files.

The service runs unprivileged and drops `<data_dir>/requests/<time>-<action>.json`
(`write_request`); on the box a root systemd path unit runs
`python -m provisioning.requests` whenever that folder is not empty.

Nothing in a request is trusted: each file must be a small regular file (not a
link) owned by root or the service's user, holding a JSON object with a known
action. Every file is removed before anything is done, so a request that reboots
the box is not carried out again at the next boot. Several requests at once are
done in a fixed order: apply the config, show the admin password, then at most
one power action (factory reset beats shutdown beats reboot).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from provisioning.config import Service, restarted_by
from provisioning.credentials import write_admin_password_note
from provisioning.datadir import ADMIN_PASSWORD_NOTE, DEFAULT_BOOT_CONFIG, DataDir, write_file

MAX_REQUEST_BYTES = 16 * 1024
APPLY, SHOW_PASSWORD, SET_CLOCK = "apply", "show-admin-password", "set-clock"
REBOOT, SHUTDOWN, FACTORY_RESET = "reboot", "shutdown", "factory-reset"
# Power actions, strongest first: only one of them is carried out.
POWER_ACTIONS = (FACTORY_RESET, SHUTDOWN, REBOOT)
ACTIONS = frozenset({APPLY, SHOW_PASSWORD, SET_CLOCK, *POWER_ACTIONS})
# A clock the admin's browser may set (seconds since 1970): after this software
# was written (2026-01-01), before 2100. The admin page checks the same bounds.
EARLIEST_CLOCK, LATEST_CLOCK = 1_767_225_600, 4_102_444_800
# Config keys the service itself reads at start; changing one restarts it.
SERVICE_KEYS = restarted_by(Service.CHAT)
# The admin page may also leave `apply-request.json` with no action inside.
ACTION_BY_FILE_NAME = {"apply-request": APPLY}


class RequestError(ValueError):
    """A request file that is refused, with the reason in words."""


def clock_problem(when: float) -> str | None:
    """Why a clock reading (seconds since 1970) from the admin's browser cannot be
    right, in words; None when the box takes it."""
    if EARLIEST_CLOCK <= when < LATEST_CLOCK:
        return None
    try:
        shown = f"{dt.datetime.fromtimestamp(when, dt.UTC):%Y-%m-%d %H:%M} UTC"
    except (OverflowError, ValueError, OSError):
        shown = "That time"
    earliest = dt.datetime.fromtimestamp(EARLIEST_CLOCK, dt.UTC)
    latest = dt.datetime.fromtimestamp(LATEST_CLOCK, dt.UTC)
    return (f"{shown} cannot be right (the box takes a time from {earliest:%Y-%m-%d} until "
            f"{latest:%Y-%m-%d}); check this device's clock first.")


def write_request(data_dir: Path, action: str, payload: dict[str, Any] | None = None) -> Path:
    """The service's side: ask the privileged step to do `action` (one of ACTIONS).

    The service runs unprivileged; it only drops a request file into
    `<data_dir>/requests/`, which `take_requests` reads as root and `carry_out` does.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    path = DataDir(data_dir).requests / f"{time.time_ns()}-{action}.json"
    write_file(path, json.dumps({"action": action, **(payload or {})}).encode(), mode=0o600)
    return path


@dataclass(frozen=True)
class Request:
    action: str
    payload: dict[str, Any]
    source: str  # the file name, for messages


def parse_request(name: str, data: bytes) -> Request:
    """Validate one request file's contents; raises RequestError."""
    if len(data) > MAX_REQUEST_BYTES:
        raise RequestError(f"{name}: larger than {MAX_REQUEST_BYTES} bytes")
    try:
        payload = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"{name}: not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise RequestError(f"{name}: a request must be a JSON object")
    action = payload.pop("action", None) or ACTION_BY_FILE_NAME.get(Path(name).stem)
    if action not in ACTIONS:
        raise RequestError(f"{name}: unknown action {action!r}")
    if action == SHOW_PASSWORD:
        password = payload.get("password")
        if not isinstance(password, str) or not password.isprintable() or not password \
                or len(password) > 128:
            raise RequestError(f"{name}: show-admin-password needs a printable password")
    if action == SET_CLOCK:
        when = payload.get("time")
        if isinstance(when, bool) or not isinstance(when, int | float):
            raise RequestError(f"{name}: set-clock needs a plausible 'time' (seconds since 1970)")
        problem = clock_problem(when)
        if problem:
            raise RequestError(f"{name}: set-clock needs a plausible 'time': {problem}")
    return Request(action, payload, name)


def plan(requests: Sequence[Request]) -> list[Request]:
    """The order to carry requests out in; duplicates and weaker power actions dropped."""
    chosen: list[Request] = []
    clocks = [r for r in requests if r.action == SET_CLOCK]
    if clocks:
        chosen.append(clocks[-1])  # the newest reading of the admin's clock
    if any(r.action == APPLY for r in requests):
        chosen.append(next(r for r in requests if r.action == APPLY))
    shows = [r for r in requests if r.action == SHOW_PASSWORD]
    if shows:
        chosen.append(shows[-1])  # the newest password is the one in force
    for action in POWER_ACTIONS:
        power = [r for r in requests if r.action == action]
        if power:
            chosen.append(power[0])
            break
    return chosen


def take_requests(folder: Path, allowed_uids: set[int]) -> tuple[list[Request], list[str]]:
    """Read and remove every `*.json` in `folder`; the valid requests (by name) and problems."""
    requests: list[Request] = []
    problems: list[str] = []
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return [], []
    for name in names:
        path = folder / name
        if not name.endswith(".json"):
            if name.endswith(".tmp"):
                continue  # the service is still writing it; it is renamed when done
            problems.append(f"{name}: not a request file, removed")
            _remove(path)
            continue
        try:
            data = _read_own_file(path, allowed_uids)
            requests.append(parse_request(name, data))
        except RequestError as exc:
            problems.append(str(exc))
        finally:
            _remove(path)
    return requests, problems


def _read_own_file(path: Path, allowed_uids: set[int]) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise RequestError(f"{path.name}: cannot be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RequestError(f"{path.name}: not a regular file")
        if info.st_uid not in allowed_uids:
            raise RequestError(f"{path.name}: owned by user {info.st_uid}, not the service")
        return handle.read(MAX_REQUEST_BYTES + 1)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


class Machine(Protocol):
    """What carrying out requests does to the box; tests record it."""

    def apply(self) -> int: ...
    def set_clock(self, when: float) -> None: ...
    def show_admin_password(self, password: str) -> None: ...
    def reboot(self) -> None: ...
    def shutdown(self) -> None: ...
    def factory_reset(self) -> None: ...


@dataclass
class HostMachine:
    """The real box: systemd, the consoles, the data and boot partitions."""

    data_dir: Path
    config: Path = DEFAULT_BOOT_CONFIG
    consoles: tuple[str, ...] = ("/dev/console", "/dev/ttyS0", "/dev/ttyS1", "/dev/ttyAMA0")

    def apply(self) -> int:
        """Apply the config; restart the service when a setting it reads changed
        (phones reconnect by themselves and lose nothing)."""
        from provisioning.configstore import current_config

        before = current_config(self.data_dir)
        argv = [sys.executable, "-m", "provisioning", "apply",
                "--config", str(self.config), "--data-dir", str(self.data_dir)]
        code = subprocess.run(argv, check=False).returncode
        after = current_config(self.data_dir)
        if any(getattr(before, key) != getattr(after, key) for key in SERVICE_KEYS):
            subprocess.run(["systemctl", "try-restart", "ahoy.service"], check=False)
        return code

    def set_clock(self, when: float) -> None:
        """The Pi has no real-time clock: take the admin's, and keep it on /data."""
        time.clock_settime(time.CLOCK_REALTIME, when)
        # "force": the saved time may be later than the corrected one.
        env = dict(os.environ, **_shell_vars(Path("/etc/default/fake-hwclock")))
        subprocess.run(["fake-hwclock", "save", "force"], check=False, env=env)

    def show_admin_password(self, password: str) -> None:
        banner = "*" * 60
        text = f"\r\n{banner}\r\n*  Ahoy admin password: {password}\r\n{banner}\r\n"
        for console in self.consoles:
            try:
                fd = os.open(console, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                os.write(fd, text.encode())
            except OSError:
                pass
            finally:
                os.close(fd)
        try:
            write_admin_password_note(self.config.parent, password,
                                      "Made new when the status button was held.")
        except OSError as exc:
            note = self.config.parent / ADMIN_PASSWORD_NOTE
            print(f"cannot write {note}: {exc.strerror}", file=sys.stderr)

    def reboot(self) -> None:
        subprocess.run(["systemctl", "reboot"], check=False)

    def shutdown(self) -> None:
        subprocess.run(["systemctl", "poweroff"], check=False)

    def factory_reset(self) -> None:
        """Empty the data partition (messages, secrets, certificates), then reboot.

        ahoy.txt on the boot partition stays: it is the owner's file. The next boot
        is a first boot: new secrets, certificates and admin password.
        """
        subprocess.run(["systemctl", "stop", "ahoy.service", "dnsmasq.service",
                        "coturn.service"], check=False)
        for child in self.data_dir.iterdir():
            _remove(child)
        os.sync()
        self.reboot()


def _shell_vars(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a /etc/default file (where fake-hwclock keeps its time)."""
    found: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep and key.isidentifier() and not key.startswith("#"):
            found[key] = value.strip().strip("'\"")
    return found


def carry_out(
    requests: Sequence[Request], machine: Machine, say: Callable[[str], None] = print
) -> None:
    """Do the planned requests, saying each step before it (a reboot ends the process)."""
    for request in plan(requests):
        if request.action == SET_CLOCK:
            say("setting the clock from the admin's browser")
            machine.set_clock(float(request.payload["time"]))
        elif request.action == APPLY:
            say("applying the config")
            code = machine.apply()
            say(f"apply finished (exit {code})")
        elif request.action == SHOW_PASSWORD:
            say("showing the admin password on the console")
            machine.show_admin_password(request.payload["password"])
        elif request.action == FACTORY_RESET:
            say("factory reset: emptying the data partition, then rebooting")
            machine.factory_reset()
        elif request.action == SHUTDOWN:
            say("shutting down")
            machine.shutdown()
        elif request.action == REBOOT:
            say("rebooting")
            machine.reboot()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m provisioning.requests",
        description="Carry out the service's requests (root; run by ahoy-requests.path).",
    )
    parser.add_argument("--data-dir", type=Path, default=Path("/data/ahoy"))
    parser.add_argument("--config", type=Path, default=DEFAULT_BOOT_CONFIG)
    parser.add_argument("--user", default="ahoy", help="the service's user (default: ahoy)")
    args = parser.parse_args(argv)
    import pwd

    allowed = {0}
    try:
        allowed.add(pwd.getpwnam(args.user).pw_uid)
    except KeyError:
        pass
    requests, problems = take_requests(DataDir(args.data_dir).requests, allowed)
    for problem in problems:
        print(f"refused: {problem}", file=sys.stderr)
    carry_out(requests, HostMachine(args.data_dir, args.config),
              say=lambda line: print(line, flush=True))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
