"""Tampered, detached, schema-invalid and badly certified requests are refused, each with its kind."""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Callable

import pytest
from lxml import etree

from ksefctl.ksef.xades_signing import build_auth_request, sign_auth_request
from ksefctl.sim.xades_verification import XadesError, verify_auth_request
from ksefctl.testcert import make_seal_certificate
from tests.xades.conftest import CHALLENGE, NIP, Credentials, auth_request
from tests.xades.xmlsec_signer import sign_with_xmlsec

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
NS = {"ds": DS, "xades": XADES}

Signer = Callable[[Credentials], bytes]
SIGNERS: dict[str, Signer] = {
    "signxml": lambda c: sign_auth_request(auth_request(), c.identity),
    "xmlsec-enveloped": lambda c: sign_with_xmlsec(auth_request(), c.certificate_pem, c.key_pem),
    "xmlsec-xpath2": lambda c: sign_with_xmlsec(
        auth_request(), c.certificate_pem, c.key_pem, transform="xpath2"
    ),
    "xmlsec-enveloping": lambda c: sign_with_xmlsec(
        auth_request(), c.certificate_pem, c.key_pem, transform="none", enveloping=True
    ),
}


def refused(document: bytes) -> XadesError:
    with pytest.raises(XadesError) as caught:
        verify_auth_request(document)
    return caught.value


