"""A corpus of hostile messages renders as text; formatting applies only where intended."""

from __future__ import annotations

from typing import Any

from ahoytest import WsClient, unique

CORPUS = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 2">',
    "[click](javascript:alert(1))",
    "javascript:alert(document.cookie)",
    "http://evil.example/steal?c=1",
    "https://127.0.0.1.evil.example/x",
    "http://user:pw@127.0.0.1/x",
    '<a href="javascript:alert(1)">x</a>',
    '*<svg onload="window.__pwned = 3">*',
    "_<iframe src=//evil.example>_",
    "`<script>alert(1)</script>`",
    "*_`<b onmouseover=alert(1)>x</b>`_*",
    "**",
    "* not bold *",
    "snake_case_name and 2*3*4",
    "\u202eevil.exe\u202c and \u2066isolate\u2069",
    "W" * 3000,
    "data:text/html,<script>alert(1)</script>",
    '"><script>alert(1)</script>',
    "{{constructor.constructor('alert(1)')()}}",
]


def test_hostile_messages_render_as_text(ahoy_server: Any, phones: Any) -> None:
    ana = phones(ahoy_server.http_url)
    dialogs: list[str] = []
    ana.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    ana.join(unique("Ana"))
    room_name = unique("Harbour")
    room = str(ana.create_room(room_name)).removeprefix("room:")
    box_link = f"{ahoy_server.http_url}/#room={room}"
    formatted = [
        "*bold* and _italic_ and `code`",
        "*bold with _italic_ inside*",
        f"see {box_link}.",
    ]

    mallory = WsClient(ahoy_server.ws_url)
    try:
        mallory.hello(unique("<b>Mallory</b>"))
        assert mallory.request("room_join", "room", room=room)["type"] == "room"
        for i, text in enumerate(CORPUS + formatted):
            mallory.send("send", id=f"hostile-{i:03d}-{unique('x')}", room=room, text=text)
        ana.wait_js("n => document.querySelectorAll('[data-testid=msg-text]').length >= n",
                    len(CORPUS) + len(formatted))
    finally:
        mallory.close()

    texts = ana.texts()
    listing = ana.tid("message-list")
    # Markup typed by people is text: no elements beyond our own formatting.
    assert listing.locator("script, img, iframe, svg:not(.avatar svg), [onerror], [onload], [onmouseover]").count() == 0
    for text in CORPUS:
        if "*" not in text and "_" not in text and "`" not in text:
            assert text in texts, text
    # Only the link to the box itself is a link.
    hrefs = listing.locator("a").evaluate_all("els => els.map(a => a.href)")
    assert hrefs == [box_link], hrefs
    assert listing.locator("a").first.inner_text() == box_link
    # Formatting where intended, nowhere else.
    first = listing.locator("[data-testid=msg-text]").filter(has_text="and italic and")
    assert first.locator("strong").inner_text() == "bold"
    assert first.locator("em").inner_text() == "italic"
    assert first.locator("code").inner_text() == "code"
    nested = listing.locator("[data-testid=msg-text]").filter(has_text="bold with italic inside")
    assert nested.locator("strong > em").inner_text() == "italic"
    code = listing.locator("code").filter(has_text="<script>alert(1)</script>")
    assert code.count() == 1
    tricky = listing.locator("[data-testid=msg-text]").filter(has_text="b onmouseover")
    assert tricky.locator("strong > em > code").inner_text() == "<b onmouseover=alert(1)>x</b>"
    for plain in ("**", "* not bold *", "snake_case_name and 2*3*4"):
        node = listing.locator("[data-testid=msg-text]").filter(has_text=plain).first
        assert node.locator("strong, em, code").count() == 0, plain
        assert node.inner_text() == plain
    # A 3000-letter word wraps instead of widening the page.
    assert ana.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert ana.page.evaluate("window.__pwned") is None
    assert not dialogs, dialogs
