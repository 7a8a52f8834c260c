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
import plistlib
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.datadir import write_file

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

    @property
    def custom_cert(self) -> Path:
        """A certificate the admin uploaded for a real domain (with its chain)."""
        return self.folder / "custom.crt"

    @property
    def custom_key(self) -> Path:
        return self.folder / "custom.key"


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


class DamagedFile(ValueError):
    """A certificate or key file that exists but cannot be used (empty, cut off, garbage)."""


def _load_pair(cert_path: Path, key_path: Path) -> tuple[ec.EllipticCurvePrivateKey,
                                                         x509.Certificate]:
    """A certificate and its private key; raises DamagedFile saying what is wrong."""
    for path in (cert_path, key_path):
        if path.stat().st_size == 0:
            raise DamagedFile(f"{path.name} is empty")
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        raise DamagedFile(f"{cert_path.name} is not a readable certificate") from None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise DamagedFile(f"{key_path.name} is not a readable private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise DamagedFile(f"{key_path.name} is not an EC private key")
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise DamagedFile(f"{key_path.name} does not belong to {cert_path.name}")
    return key, cert


def _load_ca(paths: CertificatePaths, notes: list[str]) -> tuple[ec.EllipticCurvePrivateKey,
                                                                 x509.Certificate] | None:
    """The box CA, or None when it must be made (none yet, or damaged: said in `notes`)."""
    if not paths.ca_cert.exists() and not paths.ca_key.exists():
        return None
    try:
        if not (paths.ca_cert.exists() and paths.ca_key.exists()):
            missing = paths.ca_key if paths.ca_cert.exists() else paths.ca_cert
            raise DamagedFile(f"{missing.name} is missing")
        key, cert = _load_pair(paths.ca_cert, paths.ca_key)
    except DamagedFile as exc:
        notes.append(f"the box CA in {paths.folder} was damaged ({exc}); made a new CA and "
                     "server certificate: phones that installed the old CA must install the "
                     "new one (from the portal)")
        return None
    return key, cert


def _server_cert_is_current(
    paths: CertificatePaths, ca_cert: x509.Certificate, dns_names: list[str], ips: list[str],
    notes: list[str],
) -> bool:
    if not (paths.server_cert.exists() or paths.server_key.exists()):
        return False
    try:
        if not (paths.server_cert.exists() and paths.server_key.exists()):
            missing = paths.server_key if paths.server_cert.exists() else paths.server_cert
            raise DamagedFile(f"{missing.name} is missing")
        _, cert = _load_pair(paths.server_cert, paths.server_key)
    except DamagedFile as exc:
        notes.append(f"the server certificate in {paths.folder} was damaged ({exc}); "
                     "made a new one from the box CA")
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    have_dns = set(san.get_values_for_type(x509.DNSName))
    have_ip = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    fresh = cert.not_valid_after_utc - _now() > dt.timedelta(days=RENEW_BEFORE_DAYS)
    return fresh and have_dns == set(dns_names) and have_ip == set(ips)


def ensure_certificates(
    folder: Path,
    box_name: str,
    dns_names: list[str],
    ip_addresses: list[str],
    *,
    notes: list[str] | None = None,
) -> CertificatePaths:
    """Make the box CA and a server certificate in `folder` unless current ones exist.

    Idempotent: a second call with the same names changes nothing. A server
    certificate whose names differ or that is close to expiry is reissued from
    the same CA, so phones that installed the CA keep trusting the box.
    Damaged files (empty, cut off by a power cut, garbage, a key that does not
    match) are made again rather than failing; what was remade is added to
    `notes`, in words for a person.
    """
    if not dns_names:
        raise ValueError("at least one DNS name is needed for the server certificate")
    notes = [] if notes is None else notes
    folder.mkdir(parents=True, exist_ok=True)
    paths = CertificatePaths(folder)
    ca = _load_ca(paths, notes)
    if ca is None:
        ca_key, ca_cert = _make_ca(box_name)
        write_file(paths.ca_key, _pem_key(ca_key), mode=0o600)
        write_file(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    else:
        ca_key, ca_cert = ca
    if not _server_cert_is_current(paths, ca_cert, dns_names, ip_addresses, notes):
        key, cert = _make_server(ca_key, ca_cert, dns_names, ip_addresses)
        write_file(paths.server_key, _pem_key(key), mode=0o600)
        write_file(paths.server_cert, cert.public_bytes(serialization.Encoding.PEM))
    return paths


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class CertificateInfo:
    """What a person needs to know about a certificate: who, for which names, until when."""

    subject: str
    issuer: str
    names: list[str]  # the DNS names in its subjectAltName
    expires: dt.datetime  # UTC


def read_certificate(path: Path) -> CertificateInfo | None:
    """The first certificate of the PEM file at `path`; None if it is missing or damaged."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    return CertificateInfo(subject=cert.subject.rfc4514_string(),
                           issuer=cert.issuer.rfc4514_string(),
                           names=names, expires=cert.not_valid_after_utc)


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
