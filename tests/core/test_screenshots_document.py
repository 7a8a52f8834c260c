"""README shows pictures that exist, and docs/screenshots/ holds exactly what
`make screenshots` (tests/browser/screenshots.py) makes: none goes stale unseen."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PICTURES = REPO / "docs" / "screenshots"


def test_the_readme_shows_only_pictures_that_exist() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r'<img src="(docs/screenshots/[^"]+)"', readme)
    assert shown
    missing = [name for name in shown if not (REPO / name).is_file()]
    assert not missing, missing


def test_the_screenshot_script_makes_every_picture_kept_and_no_other() -> None:
    script = (REPO / "tests" / "browser" / "screenshots.py").read_text(encoding="utf-8")
    made = set(re.findall(r'shot\(\w+, "([\w-]+)"\)', script))
    kept = {p.stem for p in PICTURES.glob("*.png")}
    assert made == kept, {"made but not kept": made - kept, "kept but not made": kept - made}
