"""Key pairs and PKCS#10 requests for KSeF certificates.

KSeF accepts RSA 2048 or EC P-256 keys (EC recommended) and signs exactly
the DN that ``/certificates/enrollments/data`` returned: any attribute
changed, added or missing is refused (25003).  The attributes are written in
the order the official clients use, with the string types cryptography picks
(PrintableString for countryName and serialNumber, UTF8String otherwise).

The private key exists only in memory here; :func:`private_key_pem` hands it
out as a :class:`Secret` so it cannot be printed by accident.
"""

from __future__ import annotations

from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ksefctl.ksef.certificates import EnrollmentData
from ksefctl.secret import Secret

KeyAlgorithm = Literal["ec-p256", "rsa-2048"]
KEY_ALGORITHMS: tuple[KeyAlgorithm, ...] = ("ec-p256", "rsa-2048")
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# The official clients' order (KSeF compares the attributes, not their order).
_ORDER = (
    ("common_name", NameOID.COMMON_NAME),
    ("surname", NameOID.SURNAME),
    ("given_name", NameOID.GIVEN_NAME),
    ("organization_name", NameOID.ORGANIZATION_NAME),
    ("organization_identifier", NameOID.ORGANIZATION_IDENTIFIER),
    ("country_name", NameOID.COUNTRY_NAME),
    ("serial_number", NameOID.SERIAL_NUMBER),
    ("unique_identifier", x509.ObjectIdentifier("2.5.4.45")),
)


def generate_key(algorithm: KeyAlgorithm = "ec-p256") -> PrivateKey:
    """A fresh key of one of the two kinds KSeF certifies."""
    if algorithm == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"key algorithm must be one of {', '.join(KEY_ALGORITHMS)}")


def subject_name(data: EnrollmentData) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(oid, value)
            for attribute, oid in _ORDER
            if (value := getattr(data, attribute)) is not None
        ]
    )


def build_csr(data: EnrollmentData, key: PrivateKey) -> bytes:
    """A PKCS#10 request (DER) for ``data``'s DN, signed with SHA-256 by ``key``."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size != 2048:
            raise ValueError(f"KSeF certifies RSA keys of 2048 bits only, not {key.key_size}")
    elif not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"KSeF certifies EC keys on P-256 only, not {key.curve.name}")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject_name(data))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def private_key_pem(key: PrivateKey) -> Secret:
    """The key as unencrypted PKCS#8 PEM, wrapped so it never shows in output."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Secret(pem.decode())
