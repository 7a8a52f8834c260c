"""The box CA as an iOS profile, and certificates the admin uploads."""

from __future__ import annotations

import datetime as dt
import plistlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning import tls
from provisioning.tls import CertificateProblem, validate_uploaded_certificate

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def test_ios_profile_installs_the_box_ca_and_is_stable(tmp_path: Path) -> None:
    paths = tls.ensure_certificates(tmp_path, "boat", ["ahoy.internal", "boat.local"],
                                    ["10.42.0.1"])
    ca_pem = paths.ca_cert.read_bytes()
    profile = tls.ios_profile(ca_pem, "boat")
    assert profile == tls.ios_profile(ca_pem, "boat")
    parsed = plistlib.loads(profile)
    assert parsed["PayloadType"] == "Configuration"
    (payload,) = parsed["PayloadContent"]
    assert payload["PayloadType"] == "com.apple.security.root"
    ca = x509.load_pem_x509_certificate(ca_pem)
    assert payload["PayloadContent"] == ca.public_bytes(serialization.Encoding.DER)
    assert parsed["PayloadUUID"] != payload["PayloadUUID"]


def _cert(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    *,
    issuer_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    issuer: x509.Name | None = None,
    names: list[str] | None = None,
    ca: bool = False,
    usage: list[x509.ObjectIdentifier] | None = None,
    days: tuple[int, int] = (-10, 80),
    subject: str = "chat.example.org",
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days[0]))
        .not_valid_after(NOW + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
             password: bytes | None = None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


@pytest.fixture(scope="module")
def chain() -> tuple[bytes, bytes]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert(ca_key, ca=True, subject="Example CA")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _cert(key, issuer_key=ca_key, issuer=ca.subject, names=["chat.example.org"],
                 usage=[ExtendedKeyUsageOID.SERVER_AUTH])
    return _pem(leaf, ca), _key_pem(key)


def test_a_good_certificate_with_its_chain_is_accepted(chain: tuple[bytes, bytes]) -> None:
    checked = validate_uploaded_certificate(*chain, now=NOW)
    assert checked.dns_names == ["chat.example.org"]
    assert checked.chain_length == 2
    assert "Example CA" in checked.issuer


def problem(cert_pem: bytes, key_pem: bytes) -> str:
    with pytest.raises(CertificateProblem) as caught:
        validate_uploaded_certificate(cert_pem, key_pem, now=NOW)
    return str(caught.value)


def test_each_bad_upload_is_explained(chain: tuple[bytes, bytes]) -> None:
    cert_pem, key_pem = chain
    other = ec.generate_private_key(ec.SECP256R1())
    assert "not a PEM file" in problem(b"hello", key_pem)
    assert "not a PEM key file" in problem(cert_pem, b"nope")
    assert "protected by a password" in problem(
        cert_pem, _key_pem(other, password=b"pw")
    )
    assert "does not belong to the certificate" in problem(cert_pem, _key_pem(other))
    expired = _cert(other, names=["a.example"], days=(-100, -1))
    assert "expired on" in problem(_pem(expired), _key_pem(other))
    future = _cert(other, names=["a.example"], days=(5, 90))
    assert "check the box's clock" in problem(_pem(future), _key_pem(other))
    no_names = _cert(other)
    assert "names no domain" in problem(_pem(no_names), _key_pem(other))
    client_only = _cert(other, names=["a.example"], usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    assert "not for web servers" in problem(_pem(client_only), _key_pem(other))
    a_ca = _cert(other, names=["a.example"], ca=True)
    assert "CA certificate" in problem(_pem(a_ca), _key_pem(other))
    stranger = _cert(ec.generate_private_key(ec.SECP256R1()), subject="Someone else")
    leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    assert "not its chain in order" in problem(_pem(leaf, stranger), key_pem)


def test_read_certificate_says_who_for_which_names_and_until_when(tmp_path: Path) -> None:
    paths = tls.ensure_certificates(tmp_path, "boat", ["ahoy.internal", "boat.local"],
                                    ["10.42.0.1"])
    server = tls.read_certificate(paths.server_cert)
    assert server is not None
    assert server.names == ["ahoy.internal", "boat.local"]
    loaded = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    assert server.expires == loaded.not_valid_after_utc
    ca = tls.read_certificate(paths.ca_cert)
    assert ca is not None and "Ahoy box CA (boat)" in ca.subject
    assert server.issuer == ca.subject and ca.names == []


def test_read_certificate_of_a_missing_or_damaged_file_is_none(tmp_path: Path) -> None:
    assert tls.read_certificate(tmp_path / "nothing.crt") is None
    (tmp_path / "cut.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB")
    assert tls.read_certificate(tmp_path / "cut.crt") is None
