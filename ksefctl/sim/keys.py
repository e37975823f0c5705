"""The simulator's own KSeF public-key certificates and the token decryption they enable."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from ksefctl.sim.ids import iso

TOKEN_ENCRYPTION = "KsefTokenEncryption"
SYMMETRIC_KEY_ENCRYPTION = "SymmetricKeyEncryption"
USAGES = (TOKEN_ENCRYPTION, SYMMETRIC_KEY_ENCRYPTION)

_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class DecryptionError(Exception):
    """The ciphertext was not made with this key, or not with RSA-OAEP SHA-256."""


@dataclass(frozen=True)
class KsefKey:
    usage: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def public_key_id(self) -> str:
        spki = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()

    @property
    def certificate_id(self) -> str:
        # KSeF's certificateId is 32 bytes in base64; the certificate's SHA-256 thumbprint fits.
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    def describe(self) -> dict[str, Any]:
        """One PublicKeyCertificate item."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "certificate": base64.b64encode(der).decode(),
            "certificateId": self.certificate_id,
            "publicKeyId": self.public_key_id,
            "validFrom": iso(self.certificate.not_valid_before_utc.timestamp()),
            "validTo": iso(self.certificate.not_valid_after_utc.timestamp()),
            "usage": [self.usage],
        }

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return self.private_key.decrypt(ciphertext, _OAEP)
        except ValueError:
            raise DecryptionError("not decryptable with this key") from None

    def to_pem(self) -> dict[str, str]:
        return {
            "usage": self.usage,
            "key": self.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
            "certificate": self.certificate.public_bytes(serialization.Encoding.PEM).decode(),
        }

    @classmethod
    def from_pem(cls, data: dict[str, str]) -> KsefKey:
        key = serialization.load_pem_private_key(data["key"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("stored KSeF key is not RSA")
        return cls(data["usage"], key, x509.load_pem_x509_certificate(data["certificate"].encode()))


def generate_key(usage: str) -> KsefKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ksefctl simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"KSeF simulator {usage}"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=4 * 365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return KsefKey(usage, key, certificate)


@cache
def ephemeral_keys() -> tuple[KsefKey, ...]:
    """Keys shared by every state-less simulator in one process: RSA generation costs ~100 ms."""
    return tuple(generate_key(usage) for usage in USAGES)
