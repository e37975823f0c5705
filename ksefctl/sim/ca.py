"""The simulator's certificate authority: it checks PKCS#10 requests and issues KSeF certificates.

Real KSeF signs its internal certificates with a CA of its own; so does the
simulator, with an EC P-256 key made on first start and kept in the state
file.  What a request must satisfy comes from ``certyfikaty-KSeF.md`` and the
``POST /certificates/enrollments`` description:

- the key is RSA of exactly 2048 bits or EC on NIST P-256 (else 25010);
- the signature is RSA PKCS#1 v1.5, RSA-PSS or ECDSA over SHA-1/256/384/512
  (else 25011), and it verifies (else 25004, like an unreadable request);
- the subject holds exactly the DN attributes ``/certificates/enrollments/data``
  returned, in any order and string type (else 25003).

Issued certificates carry the key usage their type documents: Authentication
digitalSignature, Offline nonRepudiation.  The docs give no validity period;
their only example spans two years, so that is what the simulator issues.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Container
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

VALIDITY = datetime.timedelta(days=730)

# Enrolment-data field -> the DN attribute it stands for (certyfikaty-KSeF.md's table).
DN_FIELDS: dict[str, x509.ObjectIdentifier] = {
    "commonName": NameOID.COMMON_NAME,
    "surname": NameOID.SURNAME,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "countryName": NameOID.COUNTRY_NAME,
    "organizationName": NameOID.ORGANIZATION_NAME,
    "givenName": NameOID.GIVEN_NAME,
    "uniqueIdentifier": x509.ObjectIdentifier("2.5.4.45"),
    "organizationIdentifier": NameOID.ORGANIZATION_IDENTIFIER,
}
_FIELD_OF = {oid: name for name, oid in DN_FIELDS.items()}

_RSA_ALGORITHMS = {
    SignatureAlgorithmOID.RSA_WITH_SHA1,
    SignatureAlgorithmOID.RSA_WITH_SHA256,
    SignatureAlgorithmOID.RSA_WITH_SHA384,
    SignatureAlgorithmOID.RSA_WITH_SHA512,
    SignatureAlgorithmOID.RSASSA_PSS,
}
_EC_ALGORITHMS = {
    SignatureAlgorithmOID.ECDSA_WITH_SHA1,
    SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    SignatureAlgorithmOID.ECDSA_WITH_SHA384,
    SignatureAlgorithmOID.ECDSA_WITH_SHA512,
}
_HASHES = ("sha1", "sha256", "sha384", "sha512")


class CsrRefused(Exception):
    """The request breaks a documented rule; ``code`` is the KSeF error code to answer."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def dn_fields(name: x509.Name, *, strict: bool = True) -> dict[str, str]:
    """The enrolment-data view of a DN; repeated given names are joined by a space.

    An attribute outside the documented eight raises :class:`ValueError` when
    ``strict`` (a CSR may not add any) and is skipped otherwise (a qualified
    certificate used to log in may carry more).
    """
    fields: dict[str, list[str]] = {}
    for attribute in name:
        field = _FIELD_OF.get(attribute.oid)
        if field is None:
            if not strict:
                continue
            raise ValueError(f"attribute {attribute.oid.dotted_string} is not allowed")
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
        fields.setdefault(field, []).append(value)
    return {field: " ".join(values) for field, values in fields.items()}


def check_csr(der: bytes, expected: dict[str, str]) -> x509.CertificateSigningRequest:
    """The parsed request, or :class:`CsrRefused` with the code KSeF documents."""
    try:
        csr = x509.load_der_x509_csr(der)
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise CsrRefused(25004, "CSR nie jest poprawnym żądaniem PKCS#10 w formacie DER.") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size != 2048:
            raise CsrRefused(25010, f"Klucz RSA musi mieć 2048 bitów, ten ma {key.key_size}.")
        allowed = _RSA_ALGORITHMS
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise CsrRefused(25010, f"Klucz EC musi leżeć na krzywej P-256, nie {key.curve.name}.")
        allowed = _EC_ALGORITHMS
    else:
        raise CsrRefused(25010, "Dozwolone są wyłącznie klucze RSA 2048 i EC P-256.")
    try:
        digest = csr.signature_hash_algorithm
    except UnsupportedAlgorithm:
        digest = None
    if csr.signature_algorithm_oid not in allowed or digest is None or digest.name not in _HASHES:
        raise CsrRefused(25011, "Dozwolone podpisy: RSA PKCS#1 v1.5, RSA-PSS, ECDSA; SHA-1/2.")
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        raise CsrRefused(25004, "Podpis CSR jest nieprawidłowy.")
    try:
        fields = dn_fields(csr.subject)
    except ValueError as error:
        raise CsrRefused(25003, f"CSR zawiera niedozwolony atrybut DN ({error}).") from None
    if fields != expected:
        differ = sorted(
            k for k in expected.keys() | fields.keys() if expected.get(k) != fields.get(k)
        )
        raise CsrRefused(25003, f"Atrybuty DN niezgodne z danymi do wniosku: {', '.join(differ)}.")
    return csr


def spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def new_serial(taken: Container[str]) -> str:
    """Sixteen upper-case hex digits (KSeF's format), positive as DER needs, never reused."""
    while True:
        serial = f"{secrets.randbits(63) or 1:016X}"
        if serial not in taken:
            return serial


@dataclass(frozen=True, repr=False)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def __repr__(self) -> str:
        return f"CertificateAuthority({self.certificate.subject.rfc4514_string()!r})"

    @classmethod
    def generate(cls, now: datetime.datetime) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ksefctl simulator"),
                x509.NameAttribute(NameOID.COMMON_NAME, "KSeF Simulator CA"),
            ]
        )
        public = key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650 * 3))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @classmethod
    def from_pem(cls, data: dict[str, str]) -> CertificateAuthority:
        key = serialization.load_pem_private_key(data["key"].encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the stored CA key is not an EC key")
        return cls(key, x509.load_pem_x509_certificate(data["certificate"].encode()))

    def to_pem(self) -> dict[str, str]:
        key = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        certificate = self.certificate.public_bytes(serialization.Encoding.PEM)
        return {"key": key.decode(), "certificate": certificate.decode()}

    def issue(
        self,
        csr: x509.CertificateSigningRequest,
        serial: str,
        certificate_type: str,
        valid_from: datetime.datetime,
    ) -> x509.Certificate:
        public = csr.public_key()
        assert isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        authentication = certificate_type == "Authentication"
        ca_ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(public)
            .serial_number(int(serial, 16))
            .not_valid_before(valid_from)
            .not_valid_after(valid_from + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                _key_usage(signature=authentication, non_repudiation=not authentication),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )


def _key_usage(
    *, signature: bool = False, non_repudiation: bool = False, cert_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
