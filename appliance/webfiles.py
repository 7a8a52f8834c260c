"""Static files sent small over the air: a gzip copy made once, and strong ETags.

On a hotspot shared by a crew, airtime is the scarce thing. Each text file of a
folder (webclient/app, webclient/admin) is read once at start, with its SHA-256
as its strong ETag; its gzip copy is made once and kept in the data folder
(`webcache/<folder>/<sha256>.gz`, checked against the hash when read back), so
the box never compresses per request and only recompresses after an update.

A browser that accepts gzip gets the copy (`Content-Encoding: gzip`, its own
ETag); any other client gets the file as it is. Both carry `Vary:
Accept-Encoding`. A browser that has a file revalidates it and gets `304 Not
Modified` without the body; a changed file has a new hash, so a new ETag.

Files are also re-read when they change on disk (development: someone editing
the app while the service runs); on the box the root file system is read-only.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import mimetypes
import os
import tempfile
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

from flask import Request, Response, abort
from werkzeug.security import safe_join

log = logging.getLogger(__name__)

# Types worth compressing; images such as PNG are compressed already.
COMPRESSIBLE = ("text/", "application/javascript", "application/json",
                "application/manifest+json", "image/svg+xml")
GZIP_LEVEL = 9
GZIP_SUFFIX = "-gzip"  # the gzip copy's ETag is the file's, with this suffix
VERSION_CHARS = 16  # of the folder's version (hex of a SHA-256)


@dataclass(frozen=True)
class StaticFile:
    """One file of the folder as it is sent: the bytes, and the gzip copy if it is smaller."""

    data: bytes
    digest: str  # SHA-256 of `data`, hex
    mimetype: str
    mtime_ns: int
    gzipped: bytes | None  # None: not compressible, or no smaller

    @property
    def compressible(self) -> bool:
        return self.mimetype.startswith(COMPRESSIBLE)

    @property
    def etag(self) -> str:
        return self.digest[:32]


def gzip_copy(data: bytes) -> bytes:
    """The same bytes for the same input (no time or name in the header)."""
    return gzip.compress(data, GZIP_LEVEL, mtime=0)


def keep(path: Path, packed: bytes) -> None:
    """Write a copy whole under its final name (a temporary file renamed over it).

    Not synced, on purpose: fsync per file made the first start after an update
    slow on an SD card, and a copy torn by a power cut fails its check when read
    back (`read_gzip_copy`) and is simply made again.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(packed)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def read_gzip_copy(path: Path, data: bytes, digest: str) -> bytes | None:
    """A kept gzip copy, if it decompresses to exactly `data`; None otherwise."""
    try:
        with path.open("rb") as handle:
            packed = handle.read(len(data) + 1024)
    except OSError:
        return None
    try:
        unpacker = zlib.decompressobj(wbits=31)  # a gzip member
        unpacked = unpacker.decompress(packed, len(data) + 1)
    except zlib.error:
        return None
    if not unpacker.eof or len(unpacked) != len(data):
        return None
    if hashlib.sha256(unpacked).hexdigest() != digest:
        return None
    return packed


