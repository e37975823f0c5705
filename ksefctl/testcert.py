"""Self-signed certificates for the KSeF TEST environment.

TEST accepts self-signed certificates for XAdES login, so a certificate that
merely *claims* a NIP or PESEL logs in as its owner there.  The subjects
follow the attribute layout KSeF recognises for qualified certificates: a
company seal carries ``organizationIdentifier`` ``VATPL-<nip>`` and no person
names; a personal certificate carries ``serialNumber`` ``TINPL-<nip>`` or
``PNOPL-<pesel>`` with given name and surname.
"""

from __future__ import annotations

import datetime
import re
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ksefctl.errors import UsageError

KeyType = Literal["rsa", "ec"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

DEFAULT_VALID_DAYS = 730
_NIP = re.compile(r"\d{10}")
_PESEL = re.compile(r"\d{11}")


def make_seal_certificate(
    nip: str,
    organization: str = "Test Company",
    key_type: KeyType = "rsa",
    valid_days: int = DEFAULT_VALID_DAYS,
    valid_from: datetime.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A company-seal certificate for ``nip``: ``(certificate PEM, private key PEM)``."""
    _require(_NIP, nip, "NIP", 10)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"VATPL-{nip}"),
            x509.NameAttribute(NameOID.COMMON_NAME, organization),
        ]
    )
    return make_certificate(
        subject, key_type=key_type, valid_days=valid_days, valid_from=valid_from
    )


def make_personal_certificate(
    *,
    nip: str | None = None,
    pesel: str | None = None,
    given_name: str = "Jan",
    surname: str = "Kowalski",
    key_type: KeyType = "rsa",
    valid_days: int = DEFAULT_VALID_DAYS,
    valid_from: datetime.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A personal certificate identifying its owner by PESEL or NIP (exactly one)."""
    if (nip is None) == (pesel is None):
        raise UsageError("a personal certificate needs exactly one of NIP or PESEL")
    if pesel is not None:
        _require(_PESEL, pesel, "PESEL", 11)
        serial = f"PNOPL-{pesel}"
    else:
        assert nip is not None
        _require(_NIP, nip, "NIP", 10)
        serial = f"TINPL-{nip}"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
            x509.NameAttribute(NameOID.GIVEN_NAME, given_name),
            x509.NameAttribute(NameOID.SURNAME, surname),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, serial),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{given_name} {surname}"),
        ]
    )
    return make_certificate(
        subject, key_type=key_type, valid_days=valid_days, valid_from=valid_from
    )


def make_certificate(
    subject: x509.Name,
    *,
    key_type: KeyType = "rsa",
    valid_days: int = DEFAULT_VALID_DAYS,
    valid_from: datetime.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A self-signed signing certificate with any ``subject``: ``(certificate PEM, key PEM)``."""
    key = generate_key(key_type)
    # Back-dated a little so a verifier whose clock lags ours still sees it as valid.
    not_before = valid_from or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def generate_key(key_type: KeyType) -> PrivateKey:
    """An RSA-2048 or EC P-256 key: the two key types KSeF's XAdES login accepts."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise UsageError(f"unknown key type {key_type!r} (expected 'rsa' or 'ec')")


def fingerprint(certificate_pem: bytes) -> str:
    """SHA-256 of the certificate's DER, upper-case hex: KSeF's certificate fingerprint."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    return certificate.fingerprint(hashes.SHA256()).hex().upper()


def _require(pattern: re.Pattern[str], value: str, name: str, digits: int) -> None:
    if not pattern.fullmatch(value):
        raise UsageError(f"{name} must be exactly {digits} digits, got {value!r}")


_PESEL_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)


def pesel_problem(pesel: str) -> str | None:
    """Why ``pesel`` is not a PESEL (11 digits, the last a check digit), or None when it is one."""
    if not _PESEL.fullmatch(pesel):
        return "must be 11 digits"
    total = sum(int(d) * w for d, w in zip(pesel, _PESEL_WEIGHTS, strict=False))
    expected = (10 - total % 10) % 10
    if expected != int(pesel[10]):
        return f"{pesel} is not a valid PESEL (check digit should be {expected})"
    return None
