"""Certificates (webclient/admin/certificates.js): the box's own CA and certificate for
phones to install, or a real certificate for a real domain, uploaded and checked here.

An uploaded certificate is used from the service's next start (see appliance.server).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from provisioning.datadir import write_file
from provisioning.tls import (
    CertificateInfo,
    CertificatePaths,
    CertificateProblem,
    read_certificate,
    validate_uploaded_certificate,
)

from .access import MAX_UPLOAD, box, error, log, upload


def _paths() -> CertificatePaths:
    return CertificatePaths(box().settings.tls_dir)


def _shown(info: CertificateInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"subject": info.subject, "issuer": info.issuer, "names": info.names,
            "expires": info.expires.isoformat()}


def certificates() -> Response:
    paths = _paths()
    custom = _shown(read_certificate(paths.custom_cert)) if paths.custom_key.exists() else None
    return jsonify({
        "ca": _shown(read_certificate(paths.ca_cert)),
        "box": _shown(read_certificate(paths.server_cert)),
        "custom": custom,
        "in_use": "custom" if custom else "box",
        "downloads": {"ca": "/ca.crt", "ios_profile": "/ahoy.mobileconfig"},
    })


def upload_certificate() -> Any:
    cert_pem, key_pem = upload("certificate"), upload("key")
    if not cert_pem or not key_pem:
        return error(400, "Choose both files: the certificate (with its chain) and its "
                          "private key.")
    if len(cert_pem) > MAX_UPLOAD or len(key_pem) > MAX_UPLOAD:
        return error(400, f"Each file must be at most {MAX_UPLOAD // 1024} KiB.")
    try:
        uploaded = validate_uploaded_certificate(cert_pem, key_pem)
    except CertificateProblem as exc:
        message = str(exc)
        return error(400, message[:1].upper() + message[1:] + ".")
    paths = _paths()
    write_file(paths.custom_key, key_pem, mode=0o600)
    write_file(paths.custom_cert, cert_pem, mode=0o644)
    log.info("admin: uploaded a certificate for %s", ", ".join(uploaded.dns_names))
    return jsonify({
        "saved": True,
        "names": uploaded.dns_names,
        "expires": uploaded.not_after.isoformat(),
        "message": "Saved. The box uses it from its next restart (Power: restart the box).",
    })


def remove_certificate() -> Response:
    paths = _paths()
    for path in (paths.custom_cert, paths.custom_key):
        path.unlink(missing_ok=True)
    log.info("admin: removed the uploaded certificate")
    return jsonify({"removed": True,
                    "message": "Removed. The box uses its own certificate from its next "
                               "restart."})
