"""Phone-size screenshots of Ahoy's main screens into docs/screenshots/.

Not a test: `make screenshots` runs it. It starts its own development server
(with the default room, "Everyone", as a box has out of the box) on free
loopback ports and drives Debian's Chromium with fake camera and microphone.
Debian's fonts-noto-color-emoji must be installed, or emoji show as boxes.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
from browserkit import Phone, launch  # noqa: E402

OUT = REPO / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    http, https = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "serve", "--dev", "--data-dir", str(data_dir),
         "--port", str(http), "--https-port", str(https), "--log-level", "WARNING"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=1):
                return proc, http, https
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the development server did not start")


def shot(phone: Phone, name: str) -> None:
    # Pictures (QR codes, profile pictures) load after their dialog opens.
    phone.wait_js("Array.from(document.images).every((i) => i.complete)")
    phone.page.wait_for_timeout(250)  # let transitions settle
    phone.page.screenshot(path=str(OUT / f"{name}.png"))
    print("wrote", OUT / f"{name}.png")


def join(p: Phone, name: str, say: tuple[str, ...] = ()) -> None:
    """Join as a new person: the app opens in the box's default room ("Everyone");
    say something there if asked, then go back to the chats."""
    p.tid("name-input").fill(name)
    p.tid("join-button").click()
    p.tid("composer").wait_for(state="visible")
    p.wait_online()
    assert p.tid("conv-title").inner_text() == "Everyone", p.tid("conv-title").inner_text()
    for text in say:
        p.say(text)
        p.page.locator("[data-testid=message]").filter(has_text=text).locator(
            "[data-testid=msg-status][data-state=delivered]").wait_for()
    p.back()
    p.tid("home-screen").wait_for(state="visible")


def scenes(browser: Any, http_url: str, https_url: str, dark: bool) -> None:
    def phone(url: str) -> Phone:
        p = Phone(browser, url)
        if dark:
            p.page.emulate_media(color_scheme="dark")
        return p

    ana, ben, cleo = phone(https_url), phone(https_url), phone(https_url)
    shot(ana, "01-join")
    join(ana, "Ana", ("Welcome aboard! This room is everyone on the boat.", "Ask here if you need anything."))
    join(ben, "Ben", ("Thanks Ana. Who has the key to the dinghy?",))
    # A new person lands in the default room, with what was said there.
    cleo.tid("name-input").fill("Cleo")
    cleo.tid("join-button").click()
    cleo.wait_text("Thanks Ana. Who has the key to the dinghy?")
    cleo.tid("composer").wait_for(state="visible")
    shot(cleo, "23-default-room")
    cleo.back()
    room = ana.create_room("Deck")
    ana.page.evaluate("""r => window.ahoy.request({type: 'room_update', room: r, description: 'Crew chat, meals and watches'})""", room.split(":")[1])
    ana.back()
    ben.open_room("Deck")
    cleo.open_room("Deck")
    ana.tid("tab-rooms").click()
    ana.create_room("Engine room")
    ana.back()
    ana.open_room("Deck")
    ana.say("Dinner at 7 in the mess.")
    ana.say("Bring a cup!")
    ben.wait_text("Bring a cup!")
    ben.say("On my way after the watch")
    cleo.wait_text("On my way after the watch")
    cleo.say("Can someone check the water maker? It sounds odd.")
    ana.wait_text("Can someone check the water maker? It sounds odd.")
    ana.say("I'll look at it at 6")
    ben.page.wait_for_timeout(800)
    ben.tid("composer").type("I can hel")
    ana.wait_js("document.querySelector('[data-testid=typing]').textContent.length > 0")
    shot(ana, "05-room-chat")

    ben.back()
    ben.open_dm("Ana")
    ben.say("Do you have the spare filter?")
    cleo.back()
    cleo.open_dm("Ana")
    cleo.say("Call me when you're free")
    ana.back()
    ana.tid("tab-chats").click()
    ana.wait_js("document.querySelectorAll('[data-testid=unread-badge]').length >= 2")
    shot(ana, "02-chats")
    ana.tid("tab-people").click()
    shot(ana, "03-people")
    ana.tid("tab-rooms").click()
    shot(ana, "04-rooms")

    ana.tid("tab-chats").click()
    ana.page.locator('[data-testid=chat-item][data-conv^="dm:"]').filter(has_text="Ben").click()
    ana.say("Yes, in the locker by the engine room")
    ana.wait_js("document.querySelector('[data-testid=msg-status][data-state=delivered]') !== null")
    shot(ana, "06-one-to-one")
    ana.back()

    ana.open_room("Deck")
    ana.tid("room-info-button").click()
    ana.tid("room-info-dialog").wait_for()
    ana.page.wait_for_timeout(300)
    shot(ana, "07-room-settings")
    ana.page.keyboard.press("Escape")
    ana.back()

    ana.tid("invite-button").click()
    ana.tid("invite-dialog").wait_for()
    shot(ana, "08-invite")
    ana.page.keyboard.press("Escape")

    cleo.back()
    cleo.open_dm("Ana")
    cleo.tid("call-video-button").click()
    ana.tid("incoming-call").wait_for(state="visible")
    shot(ana, "09-incoming-call")
    ana.tid("accept-call").click()
    ana.page.locator("[data-testid=call-status][data-state=connected]").wait_for(timeout=20_000)
    ana.page.wait_for_timeout(1500)
    shot(ana, "10-video-call")
    ana.tid("hangup-button").click()
    for p in (ana, ben, cleo):
        p.close()


def features_scene(browser: Any, url: str) -> None:
    """Private rooms, reactions and replies, search, profiles, files, direct connect."""
    ana, ben = Phone(browser, url), Phone(browser, url)
    join(ana, "Ana")
    join(ben, "Ben")
    ana.tid("settings-button").click()
    ana.tid("profile-colour").nth(3).click()
    ana.tid("profile-status").fill("On watch till 4")
    ana.page.wait_for_timeout(200)
    shot(ana, "19-profile")
    ana.tid("profile-save").click()
    ben.tid("settings-button").click()
    ben.tid("profile-colour").nth(1).click()
    ben.tid("profile-status").fill("Fixing the water maker")
    ben.tid("profile-save").click()

    ana.open_tab("rooms")
    ana.tid("create-room-button").click()
    ana.tid("room-name-input").fill("Officers")
    ana.tid("room-visibility-input").select_option("hidden")
    ana.tid("room-approval-input").check()
    ana.tid("room-create-submit").click()
    ana.tid("conv-screen").wait_for(state="visible")
    ana.say("Watch rota is *posted* in the `mess`. Details: " + url + "/#room=rota")
    ana.tid("room-info-button").click()
    ana.tid("invite-link-button").click()
    ana.tid("invite-link").wait_for()
    ana.page.wait_for_timeout(300)
    shot(ana, "17-private-room-settings")
    ana.tid("room-invite").first.click()
    ana.tid("room-invited").wait_for()
    ana.page.keyboard.press("Escape")
    ben.tid("invite-open").click()
    ben.tid("composer").wait_for(state="visible")
    ben.tid("message").first.click(button="right")
    ben.tid("reaction-picker").locator("[data-emoji='👍']").click()
    ben.tid("message").first.get_by_test_id("msg-actions").click()
    ben.tid("reply-button").click()
    ben.say("Thanks, I take the _first_ watch")
    ana.wait_js("document.querySelectorAll('[data-testid=message]').length >= 2")
    ana.tid("message").first.get_by_test_id("msg-actions").click()
    ana.tid("reaction-picker").wait_for()
    shot(ana, "16-message-menu")
    ana.tid("reaction-picker").locator("[data-emoji='🎉']").click()
    ben.wait_js("document.querySelectorAll('[data-testid=reaction]').length >= 2")
    shot(ben, "15-reactions-replies")
    ben.tid("search-button").click()
    ben.tid("search-input").fill("watch")
    ben.tid("search-input").press("Enter")
    ben.tid("search-result").first.wait_for()
    shot(ben, "18-search")
    ben.tid("dialog-close").click()
    ben.back()
    ben.open_tab("people")
    with ben.page.expect_file_chooser() as chooser:
        ben.tid("user-send-file").first.click()
    chooser.value.set_files(files=[{"name": "engine-log.pdf", "mimeType": "application/pdf", "buffer": b"%PDF" * 30000}])
    ana.tid("transfer-offer").wait_for()
    shot(ana, "20-file-offer")
    ana.tid("transfer-accept").click()
    ana.tid("transfers").get_by_test_id("file-save").wait_for(timeout=20_000)
    ana.back()
    ana.open_tab("people")
    shot(ana, "21-people-with-files")
    ana.close()
    ben.close()
    direct = Phone(browser, url + "/#direct")
    direct.tid("direct-start").click()
    direct.tid("direct-offer").wait_for()
    direct.page.wait_for_timeout(300)
    shot(direct, "22-direct-connect")
    direct.close()


def http_scene(playwright: Any, http_port: int, dark: bool) -> None:
    browser = launch(playwright, ["--host-resolver-rules=MAP ahoy.internal 127.0.0.1"])
    try:
        p = Phone(browser, f"http://ahoy.internal:{http_port}/")
        if dark:
            p.page.emulate_media(color_scheme="dark")
        join(p, "Dan")
        shot(p, "11-http-banner")
        p.tid("calls-help").click()
        p.tid("https-dialog").wait_for()
        shot(p, "12-calls-need-https")
    finally:
        browser.close()


def check_emoji_font() -> None:
    """Without a colour emoji font, reactions and emoji show as empty boxes."""
    try:
        fonts = subprocess.run(["fc-list"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        fonts = ""
    if "Noto Color Emoji" not in fonts:
        raise SystemExit("no colour emoji font: emoji would show as empty boxes; "
                         "install Debian's fonts-noto-color-emoji first")


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    check_emoji_font()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc, http, https = start_server(Path(tmp) / "data")
        try:
            with sync_playwright() as pw:
                browser = launch(pw)
                scenes(browser, f"http://127.0.0.1:{http}", f"https://127.0.0.1:{https}", dark=False)
                features_scene(browser, f"https://127.0.0.1:{https}")
                browser.close()
                http_scene(pw, http, dark=False)
            # Dark mode: one screen is enough to show it.
            proc.terminate()
            proc.wait(10)
            proc, http, https = start_server(Path(tmp) / "data2")
            with sync_playwright() as pw:
                browser = launch(pw)
                dark_scene(browser, f"https://127.0.0.1:{https}")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(10)


def dark_scene(browser: Any, url: str) -> None:
    ana, ben = Phone(browser, url), Phone(browser, url)
    for p in (ana, ben):
        p.page.emulate_media(color_scheme="dark")
    join(ana, "Ana")
    join(ben, "Ben")
    ana.create_room("Deck")
    ben.open_room("Deck")
    ana.say("Anyone up for cards after dinner?")
    ben.wait_text("Anyone up for cards after dinner?")
    ben.say("Count me in. Bring the good deck.")
    ana.wait_text("Count me in. Bring the good deck.")
    shot(ana, "13-dark-room-chat")
    ana.back()
    ana.open_tab("chats")
    ana.wait_js("document.querySelectorAll('[data-testid=chat-item]').length >= 2")
    shot(ana, "14-dark-chats")
    ana.close()
    ben.close()


if __name__ == "__main__":
    main()
