"""How heavy is the first chat screen? Loads it in Chromium with a fresh cache
against a running Ahoy server and sums the bytes transferred (compressed, as
they came over the wire, headers included), next to the 150 KB budget.

    python bench/webapp_weight.py --url http://127.0.0.1:8080

Without --url it starts a development server of its own on free loopback ports.
It prints figures; it does not assert.
"""

from __future__ import annotations

import argparse
import gzip
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
BUDGET = 150 * 1024
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-gpu", "--no-first-run", "--ignore-certificate-errors"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    http, https = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "serve", "--dev", "--data-dir", str(data_dir),
         "--port", str(http), "--https-port", str(https), "--log-level", "WARNING"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the development server did not start")


def measure(url: str, chromium: str) -> list[tuple[str, int, int]]:
    """(url, bytes on the wire, body bytes) for every HTTP response of the first chat screen."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        # Fresh profile, no HTTP cache; the service worker's precache is not part
        # of showing the first screen, so it is kept out of the figure.
        context = browser.new_context(viewport={"width": 390, "height": 844}, service_workers="block")
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        urls: dict[str, str] = {}
        sizes: dict[str, list[int]] = {}

        def on_response(ev: dict[str, Any]) -> None:
            urls[ev["requestId"]] = ev["response"]["url"]

        def on_data(ev: dict[str, Any]) -> None:
            sizes.setdefault(ev["requestId"], [0, 0])[1] += ev.get("dataLength", 0)

        def on_finished(ev: dict[str, Any]) -> None:
            sizes.setdefault(ev["requestId"], [0, 0])[0] = int(ev.get("encodedDataLength", 0))

        cdp.on("Network.responseReceived", on_response)
        cdp.on("Network.dataReceived", on_data)
        cdp.on("Network.loadingFinished", on_finished)
        page.goto(url)
        # The first chat screen: join, then the chats list shown and connected.
        page.get_by_test_id("name-input").fill(f"Bench{int(time.time()) % 10000}")
        page.get_by_test_id("join-button").click()
        page.get_by_test_id("home-screen").wait_for(state="visible")
        deadline = time.monotonic() + 10
        while page.evaluate("window.ahoy.state.conn") != "online" and time.monotonic() < deadline:
            time.sleep(0.05)
        page.wait_for_load_state("networkidle")
        rows = [(urls.get(rid, rid), s[0], s[1]) for rid, s in sizes.items() if rid in urls]
        browser.close()
    return rows


def gzip_size(url: str) -> int:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the box's own certificate
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
            return len(gzip.compress(r.read(), 6))
    except OSError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8080 (default: start one)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    proc = None
    tmp = None
    url = args.url
    if not url:
        tmp = tempfile.TemporaryDirectory()
        proc, url = start_server(Path(tmp.name) / "data")
    try:
        rows = measure(url.rstrip("/") + "/", args.chromium)
        gz = sum(gzip_size(u) for u, _, _ in rows)
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        if tmp:
            tmp.cleanup()
    rows.sort(key=lambda r: -r[1])
    print(f"{'transferred':>12} {'body':>10}  url")
    for u, wire, body in rows:
        print(f"{wire:>12} {body:>10}  {u}")
    total = sum(r[1] for r in rows)
    body_total = sum(r[2] for r in rows)
    print(f"first chat screen: {len(rows)} requests, {total / 1024:.1f} KB transferred "
          f"({body_total / 1024:.1f} KB decoded); budget {BUDGET / 1024:.0f} KB "
          f"({'within' if total <= BUDGET else 'OVER'} budget)")
    print(f"the same bodies gzip-compressed would be {gz / 1024:.1f} KB "
          "(what a compressing server or proxy would send)")


if __name__ == "__main__":
    main()
