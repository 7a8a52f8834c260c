"""The web app over the air: what the first chat screen costs a phone, first and returning.

Loads the first chat screen (join, then the default room's chat, or the chats list on
a box without one, shown and connected) in
headless Chromium from the production server, and counts what went over the
network: requests and bytes as they came over the wire (headers included, as
Chromium counts them), with the bodies' decoded size beside. Three loads:

- first, from a browser that does not take gzip (the baseline: what every
  phone got before the box sent compressed files);
- first, a phone with an empty cache (browsers take gzip);
- returning: the same phone opens the app again (its HTTP cache kept);
- returning after an update: one script of the app changed on the box (a
  comment added to net.js; only with a server of its own, which serves a copy
  of webclient/), and the same phone opens the app again: the page names the
  new version, and the new scripts come at once (docs/benchmarks.md).

    python bench/webapp_weight.py                 start a production server of its own
    python bench/webapp_weight.py --url http://127.0.0.1:8080

The service worker is left out: it runs only in a secure context with the box
CA installed, is network-first and goes through the same HTTP cache. Prints
figures; it does not assert.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
GOAL = 50 * 1024  # issue 17: the first chat screen in at most 50 KB
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-gpu", "--no-first-run", "--ignore-certificate-errors"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, webclient: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The box's production server (gevent) on loopback, mock GPIO, no mDNS."""
    http, https = free_port(), free_port()
    env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "serve", "--host", "127.0.0.1", "--no-mdns",
         "--config", str(data_dir.parent / "no-ahoy.txt"), "--data-dir", str(data_dir),
         "--port", str(http), "--https-port", str(https), "--log-level", "WARNING",
         "--webclient-dir", str(webclient)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


@dataclass
class Load:
    """What one load of the first chat screen sent over the network."""

    name: str
    # url, status, bytes on the wire, decoded body bytes, content-encoding
    rows: list[tuple[str, int, int, int, str]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.rows)

    @property
    def wire(self) -> int:
        return sum(r[2] for r in self.rows)

    @property
    def body(self) -> int:
        return sum(r[3] for r in self.rows)

    @property
    def not_modified(self) -> int:
        return sum(1 for r in self.rows if r[1] == 304)


def load(context: Any, url: str, name: str, join: bool) -> Load:
    """Open the app in a new tab of `context` and count what came over the network."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    seen: dict[str, dict[str, Any]] = {}

    def on_response(ev: dict[str, Any]) -> None:
        response = ev["response"]
        if response.get("fromDiskCache") or response.get("fromServiceWorker") \
                or response.get("fromPrefetchCache"):
            return
        headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
        seen[ev["requestId"]] = {"url": response["url"], "status": response["status"],
                                 "wire": 0, "body": 0,
                                 "encoding": headers.get("content-encoding", "")}

    def on_data(ev: dict[str, Any]) -> None:
        if ev["requestId"] in seen:
            seen[ev["requestId"]]["body"] += ev.get("dataLength", 0)

    def on_finished(ev: dict[str, Any]) -> None:
        if ev["requestId"] in seen:
            seen[ev["requestId"]]["wire"] = int(ev.get("encodedDataLength", 0))

    def on_raw(ev: dict[str, Any]) -> None:
        # The status as it came over the network: a revalidated file is 304 here,
        # while the page sees the cached 200.
        raw_status[ev["requestId"]] = int(ev.get("statusCode", 0))

    raw_status: dict[str, int] = {}
    cdp.on("Network.responseReceivedExtraInfo", on_raw)
    cdp.on("Network.responseReceived", on_response)
    cdp.on("Network.dataReceived", on_data)
    cdp.on("Network.loadingFinished", on_finished)
    page.goto(url)
    if join:
        page.get_by_test_id("name-input").fill(f"Bench{int(time.time() * 1000) % 100000}")
        page.get_by_test_id("join-button").click()
    # The box's default config has a room everyone joins, and the app opens in it;
    # without one it opens on the chats list. Either is the first chat screen.
    page.locator("[data-testid=composer]:visible, [data-testid=home-screen]:visible").first \
        .wait_for(state="visible")
    deadline = time.monotonic() + 15
    while page.evaluate("window.ahoy.state.conn") != "online" and time.monotonic() < deadline:
        time.sleep(0.05)
    page.wait_for_load_state("networkidle")
    page.close()
    return Load(name, [(s["url"], raw_status.get(rid, s["status"]), s["wire"], s["body"],
                        s["encoding"]) for rid, s in seen.items()])


def measure(url: str, chromium: str, update: Path | None = None) -> list[Load]:
    """The loads; with `update` (a script of the served app), also one after changing it."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        phone = {"viewport": {"width": 390, "height": 844}, "service_workers": "block"}
        plain = browser.new_context(**phone, extra_http_headers={"Accept-Encoding": "identity"})
        baseline = load(plain, url, "first load, browser without gzip (baseline)", join=True)
        plain.close()
        context = browser.new_context(**phone)
        first = load(context, url, "first load", join=True)
        returning = load(context, url, "returning (app opened again)", join=False)
        loads = [baseline, first, returning]
        if update is not None:
            update.write_text(update.read_text() + "\n// the box was updated\n")
            loads.append(load(context, url, "returning after an update", join=False))
        context.close()
        browser.close()
    return loads


def report(loads: list[Load]) -> str:
    lines = [f"{'load':<46} {'requests':>8} {'KB on the wire':>14} {'KB decoded':>10} "
             f"{'304s':>5}"]
    for one in loads:
        lines.append(f"{one.name:<46} {one.requests:>8} {one.wire / 1024:>14.1f} "
                     f"{one.body / 1024:>10.1f} {one.not_modified:>5}")
    first = loads[1]
    lines.append("")
    lines.append(f"first chat screen: {first.requests} requests, {first.wire / 1024:.1f} KB "
                 f"transferred; goal {GOAL / 1024:.0f} KB "
                 f"({'met' if first.wire <= GOAL else 'NOT met'})")
    for one in loads[1:]:
        lines.append("")
        lines.append(f"{one.name}, per request (the rest came from the browser's cache):")
        lines.append(f"{'on the wire':>12} {'decoded':>9} {'status':>6} {'encoding':>8}  url")
        for u, status, wire, body, encoding in sorted(one.rows, key=lambda r: -r[2]):
            lines.append(f"{wire:>12} {body:>9} {status:>6} {encoding or '-':>8}  {u}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start a production one)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    proc = None
    tmp = None
    changed = None
    url = args.url
    if not url:
        tmp = tempfile.TemporaryDirectory()
        webclient = Path(tmp.name) / "webclient"
        shutil.copytree(REPO / "webclient", webclient)
        proc, url = start_server(Path(tmp.name) / "data", webclient)
        changed = webclient / "app" / "net.js"
    try:
        loads = measure(url.rstrip("/") + "/", args.chromium, changed)
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        if tmp:
            tmp.cleanup()
    print(report(loads))


if __name__ == "__main__":
    main()
