"""One box's saved identity on this computer: device token, name, last-seen seqs and outbox."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .boxes import BoxAddress


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/ahoy``, else ``~/.config/ahoy``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ahoy"


class StateFile:
    """One box's device token, name, last-seen seqs and outbox, as private JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                self.data = loaded
        except (OSError, ValueError):
            pass  # no file yet, or a damaged one: start as a new device
        self.data.setdefault("since", {})
        self.data.setdefault("outbox", [])

    @classmethod
    def for_box(cls, box: BoxAddress) -> StateFile:
        return cls(config_dir() / f"{box.key}.json")

    @property
    def token(self) -> str | None:
        return self.data.get("token")

    @property
    def name(self) -> str | None:
        return self.data.get("name")

    @property
    def user_id(self) -> str | None:
        return self.data.get("user_id")

    @property
    def since(self) -> dict[str, int]:
        since: dict[str, int] = self.data["since"]
        return since

    @property
    def outbox(self) -> list[dict[str, Any]]:
        outbox: list[dict[str, Any]] = self.data["outbox"]
        return outbox

    def forget_identity(self) -> None:
        for key in ("token", "user_id"):
            self.data.pop(key, None)
        self.data["since"] = {}
        self.data["outbox"] = []

    def save(self) -> None:
        """Write atomically; the token is a password, so the file is 0600."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