class StaticFolder:
    """The files of `folder`, each with its hash and gzip copy, kept in `cache` (a folder)."""

    def __init__(self, folder: Path, cache: Path,
                 naming: dict[str, Callable[[str, bytes], bytes]] | None = None) -> None:
        """`naming`: files sent as a function makes them of the folder's version
        and their bytes (a page naming its scripts under the version)."""
        self.folder = folder
        self.cache = cache
        self.naming = naming or {}
        self._files: dict[str, StaticFile] = {}
        # path -> ((version, hash of the file it was made from), the copy made)
        self._named: dict[str, tuple[tuple[str, str], StaticFile]] = {}
        self._version = ""
        self._lock = threading.Lock()
        kept: set[str] = set()
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                found = self._load(str(path))
                if found.gzipped is not None:
                    kept.add(found.digest + ".gz")
        for name in self.naming:
            named = self.current(name)
            if named is not None and named.gzipped is not None:
                kept.add(named.digest + ".gz")
        self._prune(kept)

    def _load(self, full: str) -> StaticFile:
        info = os.stat(full)
        data = Path(full).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        mimetype = mimetypes.guess_type(full)[0] or "application/octet-stream"
        found = StaticFile(data, digest, mimetype, info.st_mtime_ns, None)
        if found.compressible:
            kept = self.cache / f"{digest}.gz"
            packed = read_gzip_copy(kept, data, digest)
            if packed is None:
                packed = gzip_copy(data)
                if len(packed) < len(data):
                    try:
                        keep(kept, packed)
                    except OSError as exc:  # a full or read-only data folder: keep it in memory
                        log.warning("cannot keep the compressed copy of %s: %s", full, exc)
            if len(packed) < len(data):
                found = StaticFile(data, digest, mimetype, info.st_mtime_ns, packed)
        with self._lock:
            self._files[full] = found
        return found

    def _prune(self, kept: set[str]) -> None:
        """Remove the copies of files that are no longer there (after an update), and
        half-written ones."""
        try:
            names = os.listdir(self.cache)
        except OSError:
            return
        for name in names:
            if name not in kept:
                try:
                    (self.cache / name).unlink()
                except OSError:
                    pass

    def get(self, path: str) -> StaticFile | None:
        """The file at `path` inside the folder; None if there is none (or it leaves the folder)."""
        full = safe_join(str(self.folder), path)
        if full is None:
            return None
        try:
            info = os.stat(full)
        except (OSError, ValueError):
            return None
        if not S_ISREG(info.st_mode):
            return None
        with self._lock:
            found = self._files.get(full)
        if found is None or found.mtime_ns != info.st_mtime_ns or len(found.data) != info.st_size:
            found = self._load(full)
        return found

    def version(self) -> str:
        """The folder's version: a hash of every file's path and hash (re-read
        when a file changed on disk), so any change of any file changes it."""
        whole = hashlib.sha256()
        for path in sorted(self.folder.rglob("*")):
            found = self.get(str(path.relative_to(self.folder)))
            if found is not None:
                whole.update(f"{path.relative_to(self.folder)}\0{found.digest}\n".encode())
        self._version = whole.hexdigest()[:VERSION_CHARS]
        return self._version

    def is_version(self, version: str) -> bool:
        """Whether `version` is the folder's, as last worked out (each page asks for
        it afresh; its files then ask 25 times without reading the folder again)."""
        return version == (self._version or self.version()) or version == self.version()

    def current(self, path: str) -> StaticFile | None:
        """The file at `path` as it is sent now: for a file in `naming`, as made
        for the folder's current version (made and compressed once per version,
        the copy kept in the cache folder like the others), else as it is."""
        if path not in self.naming:
            return self.get(path)
        version = self.version()
        found = self.get(path)
        if found is None:
            return None
        with self._lock:
            kept = self._named.get(path)
        if kept is not None and kept[0] == (version, found.digest):
            return kept[1]
        data = self.naming[path](version, found.data)
        digest = hashlib.sha256(data).hexdigest()
        made = StaticFile(data, digest, found.mimetype, found.mtime_ns, None)
        if made.compressible:
            copy = self.cache / f"{digest}.gz"
            packed = read_gzip_copy(copy, data, digest)
            if packed is None:
                packed = gzip_copy(data)
                if len(packed) < len(data):
                    try:
                        keep(copy, packed)
                    except OSError as exc:
                        log.warning("cannot keep the compressed copy of %s: %s", path, exc)
            if len(packed) < len(data):
                made = StaticFile(data, digest, found.mimetype, found.mtime_ns, packed)
        with self._lock:
            self._named[path] = ((version, found.digest), made)
        return made

    def send(self, path: str, request: Request) -> Response:
        """Answer a GET for `path`: gzip if the client takes it, 304 if it has it; else 404."""
        found = self.current(path)
        if found is None:
            abort(404)
        use_gzip = found.gzipped is not None and request.accept_encodings["gzip"] > 0
        body = found.gzipped if use_gzip and found.gzipped is not None else found.data
        response = Response(body, mimetype=found.mimetype)
        if use_gzip:
            response.headers["Content-Encoding"] = "gzip"
        if found.compressible:
            response.vary.add("Accept-Encoding")
        # The strong ETag is the validator (no Last-Modified: 46 bytes a file for nothing).
        response.set_etag(found.etag + (GZIP_SUFFIX if use_gzip else ""))
        # No byte ranges: the files are small, and a range of a gzip copy is of no
        # use to anyone (so no Accept-Ranges header on every file either).
        response.make_conditional(request)
        return response
