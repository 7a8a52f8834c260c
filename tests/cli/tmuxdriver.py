"""Drive a terminal program in a detached tmux session: type keys, read the screen.

Each `TmuxSession` runs on its own tmux server (``tmux -L <unique>``), so tests
never touch a person's tmux and can run side by side.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

TMUX = shutil.which("tmux")


class TmuxSession:
    """One program in a ``width`` × ``height`` tmux pane."""

    def __init__(self, command: Sequence[str], *, width: int = 100, height: int = 30,
                 env: Mapping[str, str] | None = None, cwd: str | Path | None = None) -> None:
        if TMUX is None:
            raise RuntimeError("tmux is not installed")
        self.socket = f"ahoytest-{uuid.uuid4().hex[:8]}"
        self.name = "t"
        self.command = list(command)
        self.width, self.height = width, height
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("TERM", "xterm-256color")
        self.env.setdefault("LANG", "C.UTF-8")
        self.env.pop("TMUX", None)  # we may run inside someone's tmux
        self.cwd = str(cwd) if cwd is not None else None

    def _tmux(self, *args: str, check: bool = True) -> str:
        assert TMUX is not None
        done = subprocess.run([TMUX, "-L", self.socket, *args], env=self.env, cwd=self.cwd,
                              capture_output=True, text=True, timeout=10)
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> TmuxSession:
        # -f /dev/null: no personal tmux.conf; remain-on-exit keeps a crashed
        # program's last screen readable.
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", self.name,
                   "-x", str(self.width), "-y", str(self.height),
                   shlex.join(self.command))
        self._tmux("set-option", "-t", self.name, "remain-on-exit", "on", check=False)
        return self

    def type(self, text: str) -> None:
        """Type ``text`` literally (no key names)."""
        self._tmux("send-keys", "-t", self.name, "-l", text)

    def press(self, *keys: str) -> None:
        """Press named keys: ``Enter``, ``Tab``, ``BTab``, ``PageUp``, ``C-c`` …"""
        self._tmux("send-keys", "-t", self.name, *keys)

    def line(self, text: str) -> None:
        """Type a line and press Enter."""
        self.type(text)
        self.press("Enter")

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def wait_for(self, wanted: str | Callable[[str], bool], timeout: float = 20.0) -> str:
        """The screen once it shows ``wanted`` (a text, or a test on the screen)."""
        test = (lambda s: wanted in s) if isinstance(wanted, str) else wanted
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if test(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"the screen never showed {wanted!r}; it shows:\n{screen}")

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))

    def pane_title(self) -> str:
        return self._tmux("display-message", "-p", "-t", self.name, "#{pane_title}").strip()

    def exited(self) -> bool:
        return self._tmux("display-message", "-p", "-t", self.name,
                          "#{pane_dead}", check=False).strip() == "1"

    def close(self) -> None:
        self._tmux("kill-server", check=False)

    def __enter__(self) -> TmuxSession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def ahoy_cli(box_url: str, name: str, config_dir: Path, *, width: int = 100, height: int = 30,
             extra_args: Sequence[str] = ()) -> TmuxSession:
    """The Ahoy terminal client joined to ``box_url`` as ``name`` (not started yet).

    ``config_dir`` becomes XDG_CONFIG_HOME, so the device token stays in the test.
    Use it as a context manager; ``wait_for("online")`` once it is up.
    """
    repo = Path(__file__).resolve().parents[2]
    return TmuxSession([sys.executable, "-m", "appliance.terminal", "--box", box_url,
                        "--name", name, *extra_args], width=width, height=height,
                       env={"XDG_CONFIG_HOME": str(config_dir)}, cwd=repo)
