"""Loading signing credentials: clear one-line errors that never show key material."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from ksefctl.errors import KsefctlError
from ksefctl.ksef.xades_signing import (
    AuthRequestError,
    SigningCredentialsError,
    build_auth_request,
    load_identity,
    load_pkcs12,
    sign_auth_request,
)
from ksefctl.sim.xades_verification import verify_auth_request
from tests.xades.conftest import CHALLENGE, NIP, Credentials, auth_request


def _key_body(key_pem: bytes) -> str:
    return key_pem.decode().splitlines()[1]


def test_identity_repr_names_the_certificate_not_the_key(seal_ec: Credentials) -> None:
    identity = seal_ec.identity

    shown = repr(identity) + str(identity) + f"{identity}"

    assert identity.fingerprint in shown and "VATPL-" + NIP in shown
    assert _key_body(seal_ec.key_pem) not in shown and "private" not in shown.lower()


def test_encrypted_key_loads_with_its_password(seal_ec: Credentials) -> None:
    key = serialization.load_pem_private_key(seal_ec.key_pem, None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )

    identity = load_identity(seal_ec.certificate_pem.decode(), encrypted, "s3cret")

    assert verify_auth_request(sign_auth_request(auth_request(), identity)).identity_value == NIP
    for password, needle in ((None, "password is needed"), ("wrong", "wrong password")):
        with pytest.raises(SigningCredentialsError, match=needle) as caught:
            load_identity(seal_ec.certificate_pem, encrypted, password)
        assert "s3cret" not in str(caught.value) and _key_body(encrypted) not in str(caught.value)


@pytest.mark.parametrize(
    ("certificate", "key", "message"),
    [
        (b"garbage", None, "not a valid PEM X.509 certificate"),
        (
            None,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "could not be read",
        ),
    ],
)
def test_unreadable_credentials_are_one_line_errors(
    certificate: bytes | None, key: bytes | None, message: str, seal_ec: Credentials
) -> None:
    with pytest.raises(KsefctlError, match=message) as caught:
        load_identity(certificate or seal_ec.certificate_pem, key or seal_ec.key_pem)
    assert "\n" not in str(caught.value)


def test_key_of_another_certificate_is_refused(seal_ec: Credentials, other_ec: Credentials) -> None:
    with pytest.raises(SigningCredentialsError, match="does not belong") as caught:
        load_identity(seal_ec.certificate_pem, other_ec.key_pem)
    assert _key_body(other_ec.key_pem) not in str(caught.value)


def test_weak_keys_are_refused(seal_ec: Credentials) -> None:
    for key in (rsa.generate_private_key(65537, 1024), ec.generate_private_key(ec.SECP256K1())):
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(SigningCredentialsError, match=r"2048 bits|P-256"):
            load_identity(seal_ec.certificate_pem, pem)


def test_pkcs12_bundle_round_trip(personal_nip_ec: Credentials) -> None:
    identity = personal_nip_ec.identity
    bundle = pkcs12.serialize_key_and_certificates(
        b"ksef",
        identity.private_key,
        identity.certificate,
        None,
        serialization.BestAvailableEncryption(b"pw"),
    )

    loaded = load_pkcs12(bundle, "pw")

    assert loaded.fingerprint == identity.fingerprint
    with pytest.raises(SigningCredentialsError, match="wrong password"):
        load_pkcs12(bundle, "nope")


def test_build_auth_request_refuses_unknown_types() -> None:
    with pytest.raises(AuthRequestError, match="context type"):
        build_auth_request(CHALLENGE, "Pesel", NIP)
    with pytest.raises(AuthRequestError, match="subject identifier type"):
        build_auth_request(CHALLENGE, "Nip", NIP, "certificateName")


def test_build_auth_request_escapes_markup() -> None:
    document = build_auth_request("<&>", "Nip", NIP)

    assert b"<Challenge>&lt;&amp;&gt;</Challenge>" in document
