"""Whatever ksefctl signs, the simulator's verifier accepts with the right identity."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from ksefctl.ksef.xades_signing import sign_auth_request
from ksefctl.sim.xades_verification import VerifiedAuthRequest, verify_auth_request
from tests.xades.conftest import CHALLENGE, NIP, PESEL, Credentials, auth_request

DS = "{http://www.w3.org/2000/09/xmldsig#}"


@pytest.mark.parametrize(
    ("credentials", "identity_type", "identity_value"),
    [
        ("seal_rsa", "Nip", NIP),
        ("seal_ec", "Nip", NIP),
        ("personal_pesel_rsa", "Pesel", PESEL),
        ("personal_nip_ec", "Nip", NIP),
    ],
)
def test_signed_request_verifies_with_the_certificate_subject_identity(
    credentials: str, identity_type: str, identity_value: str, request: pytest.FixtureRequest
) -> None:
    creds: Credentials = request.getfixturevalue(credentials)
    identity = creds.identity

    verified = verify_auth_request(sign_auth_request(auth_request(), identity))

    assert verified == VerifiedAuthRequest(
        challenge=CHALLENGE,
        context_type="Nip",
        context_value=NIP,
        subject_identifier_type="certificateSubject",
        identity_type=identity_type,
        identity_value=identity_value,
        fingerprint=identity.fingerprint,
        authorization_policy=None,
    )


@pytest.mark.parametrize("credentials", ["seal_rsa", "seal_ec"])
def test_fingerprint_login_identifies_by_certificate_hash(
    credentials: str, request: pytest.FixtureRequest
) -> None:
    identity = request.getfixturevalue(credentials).identity

    verified = verify_auth_request(
        sign_auth_request(
            auth_request("certificateFingerprint", "InternalId", f"{NIP}-00001"), identity
        )
    )

    assert (verified.identity_type, verified.identity_value) == (
        "Fingerprint",
        identity.fingerprint,
    )
    assert (verified.context_type, verified.context_value) == ("InternalId", f"{NIP}-00001")
    assert len(identity.fingerprint) == 64 and identity.fingerprint == identity.fingerprint.upper()


def test_ecdsa_signature_value_is_raw_r_and_s(seal_ec: Credentials) -> None:
    signed = etree.fromstring(sign_auth_request(auth_request(), seal_ec.identity))
    value = signed.find(f"{DS}Signature/{DS}SignatureValue")
    assert value is not None
    assert len(base64.b64decode(value.text or "")) == 64  # P-256: 32-byte R || 32-byte S, not DER


def test_signxml_output_has_three_references_and_rsa_sha256(seal_rsa: Credentials) -> None:
    signed = etree.fromstring(sign_auth_request(auth_request(), seal_rsa.identity))
    info = signed.find(f"{DS}Signature/{DS}SignedInfo")
    assert info is not None
    assert len(info.findall(f"{DS}Reference")) == 3
    method = info.find(f"{DS}SignatureMethod")
    assert method is not None
    assert method.get("Algorithm") == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
