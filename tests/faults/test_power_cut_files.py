"""Files on the data partition survive a power cut, and damaged ones never stop the hotspot.

After an ext4 abort the box's CA and certificate came back as 0-byte files and
`python -m provisioning apply` died before hostapd and dnsmasq got their
configs. Every file that matters is written atomically and durably, and a
damaged certificate, key or secret is made again.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from appliance.server import ensure_tls
from appliance.settings import Settings
from provisioning import credentials, datadir, tls
from provisioning.datadir import DataDir, write_file

REPO = Path(__file__).resolve().parents[2]
GARBAGE = {
    "empty": b"",
    "garbage": b"\x00\x13\xfe not a file at all \x00",
    "cut off": b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n",
}


class FsyncRecorder:
    """Stands in for os.fsync: records which path each call synced, in order with renames."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, str]] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            self.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
            real_fsync(fd)

        def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
            self.events.append(("rename", str(dst)))
            real_replace(src, dst)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)


def test_durable_write_syncs_the_file_renames_it_then_syncs_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "secrets" / "turn-secret"
    recorder = FsyncRecorder(monkeypatch)
    assert write_file(target, b"new secret\n", mode=0o600)
    synced_file, renamed, synced_folder = recorder.events[-3:]
    assert synced_file[0] == "fsync" and Path(synced_file[1]).parent == target.parent
    assert synced_file[1].endswith(".tmp")  # the data is on disk before the name points at it
    assert renamed == ("rename", str(target))
    assert synced_folder == ("fsync", str(target.parent))
    # The new folder's own entry was synced in its parent too.
    assert ("fsync", str(tmp_path)) in recorder.events
    assert target.read_bytes() == b"new secret\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(target.parent) == ["turn-secret"]


