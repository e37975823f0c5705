"""Signing the ``AuthTokenRequest`` for KSeF's XAdES login.

KSeF wants an enveloped (or enveloping) XAdES-BES signature with RSA ≥ 2048
and rsa-sha256 or ECDSA P-256 (R||S), SHA-256 digests, and the signing
certificate in ``KeyInfo``; the identity that logs in is read from that
certificate.  signxml produces exactly that shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree
from signxml import methods
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.xades.xades import XAdESSigner

from ksefctl.errors import KsefctlError

AUTH_NAMESPACE = "http://ksef.mf.gov.pl/auth/token/2.0"
CONTEXT_TYPES = ("Nip", "InternalId", "NipVatUe", "PeppolId")
SUBJECT_IDENTIFIER_TYPES = ("certificateSubject", "certificateFingerprint")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SigningCredentialsError(KsefctlError):
    """A certificate or private key for XAdES login could not be used."""


class AuthRequestError(KsefctlError):
    """An ``AuthTokenRequest`` could not be built or signed."""


@dataclass(frozen=True, repr=False)
class SigningIdentity:
    """A certificate and the private key that signs for it."""

    certificate: x509.Certificate
    private_key: PrivateKey

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate DER, upper-case hex (KSeF's certificate fingerprint)."""
        return self.certificate.fingerprint(hashes.SHA256()).hex().upper()

    def __repr__(self) -> str:
        return f"SigningIdentity(subject={self.certificate.subject.rfc4514_string()!r}, fingerprint={self.fingerprint})"

    __str__ = __repr__


def load_identity(
    certificate_pem: bytes | str,
    private_key_pem: bytes | str,
    password: bytes | str | None = None,
) -> SigningIdentity:
    """Load a PEM certificate and its PEM private key (optionally encrypted)."""
    try:
        certificate = x509.load_pem_x509_certificate(_as_bytes(certificate_pem))
    except ValueError:
        raise SigningCredentialsError(
            "the signing certificate is not a valid PEM X.509 certificate"
        ) from None
    try:
        key = serialization.load_pem_private_key(
            _as_bytes(private_key_pem), password=_password(password)
        )
    except TypeError:
        # cryptography says TypeError when a password is missing or superfluous.
        message = (
            "the private key is encrypted: a password is needed"
            if password is None
            else "the private key is not encrypted, but a password was given"
        )
        raise SigningCredentialsError(message) from None
    except ValueError:
        raise SigningCredentialsError(
            "the private key could not be read (not PEM, corrupt, or wrong password)"
        ) from None
    return _identity(certificate, key)


def load_pkcs12(data: bytes, password: bytes | str | None) -> SigningIdentity:
    """Load a certificate and key from a PKCS#12 (.p12/.pfx) bundle."""
    try:
        key, certificate, _chain = pkcs12.load_key_and_certificates(data, _password(password))
    except ValueError:
        raise SigningCredentialsError(
            "the PKCS#12 bundle could not be read (corrupt or wrong password)"
        ) from None
    if key is None or certificate is None:
        raise SigningCredentialsError(
            "the PKCS#12 bundle must hold both a certificate and its private key"
        )
    return _identity(certificate, key)


def build_auth_request(
    challenge: str,
    context_type: str,
    context_value: str,
    subject_identifier_type: str = "certificateSubject",
) -> bytes:
    """The unsigned ``AuthTokenRequest`` document (UTF-8, no BOM)."""
    if context_type not in CONTEXT_TYPES:
        raise AuthRequestError(
            f"unknown context type {context_type!r} (expected one of {', '.join(CONTEXT_TYPES)})"
        )
    if subject_identifier_type not in SUBJECT_IDENTIFIER_TYPES:
        raise AuthRequestError(
            f"unknown subject identifier type {subject_identifier_type!r} "
            f"(expected one of {', '.join(SUBJECT_IDENTIFIER_TYPES)})"
        )
    text = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<AuthTokenRequest xmlns="{AUTH_NAMESPACE}">'
        f"<Challenge>{escape(challenge)}</Challenge>"
        f"<ContextIdentifier><{context_type}>{escape(context_value)}</{context_type}></ContextIdentifier>"
        f"<SubjectIdentifierType>{subject_identifier_type}</SubjectIdentifierType>"
        "</AuthTokenRequest>"
    )
    return text.encode("utf-8")


def sign_auth_request(document: bytes, identity: SigningIdentity) -> bytes:
    """``document`` with an enveloped XAdES-BES signature by ``identity`` appended."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(document, parser)
    except etree.XMLSyntaxError as error:
        raise AuthRequestError(f"the AuthTokenRequest is not well-formed XML: {error}") from None
    algorithm = (
        SignatureMethod.ECDSA_SHA256
        if isinstance(identity.private_key, ec.EllipticCurvePrivateKey)
        else SignatureMethod.RSA_SHA256
    )
    signer = XAdESSigner(
        method=methods.enveloped,
        signature_algorithm=algorithm,
        digest_algorithm=DigestAlgorithm.SHA256,
        # signxml digests the SignedProperties and KeyInfo references with this
        # algorithm but declares no transform on them, and a reference without
        # transforms means inclusive C14N 1.0 to every other verifier: only
        # inclusive C14N 1.0 keeps the two in agreement.
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    signed = signer.sign(root, key=identity.private_key, cert=[identity.certificate])
    result: bytes = etree.tostring(signed, xml_declaration=True, encoding="utf-8")
    return result


def _identity(certificate: x509.Certificate, key: object) -> SigningIdentity:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise SigningCredentialsError(
                f"RSA keys must have at least 2048 bits, this one has {key.key_size}"
            )
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise SigningCredentialsError(
                f"EC keys must be on curve P-256, this one is on {key.curve.name}"
            )
    else:
        raise SigningCredentialsError("only RSA and EC (P-256) private keys can sign for KSeF")
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
        raise SigningCredentialsError("the private key does not belong to the signing certificate")
    return SigningIdentity(certificate=certificate, private_key=key)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _password(password: bytes | str | None) -> bytes | None:
    return None if password is None else _as_bytes(password)
