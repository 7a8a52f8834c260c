"""A box's part in a site: its stable id, credentials derived from the site
secret, and the config of its own nats-server (see docs/site.md).

Every box of a site runs its own nats-server with JetStream on the data
partition; no server depends on another to accept its phones' messages. The
boxes' Ahoy services connect to each other's servers as clients, over TLS with
certificates signed by a site CA whose key is derived from `site_secret`, and
with a password derived from it too. A box with another secret has another CA
and another password: it is refused both ways.

Rendering is pure (config, box id and secret in, text out); `ensure_site_files`
writes the box id, the certificates and the rendered config on the data
partition.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.config import SITE_PORT, BoxConfig
from provisioning.datadir import DataDir, sync_folder, write_file

NATS_USER = "ahoy-box"
BOX_ID = re.compile(r"[0-9a-f]{8}")
# Bounds on what another box may make this one store or send (docs/site.md, Limits).
MAX_PAYLOAD = 256 * 1024
STREAM_MAX_BYTES = 1024 * 1024 * 1024
DUPLICATE_WINDOW_S = 600
CERT_DAYS = 3650
LOOPBACK = "127.0.0.1"
_LISTEN_LINE = re.compile(r'^listen: "([0-9.]+):([0-9]+)"$', re.MULTILINE)


def box_id(data_dir: Path) -> str:
    """This box's one id: 8 hex digits, made once and kept on the data partition.

    Everything that names the box uses it: the site's replication (its stream,
    its server's name, the positions `<box>:<n>` of its messages) and the
    backbone (its announcement, who keeps a contested subnet, its first
    link-local address). A factory reset (wiping the data partition) makes a
    new one: to the other boxes the box is then a new member of the site, and
    the positions its new stream numbers from 1 cannot be mistaken for the old
    ones. Provisioning, the backbone service and the Ahoy service may ask at
    the same moment on a first start: the first file linked into place wins.
    """
    path = site_dir(data_dir) / "box-id"
    for _ in range(3):
        try:
            existing = path.read_text().strip()
        except OSError:
            existing = ""
        if BOX_ID.fullmatch(existing):
            return existing
        made = secrets.token_hex(4)
        draft = path.with_name(f".box-id.{os.getpid()}.{made}")
        write_file(draft, (made + "\n").encode())
        try:
            if existing:  # a damaged file: replaced
                os.replace(draft, path)
                return made
            os.link(draft, path)  # fails if another process made it first
            sync_folder(path.parent)
            return made
        except FileExistsError:
            continue
        finally:
            draft.unlink(missing_ok=True)
    raise OSError(f"cannot make the box id in {path}")


def site_dir(data_dir: Path) -> Path:
    """Where the site's files live: box id, certificates, nats-server config and JetStream."""
    return DataDir(data_dir).root / "site"


