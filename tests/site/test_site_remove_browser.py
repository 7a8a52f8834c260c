"""The admin page in Chromium removes a dead box of the site and adds it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sitetest import ADMIN_PASSWORD, admin_ready, make_site, wait_for

pytestmark = [pytest.mark.browser]


def test_the_admin_removes_a_dead_box_on_the_shared_chat_card_and_adds_it_again(
    tmp_path: Path, playwright: Any
) -> None:
    from browserkit import launch

    a, b = make_site(tmp_path, 2)
    admin_ready(a.nats)
    try:
        for box in (a, b):
            box.start()
        wait_for(lambda: a.status().get("linked") == 1, what="link")
        b.ahoy.kill()
        b.nats.kill()
        wait_for(lambda: a.status().get("linked") == 0, what="B gone at A")
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.set_default_timeout(30_000)
            page.goto(a.ahoy.http_url + "/admin")
            page.get_by_test_id("password-input").fill(ADMIN_PASSWORD)
            page.get_by_test_id("login-button").click()
            page.get_by_test_id("site-replication").wait_for()
            page.get_by_test_id("remove-box").click()
            page.get_by_test_id("confirm-yes").click()
            status = page.get_by_test_id("site-box-status")
            status.get_by_text("was removed from the site").wait_for()
            assert b.box in status.inner_text()
            removed = page.get_by_test_id("removed-box")
            removed.wait_for()
            assert b.box in removed.inner_text()
            assert page.get_by_test_id("remove-box").count() == 0
            assert a.status()["boxes"] == 1
            page.get_by_test_id("add-box").click()
            status.get_by_text("part of the site again").wait_for()
            page.get_by_test_id("removed-box").wait_for(state="detached")
            assert not errors, errors
        finally:
            browser.close()
    finally:
        for box in (a, b):
            box.stop()
