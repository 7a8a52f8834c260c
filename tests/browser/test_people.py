"""The people screen asks the box for everyone online (docs/protocol.md,
"People online"): `welcome` and `changes` name only one's contacts, so the
app watches everyone while the people tab is open, and the chats list keeps
the dots of the people one has one-to-one chats with."""

from __future__ import annotations

import uuid
from typing import Any


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:4]}"


def test_the_people_screen_lists_everyone_and_follows_arrivals_while_open(
        ahoy_server: Any, phones: Any) -> None:
    ana_name, ben_name, cy_name, dee_name = (unique(n) for n in ("Ana", "Ben", "Cy", "Dee"))
    ana, ben, cy = (phones(ahoy_server.http_url) for _ in range(3))
    ana.join(ana_name)
    ben.join(ben_name)
    cy.join(cy_name)
    # Nobody has chatted yet: Ben's app is told of nobody by name...
    ben.wait_js("window.ahoy.state.online >= 3")
    assert ben.page.evaluate("window.ahoy.state.users.size") == 0
    # ...and the people tab asks for everyone, and shows how many are online.
    ben.open_tab("people")
    ben.tid("user-item").filter(has_text=ana_name).wait_for()
    ben.tid("user-item").filter(has_text=cy_name).wait_for()
    assert ben.page.evaluate("window.ahoy.state.watching") is True
    assert int(ben.tid("tab-people").inner_text().split()[-1]) >= 2
    # While it is open, who arrives shows up.
    dee = phones(ahoy_server.http_url)
    dee.join(dee_name)
    ben.tid("user-item").filter(has_text=dee_name).wait_for()
    # Ben writes to Ana from the people screen: a one-to-one chat, a contact.
    ben.open_dm(ana_name)
    ben.say("Ahoy Ana")
    ben.back()
    # Leaving the tab stops watching: the app forgets who is not a contact,
    # and keeps Ana (her dot on the chats list).
    ben.open_tab("chats")
    ben.wait_js("!window.ahoy.state.watching")
    ana_id = ana.my_id()
    ben.wait_js(f"[...window.ahoy.state.users.keys()].join() === '{ana_id}'")
    row = ben.tid("chat-item").filter(has_text=ana_name)
    row.locator(".avatar.status-online").wait_for()
    # Ana goes: her dot on Ben's chats list says so (she is Ben's contact).
    ana.close()
    row.locator(".avatar.status-online").wait_for(state="detached", timeout=45_000)
    # Dee goes too: Ben is not told (he no longer watches), but the people
    # tab, opened again, lists who is online now.
    dee.close()
    ben.open_tab("people")
    ben.tid("user-item").filter(has_text=cy_name).wait_for()
    ben.wait_js(f"![...document.querySelectorAll('[data-testid=user-item]')]"
                f".some((e) => e.textContent.includes('{dee_name}'))", timeout=45)
