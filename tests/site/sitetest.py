"""Test helpers for sites: a box's real nats-server from its rendered config."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ahoytest import free_port

from provisioning import credentials, site
from provisioning.config import BoxConfig

SECRET = "tern gravel copper lantern"


@dataclass
class NatsBox:
    """One box's data dir with its site files, and its nats-server on a loopback port."""

    data_dir: Path
    site_name: str = "mv-hope"
    secret: str = SECRET
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        credentials.set_site_secret(self.data_dir, self.secret)
        self.paths, _ = site.ensure_site_files(self.config, self.data_dir, self.secret,
                                               listen="127.0.0.1", port=self.port)

    @property
    def config(self) -> BoxConfig:
        return BoxConfig(site_name=self.site_name)

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"nats-{self.port}.log"

    def start(self) -> NatsBox:
        self.process = subprocess.Popen(
            ["nats-server", "-c", str(self.paths.nats_config)],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not listen within 20 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.paths.ca))
        context.check_hostname = False
        context.load_cert_chain(str(self.paths.cert), str(self.paths.key))
        return context

    def connect_to(self, other: NatsBox) -> Any:
        """A nats-py connection from this box to `other`'s server (run in an event loop)."""
        import nats

        async def noop(*_: Any) -> None:
            return None

        return nats.connect(other.url, tls=self.tls(), user=site.NATS_USER,
                            password=site.nats_password(self.secret, self.site_name),
                            allow_reconnect=False, connect_timeout=3, error_cb=noop)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@dataclass
class SiteBox:
    """One box of a test site: its own nats-server and its own Ahoy service (gevent)."""

    nats: NatsBox
    peers: list[NatsBox] = field(default_factory=list)
    ahoy: Any = None
    default_room: str = ""  # the config's default_room ("": none, as in the other tests)

    def start(self) -> SiteBox:
        from ahoytest import AhoyServer

        if self.nats.process is None or self.nats.process.poll() is not None:
            self.nats.start()
        args: list[str] = ["--site-name", self.nats.site_name, "--site-port", str(self.nats.port)]
        for peer in self.peers:
            args += ["--site-peer", f"127.0.0.1:{peer.port}"]
        if self.ahoy is None:
            self.ahoy = AhoyServer(self.nats.data_dir, production=True, extra_args=tuple(args),
                                   default_room=self.default_room)
        self.ahoy.start()
        return self

    @property
    def box(self) -> str:
        return site.box_id(self.nats.data_dir)

    def client(self, name: str | None = None, watch: bool = False, **hello: Any) -> Any:
        """A phone on this box; with `watch`, told of everyone's changes
        (`people` with `watch: true`), not only its contacts'."""
        from ahoytest import WsClient

        c = WsClient(self.ahoy.ws_url)
        if name is not None or hello:
            reply = c.hello(name, **hello)
            assert reply["type"] == "welcome", reply
            if watch:
                assert c.request("people", "people", watch=True)["watch"] is True
        return c

    def status(self) -> dict[str, Any]:
        return dict(self.ahoy.health().get("site") or {})

    def stop(self) -> None:
        if self.ahoy is not None:
            self.ahoy.stop()
        self.nats.stop()


def make_site(root: Path, count: int, default_room: str = "", **kwargs: Any) -> list[SiteBox]:
    """`count` boxes, each told every other box's address."""
    servers = [NatsBox(root / f"box{i}" / "data", **kwargs) for i in range(count)]
    return [SiteBox(s, [o for o in servers if o is not s], default_room=default_room)
            for s in servers]


def mid() -> str:
    """A fresh client message id."""
    return uuid.uuid4().hex[:16]


def wait_for(condition: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll until `condition()` is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.05)


