"""Per-box secrets: the admin password (stored as a hash) and the TURN secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path

from provisioning.config import admin_password_problem
from provisioning.datadir import DataDir, write_file

# scrypt with n=2**14, r=8 takes ~16 MiB and well under a second on a Pi 3.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# No 0/O, 1/l/I: the generated password is read off a screen or a text file.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PASSWORD_GROUPS, PASSWORD_GROUP_LENGTH = 4, 4


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


def has_admin_password(data_dir: Path) -> bool:
    return DataDir(data_dir).admin_password.exists()


def verify_admin_password(data_dir: Path, password: str) -> bool:
    """True if `password` is the box's admin password. False when none is set."""
    try:
        stored = json.loads(DataDir(data_dir).admin_password.read_text())
    except (FileNotFoundError, ValueError):
        return False
    return isinstance(stored, dict) and password_matches(stored, password)


def read_turn_secret(data_dir: Path) -> str | None:
    """The TURN secret if the apply step has made one; never creates it.

    For the service, which signs short-lived TURN credentials with it
    (`turn_credentials`) and should not invent a secret coturn does not know.
    """
    try:
        secret = DataDir(data_dir).turn_secret.read_text().strip()
    except OSError:
        return None
    return secret if len(secret) >= 32 else None


def turn_secret(data_dir: Path) -> str:
    """The box's TURN secret, made on first use and kept in the data dir."""
    path = DataDir(data_dir).turn_secret
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if len(existing) >= 32:
        return existing
    secret = secrets.token_urlsafe(32)
    write_file(path, (secret + "\n").encode(), mode=0o600)
    return secret


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
