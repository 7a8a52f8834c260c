"""The web app over the air: gzip copies made once and kept, strong ETags, 304s, plain for
clients that do not take gzip."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import pytest
from flask import Flask

from appliance import webapp, webfiles
from appliance.app import create_app
from appliance.settings import Settings

REPO = Path(__file__).resolve().parents[2]
GZIP = {"Accept-Encoding": "gzip, deflate, br"}


def app_files() -> list[str]:
    folder = REPO / "webclient" / "app"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def webclient(tmp_path: Path) -> Path:
    """A copy of webclient/, so tests can change files."""
    copy = tmp_path / "webclient"
    shutil.copytree(REPO / "webclient", copy)
    return copy


def make_app(data_dir: Path, webclient: Path | None = None) -> Flask:
    if webclient is None:
        return create_app(Settings(data_dir=data_dir, dev=True))
    return create_app(Settings(data_dir=data_dir, dev=True, webclient_dir=webclient))


def url(name: str) -> str:
    return "/" if name == "index.html" else "/" + name


def as_sent(name: str, data: bytes, app: Flask) -> bytes:
    """The file as the box sends it: the page and the worker name the app's version."""
    if name not in ("index.html", "sw.js"):
        return data
    version = webapp.files(app).version()
    return (webapp.page_naming if name == "index.html" else webapp.worker_of)(version, data)


def test_every_text_file_comes_gzipped_and_decompresses_to_the_file(tmp_path: Path) -> None:
    app = make_app(tmp_path / "data")
    client = app.test_client()
    compressed = 0
    for name in app_files():
        original = as_sent(name, (REPO / "webclient" / "app" / name).read_bytes(), app)
        response = client.get(url(name), headers=GZIP)
        assert response.status_code == 200, name
        if name.endswith(".png"):
            assert "Content-Encoding" not in response.headers, name
            assert response.data == original
            continue
        assert response.headers["Content-Encoding"] == "gzip", name
        assert "Accept-Encoding" in response.headers["Vary"], name
        assert len(response.data) < len(original), name
        assert gzip.decompress(response.data) == original, name
        compressed += 1
    assert compressed >= 20


@pytest.mark.parametrize("accept", [None, "identity", "br", "gzip;q=0, deflate"])
def test_clients_that_do_not_take_gzip_get_the_file_as_it_is(tmp_path: Path,
                                                            accept: str | None) -> None:
    app = make_app(tmp_path / "data")
    client = app.test_client()
    headers = {"Accept-Encoding": accept} if accept is not None else {}
    for name in ("index.html", "app.js", "style.css", "sw.js"):
        response = client.get(url(name), headers=headers)
        assert response.status_code == 200
        assert "Content-Encoding" not in response.headers, (name, accept)
        assert response.data == as_sent(name, (REPO / "webclient" / "app" / name).read_bytes(),
                                         app)
        assert "Accept-Encoding" in response.headers["Vary"]
    assert client.get("/sw.js", headers=headers).headers["Service-Worker-Allowed"] == "/"


def test_a_returning_browser_revalidates_and_gets_304_without_the_body(tmp_path: Path) -> None:
    client = make_app(tmp_path / "data").test_client()
    for headers in (GZIP, {}):
        first = client.get("/app.js", headers=headers)
        etag = first.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")  # strong
        again = client.get("/app.js", headers={**headers, "If-None-Match": etag})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == etag
        assert "Accept-Encoding" in again.headers["Vary"]
    plain, packed = client.get("/app.js"), client.get("/app.js", headers=GZIP)
    # Two representations, two strong validators.
    assert plain.headers["ETag"] != packed.headers["ETag"]