@pytest.mark.parametrize("fail_in", ["write", "fsync"])
def test_a_write_that_fails_halfway_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_in: str
) -> None:
    target = tmp_path / "ahoy.last-good.txt"
    write_file(target, b"wifi_name = Old Boat\n")
    real_write = os.write

    def write_half_then_fail(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    def fail(*_: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    if fail_in == "write":
        monkeypatch.setattr(os, "write", write_half_then_fail)
    else:
        monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        write_file(target, b"wifi_name = New Boat\nchannel = 11\n")
    assert target.read_bytes() == b"wifi_name = Old Boat\n"
    assert os.listdir(tmp_path) == ["ahoy.last-good.txt"]  # no temporary file left behind


def test_every_data_partition_writer_goes_through_the_durable_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CA, certificate, keys, secrets and config files all end in a synced folder."""
    recorder = FsyncRecorder(monkeypatch)
    data = tmp_path / "data"
    tls.ensure_certificates(DataDir(data).tls, "boat", ["ahoy.internal"], ["10.42.0.1"])
    credentials.turn_secret(data)
    credentials.set_admin_password(data, "sea shanty 42")
    renamed = [path for event, path in recorder.events if event == "rename"]
    store = DataDir(data)
    paths = tls.CertificatePaths(store.tls)
    for path in (paths.ca_cert, paths.ca_key, paths.server_cert, paths.server_key,
                 store.turn_secret, store.admin_password):
        assert str(path) in renamed
        after = recorder.events[recorder.events.index(("rename", str(path))):]
        assert ("fsync", str(path.parent)) in after
    for path in (paths.ca_key, paths.server_key, store.turn_secret, store.admin_password):
        assert path.stat().st_mode & 0o777 == 0o600


def _damage(path: Path, how: str) -> None:
    path.write_bytes(GARBAGE[how])


def _apply_dry_run(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    boot = tmp_path / "boot" / "ahoy.txt"
    if not boot.exists():
        boot.parent.mkdir(parents=True)
        boot.write_text("wifi_passphrase = correct horse\nadmin_password = sea shanty 42\n")
    return subprocess.run(
        [sys.executable, "-m", "provisioning", "apply", "--files-only",
         "--config", str(boot), "--data-dir", str(tmp_path / "data"),
         "--root", str(tmp_path / "root"), "--service-user", "no-such-user-here"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )


@pytest.mark.parametrize("how", sorted(GARBAGE))
def test_apply_remakes_a_damaged_ca_and_still_writes_the_hotspot_configs(
    tmp_path: Path, how: str
) -> None:
    first = _apply_dry_run(tmp_path)
    assert first.returncode == 0, first.stderr
    paths = tls.CertificatePaths(DataDir(tmp_path / "data").tls)
    old_ca = paths.ca_cert.read_bytes()
    for path in (paths.ca_cert, paths.ca_key, paths.server_cert, paths.server_key):
        _damage(path, how)
    (tmp_path / "root" / "etc" / "hostapd" / "wlan0.conf").unlink()
    (tmp_path / "root" / "etc" / "dnsmasq.d" / "ahoy.conf").unlink()

    again = _apply_dry_run(tmp_path)

    assert "Traceback" not in again.stderr
    assert again.returncode == 0, again.stderr
    assert "the box CA" in again.stderr and "was damaged" in again.stderr
    assert "phones that installed the old CA must install the new one" in again.stderr
    assert (tmp_path / "root" / "etc" / "hostapd" / "wlan0.conf").exists()
    assert (tmp_path / "root" / "etc" / "dnsmasq.d" / "ahoy.conf").exists()
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    assert paths.ca_cert.read_bytes() != old_ca
    server.verify_directly_issued_by(ca)
    status = json.loads(DataDir(tmp_path / "data").config_status.read_text())
    assert any("was damaged" in notice for notice in status["notices"])


@pytest.mark.parametrize("damaged", ["server.crt", "server.key"])
def test_a_damaged_server_certificate_is_reissued_from_the_same_ca(
    tmp_path: Path, damaged: str
) -> None:
    assert _apply_dry_run(tmp_path).returncode == 0
    paths = tls.CertificatePaths(DataDir(tmp_path / "data").tls)
    ca_before = paths.ca_cert.read_bytes()
    _damage(paths.folder / damaged, "empty")
    again = _apply_dry_run(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "the server certificate" in again.stderr and "made a new one" in again.stderr
    assert paths.ca_cert.read_bytes() == ca_before  # phones keep trusting the box
    tls.ensure_certificates(paths.folder, "ahoy", ["ahoy.internal", "ahoy.local"],
                            ["10.42.0.1"], notes=(notes := []))
    assert notes == []  # repaired for good


@pytest.mark.parametrize("how", sorted(GARBAGE))
def test_apply_replaces_damaged_secrets_and_says_so(tmp_path: Path, how: str) -> None:
    assert _apply_dry_run(tmp_path).returncode == 0
    store = DataDir(tmp_path / "data")
    _damage(store.turn_secret, how)
    _damage(store.admin_password, how)
    again = _apply_dry_run(tmp_path)
    assert "Traceback" not in again.stderr
    assert again.returncode == 0, again.stderr
    assert "TURN secret" in again.stderr
    secret = credentials.read_turn_secret(store.root)
    assert secret is not None and secret in (tmp_path / "root/etc/turnserver.conf").read_text()
    assert store.turn_secret.stat().st_mode & 0o777 == 0o600
    # The damaged admin password is replaced by a new one, shown like at first start.
    assert "Ahoy admin password:" in again.stdout
    assert credentials.has_admin_password(store.root)
    assert "admin password was damaged" in again.stdout
    assert (tmp_path / "boot" / datadir.ADMIN_PASSWORD_NOTE).exists()


@pytest.mark.parametrize("how", sorted(GARBAGE))
def test_the_service_starts_with_a_damaged_ca_or_uploaded_certificate(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data", dev=True)
    cert, key = ensure_tls(settings)
    paths = tls.CertificatePaths(settings.tls_dir)
    for path in (paths.ca_cert, paths.ca_key, paths.server_cert, paths.server_key):
        _damage(path, how)
    (settings.tls_dir / "custom.crt").write_bytes(GARBAGE[how])
    (settings.tls_dir / "custom.key").write_bytes(GARBAGE[how])

    cert, key = ensure_tls(settings)

    assert (cert, key) == (str(paths.server_cert), str(paths.server_key))
    import ssl

    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "the box CA" in messages and "was damaged" in messages
    assert "the uploaded certificate cannot be used" in messages
