"""The web app over the air, in a real browser on the box's own server: gzip where the
browser takes it, the same app where it does not, and a returning phone revalidates."""

from __future__ import annotations

import gzip
import re
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ahoytest import AhoyServer
from browserkit import PHONE, wait_js

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AhoyServer]:
    server = AhoyServer(tmp_path_factory.mktemp("air") / "data", production=True).start()
    yield server
    server.stop()


class Watched:
    """A browser tab whose network traffic is written down: status as it came over the
    network (a revalidated file is 304 there) and Content-Encoding, by path."""

    def __init__(self, context: Any, url: str) -> None:
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self._paths: dict[str, str] = {}
        # Chrome may tell a response's raw headers before it tells the request
        # they answer (the DevTools protocol leaves their order open), so both
        # are kept by request id and matched when asked.
        self._raw: dict[str, tuple[int, str]] = {}
        self.versions: set[str] = set()
        cdp = context.new_cdp_session(self.page)
        cdp.send("Network.enable")
        cdp.on("Network.requestWillBeSent", self._on_sent)
        cdp.on("Network.responseReceivedExtraInfo", self._on_raw)
        self.page.goto(url)

    def _on_sent(self, ev: dict[str, Any]) -> None:
        # Files under the app's version (/v/<version>/app.js) by their own name.
        path = urllib.parse.urlparse(ev["request"]["url"]).path
        self._paths[ev["requestId"]] = re.sub(r"^/v/[0-9a-f]+/", "/", path)
        if path.startswith("/v/"):
            self.versions.add(path.split("/")[2])

    def _on_raw(self, ev: dict[str, Any]) -> None:
        headers = {k.lower(): v for k, v in ev.get("headers", {}).items()}
        self._raw[ev["requestId"]] = (int(ev["statusCode"]),
                                      headers.get("content-encoding", ""))

    def _by_path(self, field: int) -> dict[str, Any]:
        return {self._paths[rid]: raw[field] for rid, raw in list(self._raw.items())
                if rid in self._paths}

    @property
    def status(self) -> dict[str, int]:
        return self._by_path(0)

    @property
    def encoding(self) -> dict[str, str]:
        return self._by_path(1)

    def join(self, name: str) -> None:
        self.page.get_by_test_id("name-input").fill(name)
        self.page.get_by_test_id("join-button").click()
        self.wait_home()

    def wait_home(self) -> None:
        self.page.get_by_test_id("home-screen").wait_for(state="visible")
        wait_js(self.page, "window.ahoy.state.conn === 'online'")
        self.page.wait_for_load_state("networkidle")


def test_a_phone_gets_the_app_gzipped_and_a_returning_phone_revalidates(browser: Any,
                                                                        box: AhoyServer) -> None:
    context = browser.new_context(viewport=PHONE, service_workers="block")
    try:
        first = Watched(context, box.http_url + "/")
        first.join("Ana")
        for path in ("/", "/app.js", "/style.css", "/chat.js", "/icons/icon.svg"):
            assert first.status[path] == 200, path
            assert first.encoding[path] == "gzip", path
        (version,) = first.versions  # every script and style sheet of one version
        # What the browser decoded is the file itself.
        script = first.page.evaluate(f"fetch('/v/{version}/app.js').then(r => r.text())")
        assert script == (REPO / "webclient" / "app" / "app.js").read_text()
        first.page.close()
        again = Watched(context, box.http_url + "/")
        again.wait_home()
        assert again.status["/"] == 304  # the page itself: revalidated, not sent again
        # The other files came from the browser's cache without a request.
        assert "/app.js" not in again.status and "/style.css" not in again.status
        assert first.errors == [] and again.errors == []
    finally:
        context.close()


def test_a_browser_that_does_not_take_gzip_gets_the_same_app(browser: Any,
                                                             box: AhoyServer) -> None:
    context = browser.new_context(viewport=PHONE, service_workers="block",
                                  extra_http_headers={"Accept-Encoding": "identity"})
    try:
        plain = Watched(context, box.http_url + "/")
        plain.join("Ben")
        for path in ("/", "/app.js", "/style.css", "/chat.js"):
            assert plain.status[path] == 200, path
            assert plain.encoding[path] == "", path
        assert plain.errors == []
    finally:
        context.close()


def test_the_production_server_sends_the_kept_copy_byte_for_byte(box: AhoyServer) -> None:
    request = urllib.request.Request(box.http_url + "/style.css",
                                     headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers["Vary"]
        packed = response.read()
    original = (REPO / "webclient" / "app" / "style.css").read_bytes()
    assert gzip.decompress(packed) == original
    kept = list((box.data_dir / "webcache" / "app").glob("*.gz"))
    assert packed in [p.read_bytes() for p in kept]


def test_after_an_update_a_returning_phone_runs_the_new_scripts_at_once(
        browser: Any, tmp_path: Path) -> None:
    """Scripts are kept for a year under the app's version, and the page (always
    revalidated) names the version: a phone that comes back after the box's app
    changed runs the new scripts on its next load, with no old script left, its
    service worker included."""
    webclient = tmp_path / "webclient"
    shutil.copytree(REPO / "webclient", webclient)
    server = AhoyServer(tmp_path / "data", production=True,
                        extra_args=("--webclient-dir", str(webclient))).start()
    context = browser.new_context(viewport=PHONE)
    version = ("document.querySelector('script[type=module]').src"
               ".match(/\\/v\\/([0-9a-f]+)\\/app\\.js$/)[1]")
    only_cache = "caches.keys().then((k) => k.length === 1 && k[0] === 'ahoy-shell-' + {})"
    try:
        first = Watched(context, server.http_url + "/")
        first.join("Ana")
        old = first.page.evaluate(version)
        # The service worker (loopback is a secure context) takes the page and
        # keeps this version's files in its cache.
        wait_js(first.page, "navigator.serviceWorker.controller !== null", timeout=60)
        wait_js(first.page, only_cache.format(f"'{old}'"), timeout=60)
        again = Watched(context, server.http_url + "/")
        again.wait_home()
        assert again.page.evaluate(version) == old
        assert again.page.evaluate("window.ahoyBuild") is None
        first.page.close()
        again.page.close()
        # The box's app changes (an update): one script now marks the page.
        net = webclient / "app" / "net.js"
        net.write_text(net.read_text() + "\nwindow.ahoyBuild = 'new';\n")
        after = Watched(context, server.http_url + "/")
        after.wait_home()
        assert after.page.evaluate("window.ahoyBuild") == "new"
        new = after.page.evaluate(version)
        assert new != old
        # The worker of the new version replaces the old one and its cache.
        wait_js(after.page, only_cache.format(f"'{new}'"), timeout=60)
        assert first.errors == [] and again.errors == [] and after.errors == []
    finally:
        context.close()
        server.stop()
