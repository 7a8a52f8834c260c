"""Helpers for the real-browser tests and scripts: launching Debian's Chromium
with fake camera and mic, and a Phone (one person's browser context with Ahoy open).

Never run `playwright install`: it downloads browsers. We use /usr/bin/chromium.
(Not in conftest.py: conftest modules of different folders collide by name.)
"""

from __future__ import annotations

import os
import time
from typing import Any

CHROMIUM = os.environ.get("AHOY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--no-first-run",
    "--ignore-certificate-errors",
]
PHONE = {"width": 390, "height": 844}


def launch(playwright: Any, extra_args: list[str] | None = None) -> Any:
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + (extra_args or []))


def wait_js(page: Any, expression: str, arg: Any = None, timeout: float = 15.0) -> Any:
    """Poll a JavaScript expression until truthy.

    Not page.wait_for_function: it evaluates with eval(), which the box's
    Content-Security-Policy (script-src 'self') rightly forbids.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        time.sleep(0.1)


class Phone:
    """One person's browser context with Ahoy open: helpers named after what a user does."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(
            viewport=PHONE, ignore_https_errors=True, service_workers="block",
            permissions=["camera", "microphone"])
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # Console errors too: a Content-Security-Policy violation only shows there.
        self.page.on("console", self._on_console)
        self.url = url
        self.page.goto(url)

    def _on_console(self, message: Any) -> None:
        # A refused WebSocket is expected while the box or the network is away;
        # reconnecting is the point.
        expected = ("ERR_CONNECTION_REFUSED", "ERR_INTERNET_DISCONNECTED")
        if message.type == "error" and not any(e in message.text for e in expected):
            self.errors.append("console: " + message.text)

    def tid(self, testid: str) -> Any:
        return self.page.get_by_test_id(testid)

    def join(self, name: str) -> None:
        self.tid("name-input").fill(name)
        self.tid("join-button").click()
        self.tid("home-screen").wait_for(state="visible")
        self.wait_online()

    def wait_online(self) -> None:
        wait_js(self.page, "window.ahoy.state.conn === 'online'")

    def wait_online_long(self) -> None:
        """After the box was away: reconnect backoff is at most 10 s."""
        wait_js(self.page, "window.ahoy.state.conn === 'online'", timeout=20)

    def wait_js(self, expression: str, arg: Any = None, timeout: float = 15.0) -> Any:
        return wait_js(self.page, expression, arg, timeout)

    def my_id(self) -> str:
        return str(self.page.evaluate("window.ahoy.state.me.id"))

    def open_tab(self, tab: str) -> None:
        self.tid(f"tab-{tab}").click()

    def open_dm(self, name: str) -> None:
        self.open_tab("people")
        self.tid("user-item").filter(has_text=name).click()
        self.tid("conv-screen").wait_for(state="visible")

    def create_room(self, name: str) -> str:
        self.open_tab("rooms")
        self.tid("create-room-button").click()
        self.tid("room-name-input").fill(name)
        self.tid("room-create-submit").click()
        self.tid("conv-screen").wait_for(state="visible")
        return str(self.page.evaluate("window.ahoy.state.current"))

    def open_room(self, name: str) -> None:
        self.open_tab("rooms")
        self.tid("room-item").filter(has_text=name).click()
        self.tid("conv-screen").wait_for(state="visible")
        self.tid("composer").wait_for(state="visible")

    def back(self) -> None:
        self.tid("conv-back").click()

    def say(self, text: str) -> None:
        self.tid("composer").fill(text)
        self.tid("send-button").click()

    def texts(self) -> list[str]:
        return [str(t) for t in self.tid("msg-text").all_inner_texts()]

    def wait_text(self, text: str, timeout: float = 20_000) -> None:
        self.tid("message-list").get_by_text(text, exact=True).wait_for(timeout=timeout)

    def close(self) -> None:
        self.context.close()
