"""A profile picture, colour and status set in Firefox and in WebKit (the
picture shrunk by the page's canvas, JPEG out) reach a Chromium phone."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from enginekit import EnginePhone, tid
from PIL import Image

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("engine", ["firefox", "webkit"])
def test_profile_set_in_this_engine_reaches_others(
        engine: str, box: Any, tmp_path: Path, people: Callable[[str, str], EnginePhone]) -> None:
    picture = tmp_path / "me.png"
    Image.new("RGB", (900, 600), (200, 40, 40)).save(picture, "PNG")
    ana_name = f"Ana{uuid.uuid4().hex[:4]}"
    ana = people(engine, box.http_url)
    ben = people("chromium", box.http_url)
    ana.join(ana_name)
    ben.join(f"Ben{uuid.uuid4().hex[:4]}")

    ana.click(tid("settings-button"))
    ana.upload(tid("profile-picture"), picture)
    ana.wait_visible('[data-testid=settings-dialog] [data-testid=avatar-img]')
    colour = str(ana.evaluate(
        "(() => { const b = document.querySelectorAll('[data-testid=profile-colour]')[3];"
        " b.dataset.pick = 'colour4'; return b.dataset.colour; })()"))
    ana.click("[data-pick=colour4]")
    ana.fill(tid("profile-status"), "On watch till 4")
    ana.click(tid("profile-save"))
    ana.wait_hidden(tid("settings-dialog"))

    ben.open_tab("people")
    ana_id = ana.evaluate("window.ahoy.state.me.id")
    row = f"[data-testid=user-item][data-user={ana_id}]"
    ben.wait_js(f"(() => {{ const r = document.querySelector('{row}');"
                " const i = r && r.querySelector('[data-testid=avatar-img]');"
                " return !!(i && i.complete && i.naturalWidth === 256)"
                " && r.textContent.includes('On watch till 4'); })()")
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    assert ben.evaluate(f"document.querySelector('{row} .avatar').style.background") == f"rgb({r}, {g}, {b})"
