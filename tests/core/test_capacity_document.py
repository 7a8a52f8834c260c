"""The capacity per board measured by `python -m bench --only pi` (docs/benchmarks.md)
is what the admin page's help text and docs/admin.md tell the box's owner."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def capacity_rows() -> list[tuple[str, str, str]]:
    """(board, phones, start-up s) from the first table of docs/benchmarks.md's section
    "Capacity per board": what the box promises (other runs' tables come after it)."""
    text = (REPO / "docs" / "benchmarks.md").read_text()
    table = text[text.index("### Capacity per board\n"):]
    table = table[table.index("| board"):]
    rows = []
    for line in table.splitlines()[2:]:
        if not line.startswith("| Raspberry"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        board = re.sub(r"\s*\(.*\)$", "", cells[0])
        rows.append((board, cells[4], cells[3]))
    return rows


def test_the_capacity_table_has_the_three_boards() -> None:
    assert [board for board, _, _ in capacity_rows()] == [
        "Raspberry Pi 4 B", "Raspberry Pi 3 B", "Raspberry Pi Zero 2 W"]


def test_the_admin_page_and_its_guide_state_the_measured_capacity() -> None:
    dashboard = (REPO / "webclient" / "admin" / "dashboard.js").read_text()
    guide = (REPO / "docs" / "admin.md").read_text()
    for board, phones, startup in capacity_rows():
        said = f"{board}: {phones} phones, ready {startup} s after start"
        assert said in dashboard, said
        assert said in guide, said