def positions(messages: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """What a phone has seen, by site-wide position: conv -> box -> highest n."""
    seen: dict[str, dict[str, int]] = {}
    for m in messages:
        box, n = m["at"].split(":")
        conv = seen.setdefault(m["conv"], {})
        conv[box] = max(conv.get(box, 0), int(n))
    return seen


def received(client: Any, quiet: float = 0.5) -> list[dict[str, Any]]:
    """Every chat message the client got (live or in a history) until it is quiet."""
    out = []
    for m in client.drain(quiet):
        if m.get("type") == "message":
            out.append(m)
        elif m.get("type") == "history":
            out += m["messages"]
    return out


def whole_conversation(client: Any, conv: str) -> list[dict[str, Any]]:
    """The conversation as this client's box has it, oldest seq first."""
    messages: list[dict[str, Any]] = []
    after = 0
    while True:
        reply = client.request("sync", "history", conv=conv, after=after, limit=500)
        assert reply["type"] == "history", reply
        messages += reply["messages"]
        if not reply["more"]:
            return messages
        after = reply["messages"][-1]["seq"]


def online_at(box: SiteBox, user_id: str) -> bool:
    """Whether a phone that joins `box` now sees `user_id` online."""
    import uuid

    from ahoytest import WsClient

    probe = WsClient(box.ahoy.ws_url)
    try:
        probe.hello(f"probe-{uuid.uuid4().hex[:6]}")
        # Everyone online, people on the other boxes too (docs/protocol.md, "People online").
        people = probe.request("people", "people")
        return any(u["id"] == user_id and u.get("status") != "offline" for u in people["users"])
    finally:
        probe.close()


def status_at(box: SiteBox, user_id: str) -> str:
    """How a phone that joins `box` now sees `user_id`: online, busy or offline."""
    import uuid

    from ahoytest import WsClient

    probe = WsClient(box.ahoy.ws_url)
    try:
        probe.hello(f"probe-{uuid.uuid4().hex[:6]}")
        people = probe.request("people", "people")
        return next((str(u.get("status", "online")) for u in people["users"]
                     if u["id"] == user_id),
                    "offline")
    finally:
        probe.close()


def probe_rooms(box: SiteBox) -> list[dict[str, Any]]:
    """The rooms a phone that joins `box` now is told about, each whole (a
    room it is not in comes without its members: it asks `room_get`)."""
    import uuid

    from ahoytest import WsClient

    probe = WsClient(box.ahoy.ws_url)
    try:
        whole = []
        for r in probe.hello(f"probe-{uuid.uuid4().hex[:6]}")["rooms"]:
            if "members" not in r:
                reply = probe.request("room_get", "room", room=r["id"])
                if reply.get("code") == "unknown_room":
                    continue  # deleted since the welcome (a merge going on): not there now
                r = reply["room"]
            whole.append(r)
        return whole
    finally:
        probe.close()


ADMIN_PASSWORD = "sea-shanty-42"


def admin_dashboard(box: SiteBox) -> dict[str, Any]:
    """The admin page's dashboard JSON, signed in with the password set by `admin_ready`."""
    import http.client
    import json

    port = box.ahoy.http_port
    headers = {"Origin": f"http://127.0.0.1:{port}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/admin/api/login",
                     body=json.dumps({"password": ADMIN_PASSWORD}).encode(), headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
        conn.request("GET", "/admin/api/dashboard", headers={**headers, "Cookie": cookie})
        response = conn.getresponse()
        body: dict[str, Any] = json.loads(response.read())
        assert response.status == 200, body
        return body
    finally:
        conn.close()


def admin_ready(box: NatsBox) -> None:
    from provisioning.credentials import set_admin_password

    set_admin_password(box.data_dir, ADMIN_PASSWORD)


class AdminSession:
    """The admin page of one box, signed in (password from `admin_ready`), over real HTTP."""

    def __init__(self, box: SiteBox) -> None:
        import json

        self.port = box.ahoy.http_port
        self.origin = f"http://127.0.0.1:{self.port}"
        status, body, cookie = self._call("POST", "/admin/api/login",
                                          {"password": ADMIN_PASSWORD}, {})
        assert status == 200, body
        self.headers = {"Cookie": cookie, "X-CSRF-Token": body["csrf_token"]}
        self._json = json

    def _call(self, method: str, path: str, body: Any,
              headers: dict[str, str]) -> tuple[int, dict[str, Any], str]:
        import http.client
        import json

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=json.dumps(body).encode() if body is not None
                         else None, headers={"Origin": self.origin,
                                             "Content-Type": "application/json", **headers})
            response = conn.getresponse()
            data = json.loads(response.read() or b"{}")
            cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
            return response.status, data, cookie
        finally:
            conn.close()

    def call(self, method: str, path: str, body: Any = None,
             csrf: bool = True) -> tuple[int, dict[str, Any]]:
        headers = dict(self.headers)
        if not csrf:
            del headers["X-CSRF-Token"]
        status, data, _ = self._call(method, path, body, headers)
        return status, data

    def replication(self) -> dict[str, Any]:
        status, data = self.call("GET", "/admin/api/dashboard")
        assert status == 200, data
        return dict(data["site_replication"])
