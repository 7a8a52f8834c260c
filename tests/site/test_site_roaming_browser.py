"""The real web app (Chromium) walks from one box of a site to another.

A phone that roams keeps talking to the same address (ahoy.internal answers
with the box it is on). Here that address is a small TCP relay on loopback,
switched from box A to box B, so the web app keeps its origin and its
localStorage, as a phone does.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from ahoytest import free_port
from sitetest import SiteBox, mid, wait_for, whole_conversation

pytestmark = [pytest.mark.browser]


class Relay:
    """The address the phone uses; `to` picks the box behind it (None: no box)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.to: int | None = None
        self.open: list[socket.socket] = []
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def switch(self, port: int | None) -> None:
        """Move the phone: every connection through the relay drops."""
        self.to = port
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.open.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.to is None:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.to))
            except OSError:
                client.close()
                continue
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.switch(None)
        self.server.close()




def test_the_web_app_moved_to_another_box_shows_what_it_missed_there(
    two_boxes: list[SiteBox], playwright: Any
) -> None:
    from browserkit import Phone, launch

    a, b = two_boxes
    relay = Relay()
    relay.switch(a.ahoy.http_port)
    browser = launch(playwright)
    try:
        alice = Phone(browser, f"http://127.0.0.1:{relay.port}/")
        alice.join("Alice")
        conv = alice.create_room("Deck")
        room = conv.removeprefix("room:")
        carol, bob = a.client("Carol"), b.client("Bob")
        assert carol.request("room_join", "room", room=room)["type"] == "room"
        wait_for(lambda: bob.request("room_join", "room", room=room)["type"] == "room",
                 what="the room at B")
        # The site splits. On A, Carol writes twice and Alice's app shows it; on B,
        # Bob writes once. A's seqs 1, 2 are Carol's; B's seq 1 is Bob's.
        for box in (a, b):
            box.nats.stop()
        wait_for(lambda: a.status().get("linked") == 0 and b.status().get("linked") == 0,
                 what="the split")
        for text in ("carol one", "carol two"):
            carol.request("send", "ack", id=mid(), room=room, text=text)
            alice.wait_text(text)
        bob.request("send", "ack", id=mid(), room=room, text="bob one")
        # Alice walks to B's Wi-Fi: the same address now reaches box B.
        relay.switch(b.ahoy.http_port)
        alice.wait_text("bob one", timeout=30_000)
        wait_for(lambda: alice.page.evaluate("window.ahoy.state.box") == b.box,
                 what="the app on box B")
        # The site joins again: Carol's messages reach B, and Alice sees each once.
        for box in (a, b):
            box.nats.start()
        wait_for(lambda: len(whole_conversation(bob, conv)) == 3, what="the merge at B")
        alice.say("back on deck 4")
        wait_for(lambda: sorted(alice.texts()) == sorted(
            ["carol one", "carol two", "bob one", "back on deck 4"]), timeout=30,
            what="every message once in the app")
        assert not alice.errors, alice.errors
    finally:
        browser.close()
        relay.close()
