"""Signatures made by other libraries, in the shapes KSeF clients send, are accepted."""

from __future__ import annotations

import pytest

from ksefctl.sim.xades_verification import verify_auth_request
from tests.xades.conftest import CHALLENGE, NIP, PESEL, Credentials, auth_request
from tests.xades.xmlsec_signer import sign_with_xmlsec


@pytest.mark.parametrize(
    "options",
    [
        {"transform": "enveloped"},
        {"transform": "xpath"},
        {"transform": "xpath2"},
        {"transform": "xpath+xpath2"},
        {"transform": "enveloped", "c14n": "exclusive"},
        {"transform": "enveloped", "c14n": "exclusive-comments"},
        {"transform": "xpath", "c14n": "inclusive-comments"},
        {"transform": "xpath2", "c14n": "inclusive-1.1"},
        {"transform": "none", "enveloping": True},
    ],
    ids=lambda options: "-".join(str(v) for v in options.values()),
)
@pytest.mark.parametrize("credentials", ["seal_rsa", "seal_ec"])
def test_xmlsec_two_reference_signatures_are_accepted(
    credentials: str, options: dict[str, object], request: pytest.FixtureRequest
) -> None:
    creds: Credentials = request.getfixturevalue(credentials)

    verified = verify_auth_request(
        sign_with_xmlsec(auth_request(), creds.certificate_pem, creds.key_pem, **options)  # type: ignore[arg-type]
    )

    assert (verified.challenge, verified.context_value) == (CHALLENGE, NIP)
    assert (verified.identity_type, verified.identity_value) == ("Nip", NIP)


def test_xpath_filter_excluding_only_the_enclosing_signature_via_here_is_accepted(
    seal_ec: Credentials,
) -> None:
    # The XMLDSig spec's own example of an enveloped-signature XPath, which needs here().
    xpath = (
        "count(ancestor-or-self::ds:Signature | here()/ancestor::ds:Signature[1])"
        " > count(ancestor-or-self::ds:Signature)"
    )
    document = sign_with_xmlsec(
        auth_request(), seal_ec.certificate_pem, seal_ec.key_pem, transform="xpath", xpath=xpath
    )

    assert verify_auth_request(document).challenge == CHALLENGE


def test_personal_certificate_signed_by_xmlsec_identifies_by_pesel(
    personal_pesel_rsa: Credentials,
) -> None:
    document = sign_with_xmlsec(
        auth_request(), personal_pesel_rsa.certificate_pem, personal_pesel_rsa.key_pem
    )

    verified = verify_auth_request(document)

    assert (verified.identity_type, verified.identity_value) == ("Pesel", PESEL)


def test_schema_v2_1_request_with_authorization_policy_is_accepted(seal_ec: Credentials) -> None:
    document = (
        '<AuthTokenRequest xmlns="http://ksef.mf.gov.pl/auth/token/2.1">'
        f"<Challenge>{CHALLENGE}</Challenge>"
        "<ContextIdentifier><NipVatUe>5265877635-DE123456789</NipVatUe></ContextIdentifier>"
        "<SubjectIdentifierType>certificateSubject</SubjectIdentifierType>"
        "<AuthorizationPolicy><AllowedIps>"
        "<Ip4Address>192.168.0.10</Ip4Address>"
        "<Ip4Range>10.0.0.1-10.0.0.20</Ip4Range>"
        "<Ip4Mask>172.16.0.0/12</Ip4Mask>"
        "</AllowedIps></AuthorizationPolicy>"
        "</AuthTokenRequest>"
    ).encode()

    verified = verify_auth_request(
        sign_with_xmlsec(document, seal_ec.certificate_pem, seal_ec.key_pem)
    )

    assert (verified.context_type, verified.context_value) == ("NipVatUe", "5265877635-DE123456789")
    assert verified.authorization_policy == {
        "allowedIps": {
            "ip4Addresses": ["192.168.0.10"],
            "ip4Ranges": ["10.0.0.1-10.0.0.20"],
            "ip4Masks": ["172.16.0.0/12"],
        }
    }


def test_schema_v2_0_ip_patterns_work_despite_their_dotnet_regex(seal_ec: Credentials) -> None:
    document = auth_request().replace(
        b"</AuthTokenRequest>",
        b"<AuthorizationPolicy><AllowedIps><Ip4Address>8.8.8.8</Ip4Address>"
        b"</AllowedIps></AuthorizationPolicy></AuthTokenRequest>",
    )

    verified = verify_auth_request(
        sign_with_xmlsec(document, seal_ec.certificate_pem, seal_ec.key_pem)
    )

    assert verified.authorization_policy is not None
    assert verified.authorization_policy["allowedIps"]["ip4Addresses"] == ["8.8.8.8"]
