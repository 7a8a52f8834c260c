"""The admin overview of a box beside an existing network (`uplink = on`), in headless
Chromium: the hotspot's Wi-Fi card and the network's addresses, both on the page.

Never run `playwright install`: it downloads browsers. We use Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admintest import PASSWORD
from ahoytest import free_port

from appliance.app import create_app
from appliance.box import box_of
from appliance.settings import Settings
from provisioning.credentials import set_admin_password

pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("AHOY_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def beside_the_hotspot(tmp_path: Path) -> Iterator[str]:
    """The service of a box with its hotspot and an uplink on eth0, on a loopback port."""
    from werkzeug.serving import make_server

    data_dir = tmp_path / "data"
    set_admin_password(data_dir, PASSWORD)
    port = free_port()
    app = create_app(Settings(data_dir=data_dir, dev=True, host="127.0.0.1", http_port=port,
                              box_name="deckbox", wifi_ssid="Deck", wifi_passphrase="",
                              uplink_interface="eth0", uplink_address="192.168.77.120"))
    box_of(app).status["uplink"] = {"interface": "eth0", "up": True,
                                    "addresses": ["192.168.77.120"]}
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(10)


def test_the_overview_shows_the_hotspots_wifi_and_the_networks_addresses(
    playwright: Any, beside_the_hotspot: str,
) -> None:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
    try:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(15_000)
        page.goto(beside_the_hotspot + "/admin")
        page.get_by_test_id("password-input").fill(PASSWORD)
        page.get_by_test_id("login-button").click()
        page.get_by_test_id("wifi-card").wait_for()
        lan = page.get_by_test_id("lan-card")
        lan.wait_for()
        assert page.get_by_test_id("wifi-name").inner_text() == "Deck"
        assert lan.locator("h2").inner_text() == "Also on the network on eth0"
        port = beside_the_hotspot.rsplit(":", 1)[1]
        assert page.get_by_test_id("lan-url").all_inner_texts() == [
            f"http://deckbox.local:{port}/", f"http://192.168.77.120:{port}/"]
        assert lan.locator("img").count() == 2  # a QR code for each
        assert not errors, errors
    finally:
        browser.close()
