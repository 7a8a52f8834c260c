"""The box's own certificate authority and server certificate.

Phones trust calls only in a secure context, so every box makes its own CA at
first start and a server certificate for its names. Both follow the rules that
Android and iOS enforce for user-installed CAs: the CA has a common name, the
server certificate has the names as subjectAltName, the serverAuth extended key
usage and a lifetime of at most 825 days.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import os
import plistlib
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_LIFETIME_DAYS = 825
CA_LIFETIME_DAYS = 3650
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class CertificatePaths:
    """Where the box's TLS files live inside a folder."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ahoy-ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ahoy-ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only, atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _make_ca(box_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"Ahoy box CA ({box_name})"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ahoy"),
        ]
    )
    start = _now() - dt.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=CA_LIFETIME_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_server(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    dns_names: list[str],
    ip_addresses: list[str],
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    start = _now() - dt.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=SERVER_LIFETIME_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _server_cert_is_current(paths: CertificatePaths, dns_names: list[str], ips: list[str]) -> bool:
    if not (paths.server_cert.exists() and paths.server_key.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    have_dns = set(san.get_values_for_type(x509.DNSName))
    have_ip = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    fresh = cert.not_valid_after_utc - _now() > dt.timedelta(days=RENEW_BEFORE_DAYS)
    return fresh and have_dns == set(dns_names) and have_ip == set(ips)


def ensure_certificates(
    folder: Path, box_name: str, dns_names: list[str], ip_addresses: list[str]
) -> CertificatePaths:
    """Make the box CA and a server certificate in `folder` unless current ones exist.

    Idempotent: a second call with the same names changes nothing. A server
    certificate whose names differ or that is close to expiry is reissued from
    the same CA, so phones that installed the CA keep trusting the box.
    """
    if not dns_names:
        raise ValueError("at least one DNS name is needed for the server certificate")
    folder.mkdir(parents=True, exist_ok=True)
    paths = CertificatePaths(folder)
    if paths.ca_cert.exists() and paths.ca_key.exists():
        ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        loaded = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{paths.ca_key} is not an EC private key")
        ca_key = loaded
    else:
        ca_key, ca_cert = _make_ca(box_name)
        _write_private(paths.ca_key, _pem_key(ca_key))
        _write_public(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    if not _server_cert_is_current(paths, dns_names, ip_addresses):
        key, cert = _make_server(ca_key, ca_cert, dns_names, ip_addresses)
        _write_private(paths.server_key, _pem_key(key))
        _write_public(paths.server_cert, cert.public_bytes(serialization.Encoding.PEM))
    return paths


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_expiry(path: Path) -> dt.datetime:
    """When the PEM certificate at `path` stops being valid (UTC)."""
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc


def ios_profile(ca_pem: bytes, box_name: str) -> bytes:
    """An iOS/iPadOS configuration profile (.mobileconfig) that installs the box CA.

    Unsigned, so iOS shows it as "Not Verified"; after installing it the user
    must still turn on full trust (Settings > General > About > Certificate
    Trust Settings). Identifiers come from the CA's fingerprint, so the same CA
    always gives the same bytes and reinstalling replaces the old profile.
    """
    cert = x509.load_pem_x509_certificate(ca_pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    identifier = f"internal.ahoy.{fingerprint[:16]}"
    payload_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"ahoy-ca-payload:{fingerprint}")
    profile_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"ahoy-ca-profile:{fingerprint}")
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(profile_uuid).upper(),
        "PayloadDisplayName": f"Ahoy box {box_name}",
        "PayloadDescription": (
            "Lets this phone make secure calls through the Ahoy box "
            f"{box_name}. It trusts only the certificate of this box."
        ),
        "PayloadOrganization": "Ahoy",
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [
            {
                "PayloadType": "com.apple.security.root",
                "PayloadVersion": 1,
                "PayloadIdentifier": f"{identifier}.ca",
                "PayloadUUID": str(payload_uuid).upper(),
                "PayloadDisplayName": cert.subject.rfc4514_string()[:64],
                "PayloadCertificateFileName": "ahoy-ca.cer",
                "PayloadContent": der,
            }
        ],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)


class CertificateProblem(ValueError):
    """An uploaded certificate cannot be used; the message says why, for a person."""


@dataclass(frozen=True)
class UploadedCertificate:
    """A certificate the admin uploaded, checked and ready to install."""

    dns_names: list[str]
    not_after: dt.datetime
    issuer: str
    chain_length: int


def validate_uploaded_certificate(
    cert_pem: bytes, key_pem: bytes, *, now: dt.datetime | None = None
) -> UploadedCertificate:
    """Check a certificate (optionally followed by its chain) and its private key.

    Raises CertificateProblem saying what is wrong and what to do.
    """
    now = now or _now()
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise CertificateProblem(
            "the certificate is not a PEM file (it should start with "
            "-----BEGIN CERTIFICATE-----)"
        ) from None
    leaf = chain[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise CertificateProblem(
            "the private key is protected by a password; upload it without one"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateProblem(
            "the private key is not a PEM key file (it should start with "
            "-----BEGIN PRIVATE KEY----- or similar)"
        ) from None
    if _public_der(key.public_key()) != _public_der(leaf.public_key()):
        raise CertificateProblem(
            "the private key does not belong to the certificate (the first certificate "
            "in the file must be the server's own)"
        )
    if leaf.not_valid_before_utc > now:
        raise CertificateProblem(
            f"the certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%d}; "
            "check the box's clock (the admin page can set it)"
        )
    if leaf.not_valid_after_utc <= now:
        raise CertificateProblem(
            f"the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}"
        )
    try:
        constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            raise CertificateProblem(
                "this is a CA certificate; upload the server certificate it issued"
            )
    except x509.ExtensionNotFound:
        pass
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not names:
        raise CertificateProblem(
            "the certificate names no domain (subjectAltName); browsers will refuse it"
        )
    try:
        usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.SERVER_AUTH not in usage:
            raise CertificateProblem(
                "the certificate is not for web servers (no serverAuth extended key usage)"
            )
    except x509.ExtensionNotFound:
        pass
    for child, parent in itertools.pairwise(chain):
        if child.issuer != parent.subject:
            raise CertificateProblem(
                "the certificates after the first are not its chain in order "
                "(server certificate first, then each issuer)"
            )
    return UploadedCertificate(
        dns_names=list(names),
        not_after=leaf.not_valid_after_utc,
        issuer=leaf.issuer.rfc4514_string(),
        chain_length=len(chain),
    )


def _public_der(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:
        return b""
    data: bytes = public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data