def backbone_address(data_dir: Path) -> str | None:
    """This box's backbone address, as the backbone service took it and wrote it down
    (`backbone.json`, see provisioning.backbone); None before it has one."""
    try:
        status = json.loads(DataDir(data_dir).site_backbone.read_text())
        address = ipaddress.IPv4Address(str(status["box"]["backbone"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if address.is_unspecified or address.is_loopback else str(address)


def listen_address(data_dir: Path) -> str:
    """Where this box's nats-server listens: its backbone address only.

    Never 0.0.0.0: the hotspot side must not find a socket to knock at. Before
    the backbone service has taken an address the box is alone anyway, so the
    server listens on loopback until then (the backbone service asks for an
    apply when the address it has differs from the one rendered).
    """
    return backbone_address(data_dir) or LOOPBACK


def rendered_listen(paths: SitePaths) -> tuple[str, int] | None:
    """(address, port) the rendered nats-server config listens on; None without one.

    The service connects to its own server there, so the rendered config is the
    one place that says where the server is.
    """
    try:
        found = _LISTEN_LINE.search(paths.nats_config.read_text())
    except OSError:
        return None
    return (found.group(1), int(found.group(2))) if found else None


def server_name(config: BoxConfig, box: str) -> str:
    """The nats-server's name: stable for the life of the data partition."""
    return f"{config.site_name}-{box}"


def _derive(secret: str, site_name: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"ahoy-site|{site_name}|{purpose}".encode(),
                    hashlib.sha256).digest()


def nats_password(secret: str, site_name: str) -> str:
    """The password every box of the site uses on every other box's nats-server."""
    return base64.urlsafe_b64encode(_derive(secret, site_name, "nats password")).decode()[:40]


def secret_fingerprint(secret: str, site_name: str) -> str:
    """A short code that shows on every box's admin page: equal codes, equal secrets,
    without showing the secret."""
    return _derive(secret, site_name, "fingerprint").hex()[:8]


def _site_ca_key(secret: str, site_name: str) -> ec.EllipticCurvePrivateKey:
    curve = ec.SECP256R1()
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    value = int.from_bytes(_derive(secret, site_name, "ca key"), "big") % (order - 1) + 1
    return ec.derive_private_key(value, curve)


@dataclass(frozen=True)
class SitePaths:
    """The site's files on the data partition."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "tls" / "site-ca.crt"

    @property
    def cert(self) -> Path:
        return self.root / "tls" / "box.crt"

    @property
    def key(self) -> Path:
        return self.root / "tls" / "box.key"

    @property
    def nats_config(self) -> Path:
        return self.root / "nats-server.conf"

    @property
    def jetstream(self) -> Path:
        return self.root / "jetstream"


def make_certificates(secret: str, site_name: str, box: str) -> tuple[bytes, bytes, bytes]:
    """(site CA certificate, this box's certificate, its key), PEM.

    The CA's key is derived from the secret, so every box makes the same CA
    (same name, same key) and accepts the certificates the others sign with it.
    The box certificate is for both ends of a connection (server and client).
    """
    ca_key = _site_ca_key(secret, site_name)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Ahoy site {site_name}")])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(int.from_bytes(_derive(secret, site_name, "ca serial")[:8], "big"))
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=40 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{site_name}-{box}")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, start) - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"{site_name}-{box}.site")]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return ca_cert.public_bytes(pem), cert.public_bytes(pem), key_pem


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_nats_config(
    config: BoxConfig,
    box: str,
    secret: str,
    paths: SitePaths,
    *,
    listen: str = LOOPBACK,
    port: int = SITE_PORT,
    monitor_port: int | None = None,
) -> str:
    """nats-server's config for this box.

    One server on its own (no routes, no leaf nodes: the boxes' services
    connect to each other's servers as clients, see docs/site.md), JetStream
    in the data partition, TLS with client certificates from the site CA, and
    one user whose password comes from the secret. It listens on `listen`
    alone (the backbone address, see `listen_address`), and the firewall drops
    anything from the site's phones to the port as well.
    """
    lines = [
        "# Written by Ahoy provisioning from ahoy.txt (site_name, site_secret); edits are lost.",
        f"server_name: {_quote(server_name(config, box))}",
        f"listen: {_quote(f'{listen}:{port}')}",
        f"max_payload: {MAX_PAYLOAD}",
        "max_connections: 256",
        "write_deadline: \"5s\"",
        "ping_interval: \"5s\"",
        "ping_max: 3",
        "jetstream {",
        f"  store_dir: {_quote(str(paths.jetstream))}",
        "  max_memory_store: 16MB",
        f"  max_file_store: {STREAM_MAX_BYTES * 2}",
        "}",
        "tls {",
        f"  cert_file: {_quote(str(paths.cert))}",
        f"  key_file: {_quote(str(paths.key))}",
        f"  ca_file: {_quote(str(paths.ca))}",
        "  verify: true",
        "  timeout: 5",
        "}",
        "authorization {",
        "  users: [",
        f"    {{user: {_quote(NATS_USER)}, password: "
        f"{_quote(nats_password(secret, config.site_name))}}}",
        "  ]",
        "  timeout: 5",
        "}",
    ]
    if monitor_port is not None:
        lines.append(f"http: {_quote(f'127.0.0.1:{monitor_port}')}")
    return "\n".join(lines) + "\n"


def ensure_site_files(
    config: BoxConfig,
    data_dir: Path,
    secret: str,
    *,
    listen: str | None = None,
    port: int = SITE_PORT,
    monitor_port: int | None = None,
) -> tuple[SitePaths, bool]:
    """Write the box id, the certificates (once per secret) and the nats-server config.

    The server listens on `listen`, by default this box's backbone address
    (`listen_address`). Returns the paths and whether the config or a
    certificate changed (the server then needs a restart).
    """
    box = box_id(data_dir)
    paths = SitePaths(site_dir(data_dir))
    changed = False
    ca, _, _ = make_certificates(secret, config.site_name, box)
    try:
        current_ca = paths.ca.read_bytes()
        have_cert = paths.cert.exists() and paths.key.exists()
    except OSError:
        current_ca, have_cert = b"", False
    if not have_cert or not _same_ca(current_ca, ca):
        ca, cert, key = make_certificates(secret, config.site_name, box)
        write_file(paths.key, key, mode=0o600)
        write_file(paths.cert, cert)
        write_file(paths.ca, ca)
        changed = True
    text = render_nats_config(config, box, secret, paths,
                              listen=listen or listen_address(data_dir), port=port,
                              monitor_port=monitor_port)
    changed |= write_file(paths.nats_config, text.encode(), mode=0o600)
    paths.jetstream.mkdir(parents=True, exist_ok=True)
    return paths, changed


def _same_ca(a: bytes, b: bytes) -> bool:
    """Whether two CA certificates are the same CA (name and key; signatures differ)."""
    try:
        first, second = x509.load_pem_x509_certificate(a), x509.load_pem_x509_certificate(b)
    except ValueError:
        return False
    pub = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return (first.subject == second.subject
            and first.public_key().public_bytes(*pub) == second.public_key().public_bytes(*pub))
