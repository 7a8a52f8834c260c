"""Per-box secrets: the admin password (stored as a hash), the TURN secret and the site secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from pathlib import Path

from provisioning.config import admin_password_problem, site_secret_problem
from provisioning.datadir import ADMIN_PASSWORD_NOTE, DataDir, write_file

# scrypt with n=2**14, r=8 takes ~16 MiB and well under a second on a Pi 3.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# No 0/O, 1/l/I: the generated password is read off a screen or a text file.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PASSWORD_GROUPS, PASSWORD_GROUP_LENGTH = 4, 4
# What `secrets.token_urlsafe(32)` makes; anything else in the file is damage.
TURN_SECRET = re.compile(r"[A-Za-z0-9_-]{32,128}")

log = logging.getLogger(__name__)


def generate_admin_password() -> str:
    """A fresh password like "k7mq-x3tr-9bnc-waz4" (about 79 bits)."""
    groups = (
        "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_GROUP_LENGTH))
        for _ in range(PASSWORD_GROUPS)
    )
    return "-".join(groups)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32
    )


def hash_password(password: str) -> dict[str, object]:
    """The stored form of a password: scrypt parameters, salt and hash."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return {
        "algorithm": "scrypt",
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": base64.b64encode(salt).decode(),
        "hash": base64.b64encode(digest).decode(),
    }


def password_matches(stored: dict[str, object], password: str) -> bool:
    """Check `password` against a stored hash, in constant time."""
    try:
        if stored["algorithm"] != "scrypt":
            return False
        salt = base64.b64decode(str(stored["salt"]))
        expected = base64.b64decode(str(stored["hash"]))
        n, r, p = (int(str(stored[k])) for k in ("n", "r", "p"))
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), expected)


def set_admin_password(data_dir: Path, password: str) -> None:
    """Store a new admin password (as a hash). Raises ValueError with a readable reason."""
    problem = admin_password_problem(password)
    if problem:
        raise ValueError(problem)
    record = json.dumps(hash_password(password), indent=2) + "\n"
    write_file(DataDir(data_dir).admin_password, record.encode(), mode=0o600)


def write_admin_password_note(folder: Path, password: str, made: str) -> Path:
    """Write the admin password for a person to `folder`/ahoy-admin-password.txt.

    `made` says where the password came from, as a sentence. The note goes next
    to ahoy.txt on the boot partition (in development, into the data folder),
    written durably; raises OSError. Returns the note's path.
    """
    note = folder / ADMIN_PASSWORD_NOTE
    text = (
        "Ahoy admin password\r\n"
        "===================\r\n\r\n"
        f"    {password}\r\n\r\n"
        "Open the admin page (http://ahoy.internal/admin) and sign in with it.\r\n"
        f"{made} If you change the password on the\r\n"
        "admin page, this file is out of date: delete it. To reset a forgotten\r\n"
        "password, put a new one in ahoy.txt as admin_password = ... and restart.\r\n"
    )
    write_file(note, text.encode(), mode=0o600)
    return note


def stored_admin_password(data_dir: Path) -> dict[str, object] | None:
    """The stored admin password hash, None if there is none or the file is damaged."""
    try:
        stored = json.loads(DataDir(data_dir).admin_password.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("algorithm") != "scrypt":
        return None
    try:
        salt = base64.b64decode(str(stored["salt"]), validate=True)
        digest = base64.b64decode(str(stored["hash"]), validate=True)
        n, r, p = (int(str(stored[k])) for k in ("n", "r", "p"))
    except (KeyError, ValueError):
        return None
    if not (salt and len(digest) == 32 and n > 1 and r > 0 and p > 0):
        return None
    return stored


def has_admin_password(data_dir: Path) -> bool:
    """True if the box has a usable admin password (a damaged file counts as none)."""
    return stored_admin_password(data_dir) is not None


def admin_password_damaged(data_dir: Path) -> bool:
    """True if the admin password file is there but cannot be used (say, after a power cut)."""
    return DataDir(data_dir).admin_password.exists() and not has_admin_password(data_dir)


def verify_admin_password(data_dir: Path, password: str) -> bool:
    """True if `password` is the box's admin password. False when none is set."""
    stored = stored_admin_password(data_dir)
    return stored is not None and password_matches(stored, password)


def _read_turn_secret(path: Path) -> str | None:
    """The secret in `path`; None if there is none; ValueError if the file is damaged."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    secret = data.decode("ascii", errors="replace").strip()
    if not TURN_SECRET.fullmatch(secret):
        raise ValueError(f"{path} is damaged ({len(data)} bytes, not a secret)")
    return secret


def read_turn_secret(data_dir: Path) -> str | None:
    """The TURN secret if the apply step has made one; never creates it.

    For the service, which signs short-lived TURN credentials with it
    (`turn_credentials`) and should not invent a secret coturn does not know.
    """
    try:
        return _read_turn_secret(DataDir(data_dir).turn_secret)
    except (OSError, ValueError) as exc:
        log.warning("no TURN for calls: %s", exc)
        return None


def turn_secret(data_dir: Path) -> str:
    """The box's TURN secret, made on first use and kept in the data dir.

    A damaged secret file (empty, garbage) is replaced by a new secret, and the
    log says so; coturn and the service both pick up the new one.
    """
    path = DataDir(data_dir).turn_secret
    try:
        existing = _read_turn_secret(path)
    except ValueError as exc:
        log.warning("%s; made a new TURN secret", exc)
        existing = None
    if existing is not None:
        return existing
    secret = secrets.token_urlsafe(32)
    write_file(path, (secret + "\n").encode(), mode=0o600)
    return secret


def set_site_secret(data_dir: Path, secret: str) -> None:
    """Keep the site secret (moved out of ahoy.txt) on the data partition, mode 0600.

    Raises ValueError with a readable reason. The boxes of a site derive their
    NATS credentials from it, so it is kept as written, not as a hash.
    """
    problem = site_secret_problem(secret)
    if problem:
        raise ValueError(problem)
    write_file(DataDir(data_dir).site_secret, secret.encode("ascii"), mode=0o600)


def read_site_secret(data_dir: Path) -> str | None:
    """The site secret, None if none was ever set or the file is damaged."""
    try:
        secret = DataDir(data_dir).site_secret.read_bytes().decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None
    return None if site_secret_problem(secret) else secret


def turn_credentials(
    secret: str, user: str, ttl_seconds: int = 3600, now: float | None = None
) -> tuple[str, str]:
    """Short-lived TURN username and password for coturn's `use-auth-secret` scheme.

    The username is "<expiry unix time>:<user>", the password the base64 HMAC-SHA1
    of the username keyed with the shared secret (the "TURN REST API" draft).
    """
    expiry = int((time.time() if now is None else now) + ttl_seconds)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()