def test_a_changed_file_gets_a_new_etag_and_is_sent_again(tmp_path: Path,
                                                          webclient: Path) -> None:
    client = make_app(tmp_path / "data", webclient).test_client()
    before = client.get("/chat.js", headers=GZIP)
    changed = webclient / "app" / "chat.js"
    changed.write_bytes(changed.read_bytes() + b"\n// a new version of the box\n")
    after = client.get("/chat.js", headers={**GZIP, "If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert gzip.decompress(after.data) == changed.read_bytes()
    # The same content started afresh has the same ETag: it depends on the bytes only.
    restarted = make_app(tmp_path / "data", webclient).test_client()
    assert restarted.get("/chat.js", headers=GZIP).headers["ETag"] == after.headers["ETag"]


def test_the_page_names_scripts_under_the_apps_version_kept_for_a_year(tmp_path: Path) -> None:
    app = make_app(tmp_path / "data")
    client = app.test_client()
    version = webapp.files(app).version()
    page = client.get("/").get_data(as_text=True)
    assert f'<script type="module" src="/v/{version}/app.js">' in page
    assert f'href="/v/{version}/style.css"' in page
    assert 'src="/app.js"' not in page and 'href="/style.css"' not in page
    assert client.get("/").headers["Cache-Control"] == "no-cache"
    assert f"const VERSION = '{version}';" in client.get("/sw.js").get_data(as_text=True)
    for name in ("app.js", "chat.js", "style.css"):
        kept = client.get(f"/v/{version}/{name}", headers=GZIP)
        assert kept.status_code == 200
        assert kept.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert gzip.decompress(kept.data) == (REPO / "webclient" / "app" / name).read_bytes()
        # Under its stable name (pages from before this change ask for it) it is
        # never used without asking.
        assert client.get("/" + name).headers["Cache-Control"] == "no-cache"
    # Every script the page and the worker name is in the worker's list.
    worker = (REPO / "webclient" / "app" / "sw.js").read_text()
    scripts = {p.name for p in (REPO / "webclient" / "app").glob("*.js")} - {"sw.js"}
    assert all(f"'{name}'" in worker for name in scripts | {"style.css"})


def test_after_an_update_a_returning_page_names_the_new_scripts_at_once(
        tmp_path: Path, webclient: Path) -> None:
    app = make_app(tmp_path / "data", webclient)
    client = app.test_client()
    before = client.get("/", headers=GZIP)
    old = webapp.files(app).version()
    worker_before = client.get("/sw.js").data
    changed = webclient / "app" / "net.js"
    changed.write_bytes(changed.read_bytes() + b"\n// a new version of the box\n")
    # The page is always revalidated: it has changed, and names a new version.
    again = client.get("/", headers={**GZIP, "If-None-Match": before.headers["ETag"]})
    assert again.status_code == 200
    new = webapp.files(app).version()
    assert new != old
    page = gzip.decompress(again.data).decode()
    assert f"/v/{new}/app.js" in page and f"/v/{old}/" not in page
    # Every script under the new version is the new one (net.js changed; the
    # others are the same bytes under a new name, fetched once).
    assert client.get(f"/v/{new}/net.js").data == changed.read_bytes()
    # A page still open from before asks for a script it had not loaded yet:
    # it gets the current one, which no browser may keep under the old name.
    stale = client.get(f"/v/{old}/net.js")
    assert stale.data == changed.read_bytes() and stale.headers["Cache-Control"] == "no-cache"
    # The worker changed too (a browser then installs it, with a new cache).
    worker = client.get("/sw.js").data
    assert worker != worker_before and f"const VERSION = '{new}';".encode() in worker


def test_gzip_copies_are_made_at_start_never_per_request(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_app(tmp_path / "data").test_client()

    def refuse(data: bytes) -> bytes:
        raise AssertionError("compressed while serving a request")

    monkeypatch.setattr(webfiles, "gzip_copy", refuse)
    for name in app_files():
        assert client.get(url(name), headers=GZIP).status_code == 200
    for name in ("", "main.js", "admin.css"):
        assert client.get("/admin/" + name, headers=GZIP).status_code == 200


def test_copies_are_kept_in_the_data_folder_and_checked_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_app(tmp_path / "data")
    kept = sorted((tmp_path / "data" / "webcache" / "app").glob("*.gz"))
    assert len(kept) >= 20
    assert (tmp_path / "data" / "webcache" / "admin").is_dir()
    # A second start makes nothing again: every copy is read back and checked.
    made: list[int] = []
    real = webfiles.gzip_copy
    monkeypatch.setattr(webfiles, "gzip_copy", lambda data: made.append(1) or real(data))
    make_app(tmp_path / "data")
    assert made == []
    # A damaged copy (power cut, bad card) is noticed and made again.
    kept[0].write_bytes(kept[0].read_bytes()[:20])
    kept[1].write_bytes(b"")
    kept[2].write_bytes(gzip.compress(b"something else entirely", mtime=0))
    app = make_app(tmp_path / "data")
    client = app.test_client()
    assert len(made) == 3
    for name in app_files():
        response = client.get(url(name), headers=GZIP)
        if response.headers.get("Content-Encoding") == "gzip":
            assert gzip.decompress(response.data) == as_sent(
                name, (REPO / "webclient" / "app" / name).read_bytes(), app)


def test_copies_of_files_that_are_gone_are_removed(tmp_path: Path, webclient: Path) -> None:
    make_app(tmp_path / "data", webclient)
    cache = tmp_path / "data" / "webcache" / "app"
    before = {p.name for p in cache.glob("*.gz")}
    gone = hashlib.sha256((webclient / "app" / "search.js").read_bytes()).hexdigest() + ".gz"
    (webclient / "app" / "search.js").unlink()
    (cache / ".chat.js.gz.x1y2.tmp").write_bytes(b"cut short by a power cut")
    make_app(tmp_path / "data", webclient)
    after = {p.name for p in cache.iterdir()}
    # search.js's copy is gone; the page and the worker name a new version:
    # their copies for the old one are replaced.
    assert gone in before and gone not in after
    assert len(after) == len(before) - 1 and len(after - before) == 2


def test_a_read_only_data_folder_still_serves_gzip(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def cannot_write(path: Path, packed: bytes) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(webfiles, "keep", cannot_write)
    client = make_app(tmp_path / "data").test_client()
    response = client.get("/style.css", headers=GZIP)
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.data) == (REPO / "webclient" / "app" / "style.css").read_bytes()


@pytest.mark.parametrize("path", [
    "/../appliance/app.py", "/..%2fappliance%2fapp.py", "/%2e%2e/%2e%2e/etc/passwd",
    "/icons/../../../appliance/app.py", "/app.js%00.html", "/nothing.js",
    "/icons",
])
def test_nothing_outside_the_app_folder_is_served(tmp_path: Path, path: str) -> None:
    response = make_app(tmp_path / "data").test_client().get(path, headers=GZIP)
    assert response.status_code in (400, 404), path
    assert b"def create_app" not in response.data and b"root:" not in response.data


def test_the_policy_goes_on_pages_and_the_worker_not_on_scripts_they_load(tmp_path: Path) -> None:
    client = make_app(tmp_path / "data").test_client()
    for path in ("/", "/sw.js", "/icons/icon.svg", "/admin/", "/api/info"):
        policy = client.get(path, headers=GZIP).headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
    for path in ("/app.js", "/chat.js", "/style.css", "/admin/main.js", "/admin/admin.css"):
        response = client.get(path, headers=GZIP)
        assert response.status_code == 200 and "Content-Security-Policy" not in response.headers
        assert response.headers["X-Content-Type-Options"] == "nosniff", path


def test_only_pages_say_they_may_not_be_framed_and_no_file_offers_byte_ranges(
        tmp_path: Path) -> None:
    client = make_app(tmp_path / "data").test_client()
    for path in ("/", "/admin/"):
        assert client.get(path, headers=GZIP).headers["X-Frame-Options"] == "DENY", path
    for path in ("/app.js", "/style.css", "/icons/icon.svg", "/sw.js", "/api/info"):
        response = client.get(path, headers=GZIP)
        assert response.status_code == 200 and "X-Frame-Options" not in response.headers, path
    # A range of a gzip copy is of no use: a Range request gets the whole file.
    for path in ("/", "/app.js", "/icons/icon.svg"):
        whole = client.get(path, headers=GZIP)
        asked = client.get(path, headers={**GZIP, "Range": "bytes=0-9"})
        assert "Accept-Ranges" not in whole.headers, path
        assert asked.status_code == 200 and asked.data == whole.data, path
