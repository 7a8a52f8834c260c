"""The admin back end mirrors the admin UI: one module per screen, every route in one table."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask

from appliance import admin

ROOT = Path(__file__).resolve().parents[2]
SHARED = {"__init__", "access", "auth", "logbuffer", "signin"}


def screens() -> set[str]:
    page = (ROOT / "webclient" / "admin" / "index.html").read_text()
    return set(re.findall(r'data-screen="([a-z]+)"', page))


def test_each_screen_of_the_admin_page_has_its_module() -> None:
    modules = {p.stem for p in (ROOT / "appliance" / "admin").glob("*.py")}
    assert screens() and screens() <= modules
    assert modules - screens() == SHARED
    for screen in screens():
        assert (ROOT / "webclient" / "admin" / f"{screen}.js").exists(), screen


def test_every_admin_route_is_in_the_table_and_served_by_its_screen(app: Flask) -> None:
    served = {(rule.rule, method) for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("admin.")
              for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    assert served == {(url, method) for method, url, _view in admin.ROUTES}
    for _method, _url, view in admin.ROUTES:
        module = view.__module__.rsplit(".", 1)[1]
        assert module in screens() | {"signin"}, view.__qualname__


def test_readme_names_every_module_of_the_service() -> None:
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "appliance").glob("*.py")):
        assert f"`{path.name}`" in readme, path.name
    for path in sorted((ROOT / "appliance" / "admin").glob("*.py")):
        if path.stem != "__init__":
            assert f"`{path.stem}`" in readme or f"`{path.name}`" in readme, path.name
