"""One person's browser in any of the three engines a phone may have.

- Chromium: Debian's `chromium` through Playwright (as in tests/browser/).
- Firefox: Debian's `firefox-esr` over WebDriver BiDi, through `puppeteer-core`
  in a small node program (firefox/driver.mjs; Playwright's Python API cannot
  drive Debian's Firefox). `npm ci` installs the pinned package into
  tests/engines/firefox/node_modules (git-ignored) on first use.
- WebKit (Safari's engine): Debian's WebKitGTK `MiniBrowser --automation`
  through `WebKitWebDriver` and Selenium, on a private Xvfb display.

`EnginePhone` is the common surface (go to a page, evaluate an expression,
click and fill by CSS selector); the helpers named after what a user does are
written once on top of it, so a flow reads the same in every engine.
(Not in conftest.py: conftest modules of different folders collide by name.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ADMIN_PASSWORD = "engines-harbour-lantern"
FIREFOX_DIR = HERE / "firefox"
FIREFOX = os.environ.get("AHOY_FIREFOX", "/usr/bin/firefox-esr")
WEBKIT_DRIVER = os.environ.get("AHOY_WEBKIT_DRIVER", "/usr/bin/WebKitWebDriver")
MINIBROWSER_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
    "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
    "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.0/MiniBrowser",
    "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.0/MiniBrowser",
)

# Console lines that are no fault of the page: the box or the network away, or
# an HTTP error status the page handles (a wrong password is a 401).
EXPECTED_CONSOLE = ("Failed to load resource: the server responded with a status of",
                    "ERR_CONNECTION_REFUSED", "ERR_INTERNET_DISCONNECTED",
                    "can\u2019t establish a connection", "can't establish a connection",
                    "was interrupted while the page was loading")


def visible_js(selector: str) -> str:
    return (f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " return !!(e && e.getClientRects().length); })()")


def tid(testid: str) -> str:
    return f'[data-testid="{testid}"]'


class EnginePhone:
    """One person's browser context with a page open."""

    engine = "?"

    # --- what each engine provides ---------------------------------------
    def goto(self, url: str) -> None:
        raise NotImplementedError

    def evaluate(self, expression: str) -> Any:
        """Evaluate a JavaScript expression in the page (a promise is awaited)."""
        raise NotImplementedError

    def click(self, selector: str, timeout: float = 15.0) -> None:
        raise NotImplementedError

    def fill(self, selector: str, text: str) -> None:
        raise NotImplementedError

    def upload(self, selector: str, path: Path) -> None:
        """Choose a file in a file input (it may be hidden, as the app's are)."""
        raise NotImplementedError

    def errors(self) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # --- written once ----------------------------------------------------
    def wait_js(self, expression: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.engine}: timed out waiting for: {expression}")
            time.sleep(0.1)

    def wait_visible(self, selector: str, timeout: float = 15.0) -> None:
        self.wait_js(visible_js(selector), timeout)

    def wait_hidden(self, selector: str, timeout: float = 15.0) -> None:
        self.wait_js("!" + visible_js(selector), timeout)

    def text_of(self, selector: str) -> str:
        return str(self.evaluate(
            f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''"))

    def click_with_text(self, selector: str, text: str, timeout: float = 15.0) -> None:
        """Click the first visible `selector` whose text contains `text`.

        Lists re-render when someone comes online or writes, replacing the very
        element we found: then find it again.
        """
        deadline = time.monotonic() + timeout
        while True:
            picked = self.wait_js(
                f"""(() => {{
                  const e = [...document.querySelectorAll({json.dumps(selector)})].find(
                    (x) => x.getClientRects().length && x.textContent.includes({json.dumps(text)}));
                  if (!e) return null;
                  const mark = 'p' + Math.random().toString(36).slice(2);
                  e.dataset.pick = mark;
                  return mark;
                }})()""", timeout)
            try:
                self.click(f'[data-pick="{picked}"]', timeout=2.0)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise

    def join(self, name: str) -> None:
        self.wait_visible(tid("name-input"))
        self.fill(tid("name-input"), name)
        self.click(tid("join-button"))
        self.wait_visible(tid("home-screen"))
        self.wait_online()

    def wait_online(self, timeout: float = 15.0) -> None:
        self.wait_js("window.ahoy.state.conn === 'online'", timeout)

    def open_tab(self, tab: str) -> None:
        self.click(tid(f"tab-{tab}"))

    def open_dm(self, name: str) -> None:
        self.open_tab("people")
        self.click_with_text(tid("user-item"), name)
        self.wait_visible(tid("conv-screen"))

    def create_room(self, name: str) -> str:
        self.open_tab("rooms")
        self.click(tid("create-room-button"))
        self.wait_visible(tid("room-name-input"))
        self.fill(tid("room-name-input"), name)
        self.click(tid("room-create-submit"))
        self.wait_visible(tid("conv-screen"))
        return str(self.evaluate("window.ahoy.state.current"))

    def open_room(self, name: str) -> None:
        self.open_tab("rooms")
        self.click_with_text(tid("room-item"), name)
        self.wait_visible(tid("conv-screen"))
        self.wait_visible(tid("composer"))

    def back(self) -> None:
        self.click(tid("conv-back"))

    def say(self, text: str) -> None:
        self.fill(tid("composer"), text)
        self.click(tid("send-button"))

    def texts(self) -> list[str]:
        return list(self.evaluate(
            "[...document.querySelectorAll('[data-testid=msg-text]')].map((e) => e.textContent)"))

    def wait_text(self, text: str, timeout: float = 15.0) -> None:
        self.wait_js(
            f"[...document.querySelectorAll('[data-testid=msg-text]')].some("
            f"(e) => e.textContent === {json.dumps(text)})", timeout)

    def check_no_errors(self) -> None:
        errors = [e for e in self.errors() if not any(x in e for x in EXPECTED_CONSOLE)]
        assert not errors, f"{self.engine}: JavaScript errors: {errors}"


# --- Chromium ---------------------------------------------------------------

class ChromiumPhone(EnginePhone):
    engine = "chromium"

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(
            viewport={"width": 390, "height": 844}, ignore_https_errors=True,
            service_workers="block", permissions=["camera", "microphone"])
        self.page = self.context.new_page()
        self._errors: list[str] = []
        self.page.on("pageerror", lambda exc: self._errors.append(str(exc)))
        self.page.on("console", lambda m: self._errors.append("console: " + m.text)
                     if m.type == "error" else None)
        self.page.goto(url)

    def goto(self, url: str) -> None:
        self.page.goto(url)

    def evaluate(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def click(self, selector: str, timeout: float = 15.0) -> None:
        self.page.locator(selector).first.click(timeout=timeout * 1000)

    def fill(self, selector: str, text: str) -> None:
        self.page.locator(selector).first.fill(text)

    def upload(self, selector: str, path: Path) -> None:
        self.page.locator(selector).first.set_input_files(str(path))

    def errors(self) -> list[str]:
        out, self._errors = self._errors, []
        return out

    def close(self) -> None:
        self.context.close()


# --- Firefox ----------------------------------------------------------------

def firefox_missing() -> str | None:
    """Why Firefox tests cannot run here, or None."""
    if not os.path.exists(FIREFOX):
        return f"no Firefox at {FIREFOX} (apt-get install firefox-esr)"
    if not shutil.which("node") or not shutil.which("npm"):
        return "no node/npm (apt-get install nodejs npm)"
    return None


def install_firefox_driver() -> None:
    """`npm ci` the pinned puppeteer-core once (CI does it in .ci/run)."""
    if (FIREFOX_DIR / "node_modules" / "puppeteer-core").is_dir():
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                   cwd=FIREFOX_DIR, check=True, timeout=600,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class FirefoxDriver:
    """The node program holding one Firefox; each `open` is a separate person."""

    def __init__(self) -> None:
        install_firefox_driver()
        self._stderr: list[str] = []
        self.process = subprocess.Popen(
            ["node", str(FIREFOX_DIR / "driver.mjs")], cwd=FIREFOX_DIR,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=dict(os.environ, AHOY_FIREFOX=FIREFOX))
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self._lock = threading.Lock()
        self.version = self.call({"op": "version"})

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line)

    def call(self, command: dict[str, Any]) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        with self._lock:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the Firefox driver exited: " + "".join(self._stderr[-20:]))
        reply = json.loads(line)
        if "error" in reply:
            raise AssertionError(f"firefox: {command.get('op')} {command.get('sel', command.get('expr', ''))}: "
                                 f"{reply['error'][:2000]}")
        return reply["ok"]

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class FirefoxPhone(EnginePhone):
    engine = "firefox"

    def __init__(self, driver: FirefoxDriver, url: str) -> None:
        self.driver = driver
        self.page = driver.call({"op": "open", "url": url})

    def _call(self, op: str, **fields: Any) -> Any:
        return self.driver.call({"op": op, "page": self.page, **fields})

    def goto(self, url: str) -> None:
        self._call("goto", url=url)

    def evaluate(self, expression: str) -> Any:
        return self._call("eval", expr=expression)

    def click(self, selector: str, timeout: float = 15.0) -> None:
        self._call("click", sel=selector, timeout=int(timeout * 1000))

    def fill(self, selector: str, text: str) -> None:
        self._call("fill", sel=selector, text=text)

    def upload(self, selector: str, path: Path) -> None:
        self._call("upload", sel=selector, files=[str(path)])

    def errors(self) -> list[str]:
        return list(self._call("errors"))

    def close(self) -> None:
        self._call("close")


# --- WebKit -----------------------------------------------------------------

def minibrowser() -> str | None:
    return next((p for p in MINIBROWSER_CANDIDATES if os.path.exists(p)), None)


def webkit_missing() -> str | None:
    """Why WebKit tests cannot run here, or None."""
    if not os.path.exists(WEBKIT_DRIVER):
        return f"no WebKitWebDriver at {WEBKIT_DRIVER} (apt-get install webkit2gtk-driver)"
    if minibrowser() is None:
        return "no WebKitGTK MiniBrowser (apt-get install webkit2gtk-driver)"
    if not shutil.which("Xvfb"):
        return "no Xvfb (apt-get install xvfb)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "no selenium (pip install -r requirements-dev.txt)"
    return None


class Xvfb:
    """A private X display; Xvfb picks a free number itself (-displayfd)."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x900x24", "-nolisten", "tcp"],
            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as r:
            number = r.readline().strip()
        if not number:
            self.process.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = ":" + number

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class WebKitPhone(EnginePhone):
    """One MiniBrowser session (its own storage: one person)."""

    engine = "webkit"

    def __init__(self, display: str, url: str) -> None:
        from selenium import webdriver

        options = webdriver.WebKitGTKOptions()
        options.binary_location = minibrowser()
        options.add_argument("--automation")
        options.set_capability("acceptInsecureCerts", True)
        service = webdriver.WebKitGTKService(
            executable_path=WEBKIT_DRIVER, env=dict(os.environ, DISPLAY=display))
        self.driver = webdriver.WebKitGTK(options=options, service=service)
        self.driver.set_window_size(390, 844)
        self.driver.set_script_timeout(20)
        self.driver.get(url)
        self._hook_errors()

    def _hook_errors(self) -> None:
        # WebDriver classic has no console log for WebKitGTK: keep uncaught errors in the page.
        self.driver.execute_script(
            "if (!window.__errors) { window.__errors = [];"
            " addEventListener('error', (e) => window.__errors.push(String(e.message)));"
            " addEventListener('unhandledrejection', (e) => window.__errors.push("
            "'unhandled: ' + String(e.reason && e.reason.message || e.reason))); }")

    def goto(self, url: str) -> None:
        self.driver.get(url)
        self._hook_errors()

    def evaluate(self, expression: str) -> Any:
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve().then(() => ({expression})).then(done, (e) => done({{__error: String(e)}}));")

    def click(self, selector: str, timeout: float = 15.0) -> None:
        from selenium.webdriver.common.by import By

        self.wait_visible(selector, timeout)
        self.driver.find_element(By.CSS_SELECTOR, selector).click()

    def fill(self, selector: str, text: str) -> None:
        from selenium.webdriver.common.by import By

        self.wait_visible(selector)
        element = self.driver.find_element(By.CSS_SELECTOR, selector)
        element.clear()
        element.send_keys(text)

    def upload(self, selector: str, path: Path) -> None:
        from selenium.webdriver.common.by import By

        # A file input needs no interaction (WebDriver's file upload): hidden is fine.
        self.wait_js(f"!!document.querySelector({json.dumps(selector)})")
        self.driver.find_element(By.CSS_SELECTOR, selector).send_keys(str(path))

    def errors(self) -> list[str]:
        return list(self.driver.execute_script(
            "return (window.__errors || []).splice(0)") or [])

    def close(self) -> None:
        self.driver.quit()
