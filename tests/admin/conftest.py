"""Admin page fixtures: an Ahoy app with a known admin password, and a signed-in client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from admintest import PASSWORD, Admin, FakeClock
from flask import Flask

from appliance.admin import admin_state
from appliance.app import create_app
from appliance.settings import Settings
from provisioning.credentials import set_admin_password


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Flask]:
    def make(dev: bool = True, password: str | None = PASSWORD, **settings: Any) -> Flask:
        data_dir = tmp_path / ("data-dev" if dev else "data-box")
        if password:
            set_admin_password(data_dir, password)
        app = create_app(Settings(data_dir=data_dir, dev=dev, **settings))
        admin_state(app).clock = FakeClock()
        return app

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def clock(app: Flask) -> FakeClock:
    fake = admin_state(app).clock
    assert isinstance(fake, FakeClock)
    return fake


@pytest.fixture
def admin(app: Flask) -> Iterator[Admin]:
    a = Admin(app)
    assert a.login().status_code == 200
    yield a


@pytest.fixture
def box_admin(make_app: Callable[..., Flask]) -> tuple[Flask, Admin]:
    """Signed in on a box that is not in development mode."""
    app = make_app(dev=False)
    admin = Admin(app)
    assert admin.login().status_code == 200
    return app, admin
