"""One table for the config file: BoxConfig, docs/config.md and the admin page follow KEYS."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from provisioning.config import ADMIN_KEYS, KEYS, BoxConfig, format_value

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "config.md").read_text()


def documented_defaults() -> dict[str, str]:
    """The rows of docs/config.md's key table: key -> its default column, in order."""
    section = DOC.split("\n## Keys\n", 1)[1].split("\n#", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = re.match(r"\| `([a-z_]+)` \|([^|]*)\|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    assert rows, "docs/config.md lost its table of keys"
    return rows


def test_the_docs_list_every_key_in_the_tables_order_and_no_other() -> None:
    assert list(documented_defaults()) == list(KEYS)


def test_the_docs_give_every_keys_default() -> None:
    defaults = BoxConfig()
    for key, cell in documented_defaults().items():
        written = format_value(defaults, key)
        if written == "":
            assert cell.startswith("empty"), (key, cell)
        else:
            assert f"`{written}`" in cell, (key, written, cell)


def test_the_box_config_has_one_field_per_key_with_the_tables_default() -> None:
    fields = dataclasses.fields(BoxConfig)
    assert [f.name for f in fields] == list(KEYS)
    assert {f.name: f.default for f in fields} == {k.name: k.default for k in KEYS.values()}


def test_the_admin_settings_form_shows_the_keys_the_table_gives_it() -> None:
    script = (REPO / "webclient" / "admin" / "settings.js").read_text()
    shown = set(re.findall(r"\bfield\('([a-z_]+)'", script))
    assert shown == set(ADMIN_KEYS)
    assert all(KEYS[name].label for name in ADMIN_KEYS)
    assert not [k.name for k in KEYS.values() if k.secret and k.admin_page]
