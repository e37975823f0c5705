"""Choosing KSeF's token-encryption key, encrypting with it, and refusing unsafe endpoints."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from ksefctl.ksef.errors import InsecureEndpoint, UnexpectedResponse
from ksefctl.ksef.keys import TOKEN_ENCRYPTION, parse_public_keys, select_key
from ksefctl.ksef.transport import check_base_url
from ksefctl.secret import Secret

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def certificate_entry(
    key: rsa.RSAPrivateKey, usage: list[str], valid_from: datetime, valid_to: datetime, kid: str
) -> dict[str, object]:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "KSeF test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "certificate": base64.b64encode(der).decode(),
        "certificateId": kid,
        "publicKeyId": kid,
        "validFrom": valid_from.isoformat(),
        "validTo": valid_to.isoformat(),
        "usage": usage,
    }


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_picks_the_current_token_key_and_encrypts_token_with_timestamp(
    key: rsa.RSAPrivateKey,
) -> None:
    year = timedelta(days=365)
    keys = parse_public_keys(
        [
            certificate_entry(key, ["SymmetricKeyEncryption"], NOW - year, NOW + year, "sym"),
            certificate_entry(key, [TOKEN_ENCRYPTION], NOW - 2 * year, NOW - year, "expired"),
            certificate_entry(key, [TOKEN_ENCRYPTION], NOW - year, NOW + year, "current"),
            certificate_entry(key, [TOKEN_ENCRYPTION], NOW + year, NOW + 2 * year, "future"),
        ]
    )
    chosen = select_key(keys, TOKEN_ENCRYPTION, NOW)
    assert chosen.public_key_id == "current"
    ciphertext = base64.b64decode(chosen.encrypt_token(Secret("ref|nip-1|abc"), 1700000000123))
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    assert key.decrypt(ciphertext, oaep) == b"ref|nip-1|abc|1700000000123"


def test_missing_token_key_fails_clearly(key: rsa.RSAPrivateKey) -> None:
    year = timedelta(days=365)
    keys = parse_public_keys(
        [certificate_entry(key, ["SymmetricKeyEncryption"], NOW - year, NOW + year, "sym")]
    )
    with pytest.raises(UnexpectedResponse, match="no currently valid public key for KsefToken"):
        select_key(keys, TOKEN_ENCRYPTION, NOW)


def test_garbage_certificate_is_unexpected_response() -> None:
    entry = {
        "certificate": base64.b64encode(b"not der").decode(),
        "publicKeyId": "x",
        "usage": [TOKEN_ENCRYPTION],
        "validFrom": "2025-01-01T00:00:00Z",
        "validTo": "2027-01-01T00:00:00Z",
    }
    with pytest.raises(UnexpectedResponse, match="not a base64 DER certificate"):
        parse_public_keys([entry])
    with pytest.raises(UnexpectedResponse, match="not a list"):
        parse_public_keys({"keys": []})


@pytest.mark.parametrize(
    "url",
    [
        "https://api-test.ksef.mf.gov.pl/v2",
        "http://127.0.0.1:8080/v2",
        "http://localhost/v2",
        "http://[::1]:9000/v2",
    ],
)
def test_allowed_base_urls(url: str) -> None:
    assert check_base_url(url)


@pytest.mark.parametrize(
    "url", ["http://api-test.ksef.mf.gov.pl/v2", "http://10.0.0.1/v2", "ftp://x/v2", "http://"]
)
def test_refused_base_urls(url: str) -> None:
    with pytest.raises(InsecureEndpoint):
        check_base_url(url)
