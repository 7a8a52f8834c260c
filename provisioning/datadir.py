"""Where the box keeps its state on the data partition, and how files get there.

The data partition is the only place that changes; wiping it is a factory
reset. Files are written atomically and synced, so pulling the plug leaves
either the old or the new version, never half of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("/data/ahoy")
DEFAULT_BOOT_CONFIG = Path("/boot/firmware/ahoy.txt")
ADMIN_PASSWORD_NOTE = "ahoy-admin-password.txt"


@dataclass(frozen=True)
class DataDir:
    """Named paths inside the data directory."""

    root: Path

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def admin_password(self) -> Path:
        """scrypt hash of the admin password (JSON), never the password itself."""
        return self.secrets / "admin-password.json"

    @property
    def turn_secret(self) -> Path:
        """coturn's static-auth-secret; the service signs TURN credentials with it."""
        return self.secrets / "turn-secret"

    @property
    def tls(self) -> Path:
        """The box CA and server certificate (see provisioning.tls)."""
        return self.root / "tls"

    @property
    def last_good_config(self) -> Path:
        return self.root / "config" / "ahoy.last-good.txt"

    @property
    def requested_changes(self) -> Path:
        """Settings changed on the admin page, waiting for the privileged apply (JSON)."""
        return self.root / "config" / "requested-changes.json"

    @property
    def config_status(self) -> Path:
        """Which config is in force and what was wrong with the file (JSON)."""
        return self.root / "config" / "status.json"


def write_file(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Atomically write `data` unless the file already holds it; True if it changed."""
    try:
        if path.read_bytes() == data:
            if (path.stat().st_mode & 0o777) != mode:
                path.chmod(mode)
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _sync_dir(path.parent)
    return True


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (FAT) do not sync directories
    finally:
        os.close(fd)