def edit(document: bytes, change: Callable[[etree._Element], None]) -> bytes:
    root = etree.fromstring(document)
    change(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def first(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list) and found
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


def set_text(path: str, text: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        first(root, path).text = text

    return change


def remove(path: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        element = first(root, path)
        parent = element.getparent()
        assert parent is not None
        parent.remove(element)

    return change


def swap_certificate(root: etree._Element, other: bytes) -> None:
    first(root, "//ds:X509Certificate").text = base64.b64encode(_der(other)).decode()


def _der(pem: bytes) -> bytes:
    body = re.sub(rb"-----[A-Z ]+-----|\s", b"", pem)
    return base64.b64decode(body)


@pytest.mark.parametrize("signer", SIGNERS, ids=str)
@pytest.mark.parametrize(
    "tamper",
    [
        "challenge",
        "context",
        "subject-identifier-type",
        "certificate",
        "signed-properties",
        "document-digest",
        "signature-value",
        "removed-properties-reference",
    ],
)
def test_tampering_is_refused_as_signature(
    signer: str, tamper: str, seal_ec: Credentials, other_ec: Credentials
) -> None:
    original = SIGNERS[signer](seal_ec)
    assert verify_auth_request(original)  # the untampered document is fine
    changes: dict[str, Callable[[etree._Element], None]] = {
        "challenge": set_text(
            "//*[local-name()='Challenge']", "20250625-CR-20F5EE4000-DA48AE4124-47"
        ),
        "context": set_text("//*[local-name()='Nip']", "1111111111"),
        "subject-identifier-type": set_text(
            "//*[local-name()='SubjectIdentifierType']", "certificateFingerprint"
        ),
        "certificate": lambda root: swap_certificate(root, other_ec.certificate_pem),
        "signed-properties": set_text("//xades:SigningTime", "2020-01-01T00:00:00Z"),
        "document-digest": set_text(
            "//ds:Reference[not(@Type)][1]/ds:DigestValue",
            base64.b64encode(b"\0" * 32).decode(),
        ),
        "signature-value": lambda root: first(root, "//ds:SignatureValue").__setattr__(
            "text", base64.b64encode(b"\1" * 64).decode()
        ),
        "removed-properties-reference": remove("//ds:Reference[@Type]"),
    }

    error = refused(edit(original, changes[tamper]))

    assert error.kind == "signature", error


def test_signing_certificate_property_naming_another_certificate_is_refused(
    seal_ec: Credentials, other_ec: Credentials
) -> None:
    document = sign_with_xmlsec(
        auth_request(),
        seal_ec.certificate_pem,
        seal_ec.key_pem,
        signing_certificate_pem=other_ec.certificate_pem,
    )

    error = refused(document)

    assert (error.kind, str(error)) == (
        "signature",
        "the XAdES SigningCertificate does not match the KeyInfo certificate",
    )


def test_xades_signed_properties_must_be_signed(seal_ec: Credentials) -> None:
    document = sign_with_xmlsec(
        auth_request(), seal_ec.certificate_pem, seal_ec.key_pem, sign_properties=False
    )

    error = refused(document)

    assert (error.kind, str(error)) == ("signature", "the XAdES SignedProperties are not signed")


def test_a_reference_that_leaves_the_challenge_unsigned_is_refused(seal_ec: Credentials) -> None:
    # Cryptographically valid, yet the challenge could be swapped at will.
    xpath = (
        "not(ancestor-or-self::ds:Signature) and not(ancestor-or-self::*[local-name()='Challenge'])"
    )
    document = sign_with_xmlsec(
        auth_request(), seal_ec.certificate_pem, seal_ec.key_pem, transform="xpath", xpath=xpath
    )
    replayed = document.replace(CHALLENGE.encode(), b"20990101-CR-0000000000-0000000000-00")

    assert refused(document).kind == "signature"
    assert refused(replayed).kind == "signature"


@pytest.mark.parametrize(
    "uri", ["http://example.com/auth.xml", "auth.xml", "#no-such-id", "file:///etc/passwd"]
)
def test_detached_references_are_refused_as_malformed(uri: str, seal_ec: Credentials) -> None:
    document = sign_with_xmlsec(auth_request(), seal_ec.certificate_pem, seal_ec.key_pem)

    error = refused(document.replace(b'URI=""', f'URI="{uri}"'.encode(), 1))

    assert error.kind == "malformed"


def test_reference_without_uri_is_detached(seal_ec: Credentials) -> None:
    document = sign_with_xmlsec(auth_request(), seal_ec.certificate_pem, seal_ec.key_pem)

    assert refused(document.replace(b' URI=""', b"", 1)).kind == "malformed"


@pytest.mark.parametrize(
    "algorithm",
    ["http://www.w3.org/TR/1999/REC-xslt-19991116", "http://www.w3.org/2000/09/xmldsig#base64"],
)
def test_transforms_outside_the_allowed_set_are_refused(
    algorithm: str, seal_ec: Credentials
) -> None:
    document = sign_with_xmlsec(auth_request(), seal_ec.certificate_pem, seal_ec.key_pem)
    enveloped = b"http://www.w3.org/2000/09/xmldsig#enveloped-signature"

    assert refused(document.replace(enveloped, algorithm.encode())).kind == "malformed"


def test_sha1_digests_are_refused(seal_ec: Credentials) -> None:
    document = sign_with_xmlsec(auth_request(), seal_ec.certificate_pem, seal_ec.key_pem)
    sha1 = b"http://www.w3.org/2000/09/xmldsig#sha1"

    assert (
        refused(document.replace(b"http://www.w3.org/2001/04/xmlenc#sha256", sha1, 1)).kind
        == "malformed"
    )


@pytest.mark.parametrize(
    "document",
    [
        build_auth_request("not-a-challenge", "Nip", NIP),
        build_auth_request(CHALLENGE, "Nip", "0123456789"),
        build_auth_request(CHALLENGE, "InternalId", NIP),
        auth_request().replace(
            b"</AuthTokenRequest>",
            b"<AuthorizationPolicy><AllowedIps><Ip4Address>999.1.1.1</Ip4Address>"
            b"</AllowedIps></AuthorizationPolicy></AuthTokenRequest>",
        ),
        auth_request().replace(b"</AuthTokenRequest>", b"<Extra/></AuthTokenRequest>"),
        auth_request().replace(b"auth/token/2.0", b"auth/token/9.9"),
    ],
    ids=["challenge", "nip", "internal-id", "ip", "extra-element", "unknown-namespace"],
)
def test_schema_invalid_requests_are_refused_as_malformed(
    document: bytes, seal_ec: Credentials
) -> None:
    signed = sign_auth_request(document, seal_ec.identity)

    assert refused(signed).kind == "malformed"


def test_unsigned_and_doubly_signed_documents_are_malformed(seal_ec: Credentials) -> None:
    signed = etree.fromstring(sign_auth_request(auth_request(), seal_ec.identity))
    signature = signed.find(f"{{{DS}}}Signature")
    assert signature is not None
    signed.append(etree.fromstring(etree.tostring(signature)))

    assert refused(auth_request()).kind == "malformed"
    assert refused(etree.tostring(signed)).kind == "malformed"


def test_duplicate_ids_are_refused(seal_ec: Credentials) -> None:
    # Signature wrapping: a second element with the SignedProperties' Id.
    def wrap(root: etree._Element) -> None:
        decoy = etree.SubElement(first(root, "//ds:Object"), "Decoy", Id="SignedProperties-1")
        decoy.text = "x"

    document = sign_with_xmlsec(auth_request(), seal_ec.certificate_pem, seal_ec.key_pem)

    assert refused(edit(document, wrap)).kind == "malformed"


def test_expired_certificate_is_refused_as_certificate(expired_ec: Credentials) -> None:
    error = refused(sign_auth_request(auth_request(), expired_ec.identity))

    assert (error.kind, str(error)) == ("certificate", "the signing certificate has expired")


def test_comments_slipped_into_signed_values_do_not_change_them(seal_ec: Credentials) -> None:
    # Comments fall outside C14N-without-comments, so the signature stays valid.
    document = sign_auth_request(auth_request(), seal_ec.identity)
    split = document.replace(
        f"<Nip>{NIP}</Nip>".encode(), f"<Nip>{NIP[:5]}<!-- -->{NIP[5:]}</Nip>".encode()
    )

    verified = verify_auth_request(split)

    assert verified.context_value == NIP


def test_certificate_not_yet_valid_is_refused() -> None:
    tomorrow = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    creds = Credentials(*make_seal_certificate(NIP, key_type="ec", valid_from=tomorrow))

    assert refused(sign_auth_request(auth_request(), creds.identity)).kind == "certificate"


def test_certificate_without_identity_logs_in_only_by_fingerprint(
    anonymous_ec: Credentials,
) -> None:
    identity = anonymous_ec.identity

    error = refused(sign_auth_request(auth_request("certificateSubject"), identity))
    verified = verify_auth_request(
        sign_auth_request(auth_request("certificateFingerprint"), identity)
    )

    assert error.kind == "certificate"
    assert (verified.identity_type, verified.identity_value) == (
        "Fingerprint",
        identity.fingerprint,
    )


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE AuthTokenRequest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<AuthTokenRequest xmlns="http://ksef.mf.gov.pl/auth/token/2.0"><Challenge>&xxe;</Challenge>
<ContextIdentifier><Nip>5265877635</Nip></ContextIdentifier>
<SubjectIdentifierType>certificateSubject</SubjectIdentifierType></AuthTokenRequest>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<AuthTokenRequest xmlns="http://ksef.mf.gov.pl/auth/token/2.0"><Challenge>&lol9;</Challenge>
</AuthTokenRequest>"""


@pytest.mark.parametrize("document", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_entity_tricks_are_refused_without_expanding_anything(document: bytes) -> None:
    error = refused(document)

    assert error.kind == "malformed"
    assert "root:" not in str(error) and "lollol" not in str(error)


def test_oversized_documents_are_refused_before_parsing() -> None:
    assert refused(b"<a>" + b" " * 300_000 + b"</a>").kind == "malformed"
