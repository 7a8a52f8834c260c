"""Admin page test helpers: a known admin password, a hand-moved clock, a browser stand-in."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

PASSWORD = "correct-horse-battery"
ORIGIN = "http://localhost"


class FakeClock:
    """The admin page's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Admin:
    """A browser on the admin page: the session cookie lives in `client`, the CSRF token here."""

    def __init__(self, app: Flask, address: str = "192.168.7.20", base_url: str = ORIGIN) -> None:
        self.client: FlaskClient = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = address
        self.base_url = base_url
        self.csrf: str | None = None

    def login(self, password: str = PASSWORD, origin: str | None = None) -> Any:
        response = self.client.post("/admin/api/login", json={"password": password},
                                    headers={"Origin": origin or self.base_url},
                                    base_url=self.base_url)
        if response.status_code == 200:
            self.csrf = response.json["csrf_token"]
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, base_url=self.base_url, **kwargs)

    def send(self, method: str, path: str, *, origin: str | None = "", csrf: str | None = "",
             **kwargs: Any) -> Any:
        """A change, with the page's Origin and CSRF token unless told otherwise (None: leave out)."""
        headers = dict(kwargs.pop("headers", {}))
        if origin is not None:
            headers["Origin"] = origin or self.base_url
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf or self.csrf or ""
        return self.client.open(path, method=method, headers=headers, base_url=self.base_url,
                                **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.send("POST", path, json=json if json is not None else {}, **kwargs)


def requests_made(app: Flask) -> list[dict[str, object]]:
    """The requests the service left for the privileged apply step, oldest first."""
    from appliance.box import box_of

    folder = box_of(app).settings.data_dir / "requests"
    if not folder.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
