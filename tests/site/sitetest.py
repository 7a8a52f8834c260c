"""Test helpers for sites: a box's real nats-server from its rendered config."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
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
