"""Test helpers: the real Ahoy service on loopback, and a WebSocket test client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

REPO = Path(__file__).resolve().parent.parent
# How long a test client waits for an answer the box owes it: only reached when
# something is wrong, so generous for a loaded 2-core machine.
WAIT_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AhoyServer:
    """One `python -m appliance serve --dev` process on free loopback ports.

    With `production`, the box's own server (gevent) on 127.0.0.1, without
    mDNS and with mock GPIO (`pin_factory`); `program` replaces `-m appliance` (a wrapper that
    takes the same arguments); `file_limit` sets its (soft, hard) open-files limit.
    """

    data_dir: Path
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    production: bool = False
    program: tuple[str, ...] = ("-m", "appliance")
    env: dict[str, str] = field(default_factory=dict)
    file_limit: tuple[int, int] | None = None
    pin_factory: str = "mock"  # gpiozero's, in production (the image sets lgpio)
    # No room everyone joins (config `default_room`), so that each test sees only
    # the rooms it makes; tests of first use set one.
    default_room: str = ""

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/ws"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"server-{self.http_port}.log"

    def start(self) -> AhoyServer:
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        mode = ["--dev"]
        if self.production:
            env["GPIOZERO_PIN_FACTORY"] = self.pin_factory
            mode = ["--host", "127.0.0.1", "--no-mdns",
                    "--config", str(self.data_dir.parent / "no-ahoy.txt")]
        self.process = subprocess.Popen(
            [sys.executable, *self.program, "serve", *mode,
             "--data-dir", str(self.data_dir), "--port", str(self.http_port),
             "--https-port", str(self.https_port), "--default-room", self.default_room,
             *self.extra_args],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env,
            preexec_fn=self._limit_files if self.file_limit else None,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.http_url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not answer /healthz within 20 s")

    def _limit_files(self) -> None:
        import resource

        assert self.file_limit is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, self.file_limit)

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.http_url + "/healthz", timeout=5) as r:
            data: dict[str, Any] = json.load(r)
            return data

    def kill(self) -> None:
        """Pull the plug: SIGKILL, no chance to clean up."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class WsClient:
    """A blocking WebSocket client that speaks the Ahoy protocol, for tests."""

    def __init__(self, url: str, origin: str | None = None, source: str | None = None,
                 compression: str | None = "deflate") -> None:
        """`source`: the local address to connect from (127.0.0.2 … are loopback too);
        `compression`: offer permessage-deflate (as browsers do) or not (None)."""
        headers = {"Origin": origin} if origin else None
        extra: dict[str, Any] = {"source_address": (source, 0)} if source else {}
        self.conn: ClientConnection = connect(url, additional_headers=headers,
                                              max_size=2**22, open_timeout=10,
                                              close_timeout=1, compression=compression,
                                              **extra)
        self.inbox: list[dict[str, Any]] = []
        self.user_id: str | None = None
        self.token: str | None = None
        self.seen: dict[str, int] = {}

    def send(self, type_: str, **fields: Any) -> None:
        self.conn.send(json.dumps({"type": type_, **fields}))

    def send_raw(self, data: str | bytes) -> None:
        self.conn.send(data)

    def _receive(self, timeout: float) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.conn.recv(timeout=timeout))
        if message.get("type") == "message":
            self.seen[message["conv"]] = max(self.seen.get(message["conv"], 0), message["seq"])
        if message.get("type") == "history":
            for m in message["messages"]:
                self.seen[m["conv"]] = max(self.seen.get(m["conv"], 0), m["seq"])
        return message

    def expect(self, type_: str, timeout: float = WAIT_S, **match: Any) -> dict[str, Any]:
        """The next message of `type_` (and matching fields); others are kept in the inbox."""
        for i, m in enumerate(self.inbox):
            if m.get("type") == type_ and all(m.get(k) == v for k, v in match.items()):
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {type_} {match or ''} within {timeout}s; got {self.inbox}")
            try:
                m = self._receive(left)
            except TimeoutError:
                continue
            if m.get("type") == type_ and all(m.get(k) == v for k, v in match.items()):
                return m
            self.inbox.append(m)

    def expect_user(self, user_id: str, timeout: float = WAIT_S, **match: Any) -> dict[str, Any]:
        """The next entry for `user_id` (with matching fields) in a `changes` frame."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.expect("changes", max(0.01, deadline - time.monotonic()))
            for user in frame["users"]:
                user = {"status": "online", **user}  # left out: online (docs/protocol.md)
                if user["id"] == user_id and all(user.get(k) == v for k, v in match.items()):
                    return user

    def drain(self, quiet: float = 0.2) -> list[dict[str, Any]]:
        """Everything that arrives until the connection is quiet for `quiet` seconds."""
        while True:
            try:
                self.inbox.append(self._receive(quiet))
            except TimeoutError:
                break
        out, self.inbox = self.inbox, []
        return out

    def request(self, type_: str, reply: str, **fields: Any) -> dict[str, Any]:
        """Send a request with a fresh ref and wait for its reply (or its error)."""
        ref = uuid.uuid4().hex[:12]
        self.send(type_, ref=ref, **fields)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for i, m in enumerate(self.inbox):
                if m.get("ref") == ref:
                    return self.inbox.pop(i)
            try:
                m = self._receive(deadline - time.monotonic())
            except TimeoutError:
                break
            if m.get("ref") == ref:
                return m
            self.inbox.append(m)
        raise AssertionError(f"no reply to {type_}; inbox {self.inbox}")

    def hello(self, name: str | None = None, token: str | None = None,
              since: dict[str, int] | None = None) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if name is not None:
            fields["name"] = name
        if token is not None:
            fields["token"] = token
        if since is not None:
            fields["since"] = since
        reply = self.request("hello", "welcome", **fields)
        if reply["type"] == "welcome":
            self.user_id = reply["you"]["id"]
            self.token = reply["token"]
        return reply

    def close(self) -> None:
        try:
            self.conn.close()
        except ConnectionClosed:
            pass

    def cut(self) -> None:
        """Drop the TCP connection without a close frame, like a phone leaving Wi-Fi."""
        self.conn.socket.shutdown(socket.SHUT_RDWR)
        self.conn.socket.close()


def unique(name: str) -> str:
    """A display name that no other test in the shared server uses."""
    return f"{name}-{uuid.uuid4().hex[:6]}"
