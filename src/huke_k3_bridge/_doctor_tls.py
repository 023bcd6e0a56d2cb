"""TLS for the doctor's network checks: the SSL context httpx would use, what a certificate
says, and the fix for each way its verification fails."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import httpx

SYNC_CLOCK = "sync the clock: `timedatectl set-ntp true` (Linux) or `w32tm /resync` (Windows)"
# OpenSSL's X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code gives them.
_NOT_YET_VALID, _EXPIRED = 9, 10
_SELF_SIGNED = {18, 19}
_UNTRUSTED_ISSUER = {2, 20, 21}
_WRONG_HOST = {62, 64}


def ssl_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    """The context httpx builds for ``verify=`` (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` included,
    as httpx's ``trust_env`` reads them)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        # What httpx does with a path; 0.28 deprecates passing one and recommends this.
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify, trust_env=True)


def unverified_context() -> ssl.SSLContext:
    """A context that accepts any certificate: to read the one a failed verification was about."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def certificate_facts(der: bytes) -> dict[str, Any]:
    """What a person checks in a DER certificate: its names, issuer and expiry (JSON values)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return {}

    def common_name(name: x509.Name) -> str | None:
        values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(values[0].value) if values else None

    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san = [str(v) for v in extension.get_values_for_type(x509.DNSName)]
        san += [str(v) for v in extension.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        san = []
    # cryptography >= 42 has the aware property and deprecates the naive one; 41 has only that.
    not_after: datetime = getattr(cert, "not_valid_after_utc", None) or (
        cert.not_valid_after.replace(tzinfo=timezone.utc)
    )
    left = (not_after - datetime.now(timezone.utc)).total_seconds()
    return {
        "subject_cn": common_name(cert.subject),
        "san": san,
        "issuer_cn": common_name(cert.issuer),
        "self_signed": cert.issuer == cert.subject,
        "not_after": not_after.isoformat(),
        "days_left": int(left // 86400),
    }


def names(facts: Mapping[str, Any]) -> str:
    """The names a certificate is for, in a few words."""
    san = list(facts.get("san") or ())
    subject = facts.get("subject_cn")
    if san:
        shown = ", ".join(san[:4]) + (f" and {len(san) - 4} more" if len(san) > 4 else "")
        return f"CN={subject} (SAN {shown})" if subject else f"SAN {shown}"
    return f"CN={subject}" if subject else "no name"


def verification_fix(code: int | None, *, label: str, setting: str, host: str) -> str:
    """The fix, in one line, for a certificate that failed verification with OpenSSL ``code``."""
    if code in _SELF_SIGNED:
        return (
            "trust it: set SSL_CERT_FILE to the PEM file of its CA (of a self-signed certificate, "
            f"the certificate itself), or ask {label}'s operator for one from a public CA"
        )
    if code in _UNTRUSTED_ISSUER:
        return (
            "its issuer is not trusted here: set SSL_CERT_FILE to a CA bundle that includes it "
            "(a TLS-inspecting proxy or firewall needs its own CA there)"
        )
    if code in _WRONG_HOST:
        return (
            f"use a host name the certificate names in {setting}, or ask {label}'s operator for "
            f"a certificate for {host}"
        )
    if code == _EXPIRED:
        return (
            f"ask {label}'s operator to renew the certificate (or, if it has not expired, fix "
            "this machine's clock)"
        )
    if code == _NOT_YET_VALID:
        return f"{SYNC_CLOCK}; if the clock is right, the server's certificate is not valid yet"
    return "check the certificate the server sends; SSL_CERT_FILE names the CA bundle httpx trusts"
