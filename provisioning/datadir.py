"""Where the box keeps its state on the data partition, and how files get there.

The data partition is the only place that changes; wiping it is a factory
reset. Files are written atomically and synced, so pulling the plug leaves
either the old or the new version, never half of one.
"""

from __future__ import annotations

import os
import tempfile
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
    def site_secret(self) -> Path:
        """The site secret moved out of ahoy.txt; the boxes of a site derive their
        NATS credentials from it (provisioning.site)."""
        return self.secrets / "site-secret"

    @property
    def site_backbone(self) -> Path:
        """What the backbone heard: this box and the other boxes of its site (JSON,
        written by provisioning.backbone)."""
        return self.root / "site" / "backbone.json"

    @property
    def chosen_hotspot_subnet(self) -> Path:
        """The hotspot subnet this box moved to because another box of the site had
        its first choice (provisioning.backbone); used unless ahoy.txt pins one."""
        return self.root / "site" / "hotspot-subnet"

    @property
    def chosen_channel(self) -> Path:
        """The hotspot channel this box of a site chose after scanning for its neighbours
        (provisioning.channelscan); used unless ahoy.txt sets `channel`."""
        return self.root / "site" / "channel"

    @property
    def tls(self) -> Path:
        """The box CA and server certificate (see provisioning.tls)."""
        return self.root / "tls"

    @property
    def requests(self) -> Path:
        """Request files from the service to the privileged step (see provisioning.requests)."""
        return self.root / "requests"

    @property
    def last_good_config(self) -> Path:
        return self.root / "config" / "ahoy.last-good.txt"

    @property
    def boot_file_copy(self) -> Path:
        """The owner's ahoy.txt as it was at the last apply, byte for byte: put back on
        the boot partition when an update image (which has none) was flashed over it."""
        return self.root / "config" / "ahoy.txt.copy"

    @property
    def requested_changes(self) -> Path:
        """Settings changed on the admin page, waiting for the privileged apply (JSON)."""
        return self.root / "config" / "requested-changes.json"

    @property
    def config_status(self) -> Path:
        """Which config is in force and what was wrong with the file (JSON)."""
        return self.root / "config" / "status.json"


def write_file(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write `data` to `path` atomically and durably, unless it already holds it.

    The bytes go to a temporary file in the same folder, which is synced,
    renamed over `path`, and then the folder is synced: after a power cut the
    file holds the old bytes or the new ones, never a mix or nothing. A failure
    leaves the old file as it was. `mode` (0600 for secrets) is set on the new
    file; when root replaces a file it keeps the old one's owner, so the service
    can still read its secrets. Returns True if the file was written.

    On FAT (the boot partition, where ahoy.txt lives) neither holds by itself:
    syncing its folder does not write the renamed entry, and the plug test found
    ahoy.txt empty after a power cut seconds after a settings change. There the
    whole system is synced after the rename (FAT's tables and folder included);
    configstore puts an emptied ahoy.txt back from its copy on the data partition.
    """
    try:
        if path.read_bytes() == data:
            if (path.stat().st_mode & 0o777) != mode:
                path.chmod(mode)
            return False
    except FileNotFoundError:
        pass
    _make_folder(path.parent)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)
        owner = _owner_to_keep(path)
        if owner is not None:
            os.fchown(fd, *owner)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)
    if file_system_type(path.parent) in FOLDERS_NOT_SYNCED:
        os.sync()
    return True


# File systems whose folder fsync does not make a rename durable.
FOLDERS_NOT_SYNCED = frozenset({"vfat", "msdos", "fat", "exfat"})


def file_system_type(folder: Path, mountinfo: str | None = None) -> str:
    """The type of the file system `folder` is on, from /proc/self/mountinfo
    ("" when it cannot be told)."""
    try:
        text = mountinfo if mountinfo is not None else Path(
            "/proc/self/mountinfo").read_text()
        where = str(folder.resolve())
    except OSError:
        return ""
    best, kind = "", ""
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        after = line.split(" - ", 1)[1].split()
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if after and inside and len(point) >= len(best):
            best, kind = point, after[0]
    return kind


def _owner_to_keep(path: Path) -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_uid, info.st_gid


def _make_folder(folder: Path) -> None:
    """Create `folder` and its missing parents, each one's entry synced in its parent."""
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        sync_folder(new.parent)


def sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (FAT) do not sync folders
    finally:
        os.close(fd)
