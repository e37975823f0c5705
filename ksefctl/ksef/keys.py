"""KSeF's public keys: choosing the token-encryption key and encrypting with it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ksefctl.ksef.errors import UnexpectedResponse
from ksefctl.ksef.models import Fields
from ksefctl.secret import Secret

TOKEN_ENCRYPTION = "KsefTokenEncryption"


@dataclass(frozen=True)
class PublicKey:
    """One of KSeF's public-key certificates."""

    public_key_id: str
    usage: frozenset[str]
    valid_from: datetime
    valid_to: datetime
    key: rsa.RSAPublicKey

    def encrypt_token(self, token: Secret, timestamp_ms: int) -> str:
        """base64 RSA-OAEP(SHA-256, MGF1-SHA-256) of ``{token}|{timestampMs}``."""
        plaintext = f"{token.reveal()}|{timestamp_ms}".encode()
        ciphertext = self.key.encrypt(
            plaintext,
            padding.OAEP(
                mgf=padding.MGF1(algorithm=hashes.SHA256()),
                algorithm=hashes.SHA256(),
                label=None,
            ),
        )
        return base64.b64encode(ciphertext).decode("ascii")


def parse_public_keys(data: Any) -> list[PublicKey]:
    where = "GET /security/public-key-certificates"
    if not isinstance(data, list):
        raise UnexpectedResponse(f"KSeF answer to {where} is not a list")
    keys = []
    for i, item in enumerate(data):
        f = Fields(item, f"{where}[{i}]")
        try:
            certificate = x509.load_der_x509_certificate(base64.b64decode(f.text("certificate")))
        except ValueError:
            raise UnexpectedResponse(
                f"KSeF answer to {where}[{i}]: 'certificate' is not a base64 DER certificate"
            ) from None
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            # Only RSA keys can do the OAEP token encryption KSeF asks for.
            continue
        keys.append(
            PublicKey(
                public_key_id=f.text("publicKeyId"),
                usage=frozenset(f.texts("usage")),
                valid_from=f.moment("validFrom"),
                valid_to=f.moment("validTo"),
                key=key,
            )
        )
    return keys


def select_key(keys: list[PublicKey], usage: str, now: datetime | None = None) -> PublicKey:
    """The currently valid key for ``usage``; the newest when several overlap."""
    now = now or datetime.now(UTC)
    valid = [k for k in keys if usage in k.usage and k.valid_from <= now <= k.valid_to]
    if not valid:
        raise UnexpectedResponse(
            f"KSeF lists no currently valid public key for {usage} "
            f"({len(keys)} key(s) listed); cannot encrypt the KSeF token"
        )
    return max(valid, key=lambda k: k.valid_from)
