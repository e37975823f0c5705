"""The simulator's own KSeF public-key certificates, their rotation, and token decryption.

Rotation follows bezpieczenstwo_klucze-publiczne-do-szyfrowania.md:

* **publish** (planned rotation): a new key pair and certificate join the list;
  the old ones stay listed and accepted until retired, so a usage has two keys.
* **recertify**: a new certificate for the same key pair; ``publicKeyId`` stays,
  ``certificate``, ``certificateId`` and the validity period change.
* **retire** (emergency rotation): the key is no longer listed and its
  ``publicKeyId`` is refused with 400 21470; when no listed key of its usage
  is valid any more, a new one is published in its place.

A key is accepted while it is listed and valid on the simulator's clock.
"""

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


def generate_key(
    usage: str, valid_from: datetime | None = None, valid_to: datetime | None = None
) -> KsefKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KsefKey(usage, key, _certificate(usage, key, valid_from, valid_to))


def _certificate(
    usage: str,
    key: rsa.RSAPrivateKey,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ksefctl simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"KSeF simulator {usage}"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from or now - timedelta(days=1))
        .not_valid_after(valid_to or now + timedelta(days=4 * 365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


@cache
def ephemeral_keys() -> tuple[KsefKey, ...]:
    """Keys shared by every state-less simulator in one process: RSA generation costs ~100 ms."""
    return tuple(generate_key(usage) for usage in USAGES)


# -- rotation ----------------------------------------------------------------


def valid_at(key: KsefKey, now: float) -> bool:
    cert = key.certificate
    return cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp()


def accepted_key(
    keys: tuple[KsefKey, ...], usage: str, key_id: str | None, now: float
) -> KsefKey | None:
    """The key a request names (or, named none, the current one); None means 21470."""
    candidates = [k for k in keys if k.usage == usage and valid_at(k, now)]
    if key_id is None:
        # As a client should choose: the valid key with the latest validFrom.
        return max(candidates, key=lambda k: k.certificate.not_valid_before_utc, default=None)
    return next((k for k in candidates if k.public_key_id == key_id), None)


@dataclass(frozen=True)
class RotationStep:
    """One change to the published keys, from ``--config`` or ``POST /_sim/public-keys``."""

    action: str  # "publish", "recertify" or "retire"
    usage: str = TOKEN_ENCRYPTION
    # recertify/retire: the key; absent, the oldest listed key of ``usage`` (the one in use
    # before a planned rotation, and the one an emergency rotation is about).
    public_key_id: str | None = None
    valid_from: datetime | None = None  # publish/recertify: the new certificate's period
    valid_to: datetime | None = None

    @classmethod
    def parse(cls, data: Any) -> RotationStep:
        """From ``{"action", "usage"?, "publicKeyId"?, "validFrom"?, "validTo"?}``."""
        if not isinstance(data, dict):
            raise ValueError("a key rotation step is a mapping with an 'action'")
        unknown = set(data) - {"action", "usage", "publicKeyId", "validFrom", "validTo"}
        if unknown:
            raise ValueError(f"unknown key rotation field(s): {', '.join(sorted(unknown))}")
        action = data.get("action")
        if action not in ACTIONS:
            raise ValueError(f"key rotation 'action' must be one of {', '.join(ACTIONS)}")
        usage = data.get("usage", TOKEN_ENCRYPTION)
        if usage not in USAGES:
            raise ValueError(f"key 'usage' must be one of {', '.join(USAGES)}")
        key_id = data.get("publicKeyId")
        if key_id is not None and (not isinstance(key_id, str) or action == "publish"):
            raise ValueError("'publicKeyId' is a string, and only for recertify or retire")
        moments = [_moment(data, name) for name in ("validFrom", "validTo")]
        if action == "retire" and any(moments):
            raise ValueError("a retired key has no validity period to set")
        if all(moments) and moments[0] >= moments[1]:  # type: ignore[operator]
            raise ValueError("'validFrom' must be before 'validTo'")
        return cls(action, usage, key_id, moments[0], moments[1])


ACTIONS = ("publish", "recertify", "retire")


def _moment(data: dict[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"'{name}' must be an ISO 8601 date-time with a time zone")
    return moment


class UnknownKey(ValueError):
    """A recertify or retire step names a key that is not listed."""


def rotate(
    keys: tuple[KsefKey, ...], step: RotationStep, now: float
) -> tuple[tuple[KsefKey, ...], KsefKey | None]:
    """The published keys after ``step``, and the key it created (None for a plain retire)."""
    if step.action == "publish":
        valid_from = step.valid_from or datetime.fromtimestamp(now, UTC) - timedelta(seconds=1)
        new = generate_key(step.usage, valid_from, step.valid_to)
        return (*keys, new), new
    target = _target(keys, step)
    if step.action == "recertify":
        cert = _certificate(step.usage, target.private_key, step.valid_from, step.valid_to)
        renewed = KsefKey(target.usage, target.private_key, cert)
        return tuple(renewed if k is target else k for k in keys), renewed
    left = tuple(k for k in keys if k.public_key_id != target.public_key_id)
    if accepted_key(left, step.usage, None, now) is None:
        # Emergency rotation publishes the replacement together with the retirement.
        replacement = generate_key(
            step.usage, datetime.fromtimestamp(now, UTC) - timedelta(seconds=1)
        )
        return (*left, replacement), replacement
    return left, None


def _target(keys: tuple[KsefKey, ...], step: RotationStep) -> KsefKey:
    same_usage = [k for k in keys if k.usage == step.usage]
    if step.public_key_id is None:
        if not same_usage:
            raise UnknownKey(f"no {step.usage} key is listed")
        return min(same_usage, key=lambda k: k.certificate.not_valid_before_utc)
    for key in same_usage:
        if key.public_key_id == step.public_key_id:
            return key
    raise UnknownKey(f"no listed {step.usage} key has publicKeyId {step.public_key_id}")
