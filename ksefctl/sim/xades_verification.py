"""Verification of XAdES-signed ``AuthTokenRequest`` documents, as KSeF TEST does it.

The simulator's ``POST /auth/xades-signature`` hands the raw body here and
gets back who signed what, or an :class:`XadesError` whose ``kind`` says
which KSeF error family applies.

Trust is TEST-style: the certificate in ``KeyInfo`` is its own trust anchor
(self-signed certificates log in), but everything else is checked for real.
The cryptography is done by libxmlsec1 (python-xmlsec), because signers in
the wild use transforms (XPath, XPath Filter 2.0, every C14N flavour) that
signxml's verifier does not implement.  xmlsec only proves that the
references it was given hash to what SignedInfo says; whether those
references actually cover the request and the XAdES SignedProperties is
decided here, by evaluating each reference's transforms against the nodes
that matter.  This module imports nothing else from ksefctl so the simulator
can ship on its own.
"""

from __future__ import annotations

import base64
import copy
import datetime
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
XPATH_FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"
AUTH_SCHEMAS = {
    "http://ksef.mf.gov.pl/auth/token/2.0": "schemat_auth_v2-0.xsd",
    "http://ksef.mf.gov.pl/auth/token/2.1": "schemat_auth_v2-1.xsd",
}
MAX_DOCUMENT_BYTES = 256 * 1024

_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
_C14N = {
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315": xmlsec.constants.TransformInclC14N,
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": xmlsec.constants.TransformInclC14NWithComments,
    "http://www.w3.org/2006/12/xml-c14n11": xmlsec.constants.TransformInclC14N11,
    "http://www.w3.org/2006/12/xml-c14n11#WithComments": xmlsec.constants.TransformInclC14N11WithComments,
    "http://www.w3.org/2001/10/xml-exc-c14n#": xmlsec.constants.TransformExclC14N,
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments": xmlsec.constants.TransformExclC14NWithComments,
}
_NODE_SET_FILTERS = {
    _ENVELOPED: xmlsec.constants.TransformEnveloped,
    _XPATH: xmlsec.constants.TransformXPath,
    XPATH_FILTER2: xmlsec.constants.TransformXPath2,
}
_DIGESTS = {
    "http://www.w3.org/2001/04/xmlenc#sha256": xmlsec.constants.TransformSha256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": xmlsec.constants.TransformSha384,
    "http://www.w3.org/2001/04/xmlenc#sha512": xmlsec.constants.TransformSha512,
}
_CERT_DIGESTS: dict[str, hashes.HashAlgorithm] = {
    "http://www.w3.org/2000/09/xmldsig#sha1": hashes.SHA1(),  # XAdES 1.3.2 SigningCertificate still uses it
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256(),
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashes.SHA384(),
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512(),
}
# SHA-1 signature methods are on KSeF's list, but a simulator has no reason to
# encourage them; every SHA-2 variant of the two key types is accepted.
_RSA_METHODS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": xmlsec.constants.TransformRsaSha256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": xmlsec.constants.TransformRsaSha384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": xmlsec.constants.TransformRsaSha512,
}
_ECDSA_METHODS = {
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": xmlsec.constants.TransformEcdsaSha256,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": xmlsec.constants.TransformEcdsaSha384,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": xmlsec.constants.TransformEcdsaSha512,
}
_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_ID_ATTRIBUTES = ("Id", "ID", "id")
_XPOINTER_ID = re.compile(r"""#xpointer\(id\((['"])([^'"]+)\1\)\)""")
# KSeF's recognised identity patterns (podpis-xades.md), searched unanchored like .NET's Regex.Match.
_PERSONAL_PATTERNS = (
    (re.compile(r"(PNOPL|PESEL).*?(\d{11})"), "Pesel"),
    (re.compile(r"(TINPL|NIP).*?(\d{10})"), "Nip"),
)
_SEAL_PATTERN = re.compile(r"(VATPL).*?(\d{10})")
# A private prefix for our own XPath so it cannot clash with the signer's prefixes.
_OWN = "ksefctl-verifier-ds"

ErrorKind = Literal["malformed", "signature", "certificate"]


class XadesError(Exception):
    """The document was refused; ``kind`` is ``malformed``, ``signature`` or ``certificate``."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        code: int | None = None,
        status_detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        # KSeF's 400 code when it has a specific one (21001, 21401, 9102, 9103, 21115), and
        # the documented 460 detail for a certificate refusal.
        self.code = code
        self.status_detail = status_detail

    def __repr__(self) -> str:
        return f"XadesError({self.kind!r}, {str(self)!r})"


@dataclass(frozen=True)
class VerifiedAuthRequest:
    challenge: str
    context_type: str  # "Nip" | "InternalId" | "NipVatUe" (the schema also allows "PeppolId")
    context_value: str
    subject_identifier_type: str  # "certificateSubject" | "certificateFingerprint"
    identity_type: str  # "Nip" | "Pesel" | "Fingerprint"
    identity_value: str  # NIP/PESEL digits, or the fingerprint when certificateFingerprint
    fingerprint: str  # SHA-256 of the signing certificate DER, hex upper case
    authorization_policy: dict[str, Any] | None
    # The signing certificate itself: its DN is what a KSeF certificate enrolment must repeat.
    certificate: x509.Certificate | None = field(default=None, compare=False)


def verify_auth_request(
    document: bytes, *, now: datetime.datetime | None = None
) -> VerifiedAuthRequest:
    """Verify a signed ``AuthTokenRequest`` and say who signed it for which context.

    ``now`` (timezone-aware) is when the certificate must be valid; it defaults to the current time.
    """
    root = _parse(document)
    signature = _the_signature(root)
    request = _the_request(root, signature)
    _validate_schema(request)
    ids = _index_ids(root)
    references = [
        _Reference.read(element, ids)
        for element in signature.iterfind(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    ]
    if not references:
        raise XadesError("malformed", "the signature has no references")
    method = _signature_method(signature)
    certificate = _signing_certificate(signature)
    _check_key(certificate, method)
    _verify_cryptographically(signature, certificate, method, references, ids)
    # From here on SignedInfo is authentic, so the references say what the signer meant to sign.
    if not any(
        reference.covers(request, signature, skip_signatures=True) for reference in references
    ):
        raise XadesError("signature", "the signature does not cover the whole AuthTokenRequest")
    _check_signed_properties(signature, certificate, references)
    _check_validity(certificate, now or datetime.datetime.now(datetime.UTC))
    return _read_request(request, certificate)


# --- parsing and structure ---------------------------------------------------


def _parse(document: bytes) -> etree._Element:
    if len(document) > MAX_DOCUMENT_BYTES:
        raise XadesError(
            "malformed", f"the document is larger than {MAX_DOCUMENT_BYTES} bytes", code=21001
        )
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        remove_comments=False,
        remove_pis=False,
    )
    try:
        tree = etree.ElementTree(etree.fromstring(document, parser))
    except etree.XMLSyntaxError as error:
        raise XadesError(
            "malformed", f"the document is not well-formed XML: {error}", code=21001
        ) from None
    # An AuthTokenRequest has no business carrying a DTD; refusing it closes
    # every entity trick (XXE, billion laughs) regardless of parser settings.
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        raise XadesError("malformed", "the document must not contain a DOCTYPE")
    return tree.getroot()


def _the_signature(root: etree._Element) -> etree._Element:
    signatures = list(root.iter(f"{{{DS}}}Signature"))
    if not signatures:
        raise XadesError("malformed", "the document is not signed", code=9102)
    if len(signatures) > 1:
        raise XadesError(
            "malformed",
            f"the document carries {len(signatures)} signatures; exactly one is allowed",
            code=9103,
        )
    return signatures[0]


def _the_request(root: etree._Element, signature: etree._Element) -> etree._Element:
    requests = [
        element for ns in AUTH_SCHEMAS for element in root.iter(f"{{{ns}}}AuthTokenRequest")
    ]
    if len(requests) != 1:
        raise XadesError("malformed", "the document must contain exactly one AuthTokenRequest")
    request = requests[0]
    enveloped = request is root and signature.getparent() is request
    enveloping = (
        signature is root
        and request.getparent() is not None
        and request.getparent().tag == f"{{{DS}}}Object"
        and request.getparent().getparent() is signature
    )
    if not (enveloped or enveloping):
        raise XadesError(
            "malformed",
            "the signature must be enveloped in the AuthTokenRequest or envelop it in a ds:Object",
        )
    return request


def _validate_schema(request: etree._Element) -> None:
    namespace = etree.QName(request).namespace
    assert namespace is not None
    content = copy.deepcopy(request)
    # The XSD has no slot for the signature: KSeF validates the request around it.
    for signature in list(content.iter(f"{{{DS}}}Signature")):
        _remove(signature)
    schema = _schema(namespace)
    if not schema.validate(content):
        error = schema.error_log.last_error
        raise XadesError(
            "malformed",
            f"the AuthTokenRequest does not match its schema: {error.message if error else ''}",
            code=21401,
        )


@cache
def _schema(namespace: str) -> etree.XMLSchema:
    directory = Path(__file__).with_name("xsd")
    tree = etree.parse(str(directory / AUTH_SCHEMAS[namespace]))
    revised = etree.parse(str(directory / AUTH_SCHEMAS["http://ksef.mf.gov.pl/auth/token/2.1"]))
    patterns = tree.iterfind(".//{http://www.w3.org/2001/XMLSchema}pattern")
    revised_patterns = revised.iterfind(".//{http://www.w3.org/2001/XMLSchema}pattern")
    for pattern, revised_pattern in zip(patterns, revised_patterns, strict=True):
        value = pattern.get("value", "")
        # The schemas were written for .NET, where \b, ^ and $ are anchors.
        # XSD patterns are anchored anyway, so ^/$ go; v2.0's \b patterns give
        # way to v2.1's rewrite of the same IPv4 grammar.
        if r"\b" in value:
            value = revised_pattern.get("value", "")
        pattern.set("value", value.removeprefix("^").removesuffix("$"))
    return etree.XMLSchema(tree)


def _index_ids(root: etree._Element) -> dict[str, etree._Element]:
    ids: dict[str, etree._Element] = {}
    for element in root.iter(tag=etree.Element):
        for name in _ID_ATTRIBUTES:
            value = element.get(name)
            if value is None:
                continue
            # A duplicate Id is the classic signature-wrapping trick.
            if value in ids:
                raise XadesError("malformed", f"the Id {value!r} is used more than once")
            ids[value] = element
    return ids


def _text(element: etree._Element) -> str:
    # The XPath string-value, not ``.text``: comments are not signed, so a
    # comment slipped into "52658<!---->77635" must not cut the value short.
    return str(element.xpath("string()")).strip()


def _remove(element: etree._Element) -> None:
    parent = element.getparent()
    assert parent is not None
    tail = element.tail
    previous = element.getprevious()
    parent.remove(element)
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail


# --- references --------------------------------------------------------------


@dataclass(frozen=True)
class _Transform:
    algorithm: str
    element: etree._Element


@dataclass(frozen=True)
class _Reference:
    uri: str
    target: etree._Element  # the element whose subtree the URI selects (the root for "")
    transforms: tuple[_Transform, ...]
    element: etree._Element

    @classmethod
    def read(cls, element: etree._Element, ids: dict[str, etree._Element]) -> _Reference:
        uri = element.get("URI")
        if uri is None:
            raise XadesError(
                "malformed", "a reference without URI points outside the document (detached)"
            )
        target = _resolve(uri, element, ids)
        transforms = tuple(
            _Transform(t.get("Algorithm", ""), t)
            for t in element.iterfind(f"{{{DS}}}Transforms/{{{DS}}}Transform")
        )
        for transform in transforms:
            if transform.algorithm not in _C14N and transform.algorithm not in _NODE_SET_FILTERS:
                raise XadesError("malformed", f"transform {transform.algorithm!r} is not accepted")
        digest = element.find(f"{{{DS}}}DigestMethod")
        if digest is None or digest.get("Algorithm") not in _DIGESTS:
            algorithm = None if digest is None else digest.get("Algorithm")
            raise XadesError(
                "malformed", f"digest method {algorithm!r} is not accepted (use SHA-256)"
            )
        return cls(uri, target, transforms, element)

    def covers(
        self, subject: etree._Element, signature: etree._Element, *, skip_signatures: bool
    ) -> bool:
        """Whether every node of ``subject`` (bar nested signatures) reaches this reference's digest."""
        if not _is_ancestor_or_self(self.target, subject):
            return False
        nodes = list(_significant_nodes(subject, skip_signatures))
        for transform in self.transforms:
            if transform.algorithm == _ENVELOPED:
                if _is_ancestor_or_self(signature, subject):
                    return False
            elif transform.algorithm == _XPATH:
                if not _xpath_keeps(transform.element, subject, skip_signatures):
                    return False
            elif transform.algorithm == XPATH_FILTER2 and not _filter2_keeps(
                transform.element, nodes
            ):
                return False
        return True


def _resolve(uri: str, reference: etree._Element, ids: dict[str, etree._Element]) -> etree._Element:
    root = reference.getroottree().getroot()
    if uri in ("", "#xpointer(/)"):
        return root
    match = _XPOINTER_ID.fullmatch(uri)
    name = match.group(2) if match else uri[1:] if uri.startswith("#") else None
    if name is None:
        raise XadesError(
            "malformed",
            "references must point inside the document; detached signatures are not accepted",
        )
    if name not in ids:
        raise XadesError(
            "malformed", f"a reference points at Id {name!r}, which is not in the document"
        )
    return ids[name]


def _is_ancestor_or_self(ancestor: etree._Element, node: etree._Element) -> bool:
    current: etree._Element | None = node
    while current is not None:
        if current is ancestor:
            return True
        current = current.getparent()
    return False


# A significant node is an element, one of its attributes, or a text node
# (the element's own text, or a child's tail which belongs to the element).
_Node = tuple[etree._Element, str]  # (element, "" | "text" | "tail" | "@name")


def _significant_nodes(subject: etree._Element, skip_signatures: bool) -> Iterator[_Node]:
    for element in subject.iter(tag=etree.Element):
        if skip_signatures and any(
            a.tag == f"{{{DS}}}Signature" for a in _ancestors_or_self(element)
        ):
            continue
        yield element, ""
        for name in element.attrib:
            yield element, f"@{name}"
        if element.text is not None:
            yield element, "text"
        if element is not subject and element.tail is not None:
            yield element, "tail"


def _ancestors_or_self(element: etree._Element) -> Iterator[etree._Element]:
    current: etree._Element | None = element
    while current is not None:
        yield current
        current = current.getparent()


def _here(transform: etree._Element) -> dict[tuple[str | None, str], Callable[..., Any]]:
    # here() names the node holding the expression; both XPath filters define it.
    return {(None, "here"): lambda _context: [transform]}


def _namespaces(element: etree._Element) -> dict[str, str]:
    return {prefix: uri for prefix, uri in element.nsmap.items() if prefix is not None}


def _xpath_keeps(transform: etree._Element, subject: etree._Element, skip_signatures: bool) -> bool:
    """XPath 1.0 filter: the expression, cast to boolean, must hold for every significant node."""
    xpath = transform.find(f"{{{DS}}}XPath")
    if xpath is None or not _text(xpath):
        raise XadesError("malformed", "an XPath transform has no expression")
    namespaces = _namespaces(xpath)
    namespaces[_OWN] = DS
    skip = f"[not(ancestor-or-self::{_OWN}:Signature)]" if skip_signatures else ""
    query = (
        "count((descendant-or-self::* | descendant::text() | descendant-or-self::*/@*)"
        f"{skip}[not(boolean({_text(xpath)}))])"
    )
    try:
        dropped = etree.XPath(query, namespaces=namespaces, extensions=_here(xpath))(subject)
    except (etree.XPathError, TypeError) as error:
        raise XadesError(
            "malformed", f"an XPath transform could not be evaluated: {error}"
        ) from None
    return bool(dropped == 0)


def _filter2_keeps(transform: etree._Element, nodes: list[_Node]) -> bool:
    """XPath Filter 2.0: intersect/subtract/union of subtrees, applied in document order."""
    filters = transform.findall(f"{{{XPATH_FILTER2}}}XPath")
    if not filters:
        raise XadesError("malformed", "an XPath Filter 2.0 transform has no XPath")
    kept = dict.fromkeys(nodes, True)
    document = transform.getroottree()
    for element in filters:
        operation = element.get("Filter")
        if operation not in ("intersect", "subtract", "union"):
            raise XadesError(
                "malformed", f"XPath Filter 2.0 operation {operation!r} is not defined"
            )
        try:
            selected = etree.XPath(
                _text(element), namespaces=_namespaces(element), extensions=_here(element)
            )(document)
        except (etree.XPathError, TypeError) as error:
            raise XadesError(
                "malformed", f"an XPath Filter 2.0 expression could not be evaluated: {error}"
            ) from None
        if not isinstance(selected, list):
            raise XadesError("malformed", "an XPath Filter 2.0 expression must select nodes")
        roots = _selected_nodes(selected)
        for node in kept:
            inside = _in_subtree_of(node, roots)
            if operation == "intersect":
                kept[node] = kept[node] and inside
            elif operation == "subtract":
                kept[node] = kept[node] and not inside
            else:
                kept[node] = kept[node] or inside
    return all(kept.values())


def _selected_nodes(selected: Iterable[Any]) -> set[_Node]:
    nodes: set[_Node] = set()
    for item in selected:
        if isinstance(item, etree._Element):
            nodes.add((item, ""))
        elif isinstance(item, etree._ElementUnicodeResult) and item.getparent() is not None:
            parent = item.getparent()
            if item.is_attribute:
                nodes.add((parent, f"@{item.attrname}"))
            else:
                nodes.add((parent, "tail" if item.is_tail else "text"))
    return nodes


def _in_subtree_of(node: _Node, roots: set[_Node]) -> bool:
    if node in roots:
        return True
    element, part = node
    # A tail text node's parent is the element's parent; the rest belong to the element.
    owner = element.getparent() if part == "tail" else element
    return owner is not None and any(
        (ancestor, "") in roots for ancestor in _ancestors_or_self(owner)
    )


# --- cryptography -------------------------------------------------------------


def _signature_method(signature: etree._Element) -> str:
    method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod")
    algorithm = None if method is None else method.get("Algorithm")
    if algorithm not in _RSA_METHODS and algorithm not in _ECDSA_METHODS:
        raise XadesError(
            "malformed",
            f"signature method {algorithm!r} is not accepted (use rsa-sha256 or ecdsa-sha256)",
        )
    c14n = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}CanonicalizationMethod")
    if c14n is None or c14n.get("Algorithm") not in _C14N:
        raise XadesError(
            "malformed", "the SignedInfo canonicalization method is missing or not accepted"
        )
    return str(algorithm)


def _signing_certificate(signature: etree._Element) -> x509.Certificate:
    certificates = []
    for element in signature.iterfind(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate"):
        try:
            certificates.append(x509.load_der_x509_certificate(base64.b64decode(_text(element))))
        except ValueError:
            raise XadesError(
                "malformed", "KeyInfo holds a certificate that cannot be decoded", code=21115
            ) from None
    if not certificates:
        raise XadesError(
            "malformed", "KeyInfo must carry the signing certificate (X509Certificate)"
        )
    if len(certificates) == 1:
        return certificates[0]
    # With a chain in KeyInfo, the signing certificate is the one SignedProperties names.
    named = _signed_certificate_digests(signature)
    for certificate in certificates:
        if any(_digest_matches(certificate, algorithm, value) for algorithm, value in named):
            return certificate
    raise XadesError("signature", "no certificate in KeyInfo matches the XAdES SigningCertificate")


def _check_key(certificate: x509.Certificate, method: str) -> None:
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise XadesError(
                "certificate", f"RSA keys must have at least 2048 bits, not {key.key_size}"
            )
        if method not in _RSA_METHODS:
            raise XadesError(
                "signature", "the signature method does not fit the certificate's RSA key"
            )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _EC_CURVES):
            raise XadesError(
                "certificate", f"EC curve {key.curve.name} is not accepted (use P-256)"
            )
        if method not in _ECDSA_METHODS:
            raise XadesError(
                "signature", "the signature method does not fit the certificate's EC key"
            )
    else:
        raise XadesError("certificate", "only RSA and EC certificates are accepted")


def _verify_cryptographically(
    signature: etree._Element,
    certificate: x509.Certificate,
    method: str,
    references: list[_Reference],
    ids: dict[str, etree._Element],
) -> None:
    context = xmlsec.SignatureContext()
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    try:
        context.key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatCertPem)
    except xmlsec.Error:
        raise XadesError("certificate", "the signing certificate's key cannot be used") from None
    for element in ids.values():
        for name in _ID_ATTRIBUTES:
            if element.get(name) is not None:
                context.register_id(element, name)
    # Enabling any transform makes xmlsec refuse all others (XSLT, remote URIs via XPointer…).
    for transform in (*_C14N.values(), *_NODE_SET_FILTERS.values(), *_DIGESTS.values()):
        context.enable_reference_transform(transform)
    for transform in (*_C14N.values(), (_RSA_METHODS | _ECDSA_METHODS)[method]):
        context.enable_signature_transform(transform)
    try:
        context.verify(signature)
    except xmlsec.Error:
        raise XadesError("signature", "the signature does not verify") from None


# --- XAdES and certificate -----------------------------------------------------


def _signed_certificate_digests(signature: etree._Element) -> list[tuple[str, str]]:
    path = (
        f"{{{DS}}}Object/{{{XADES}}}QualifyingProperties/{{{XADES}}}SignedProperties"
        f"/{{{XADES}}}SignedSignatureProperties/*/{{{XADES}}}Cert/{{{XADES}}}CertDigest"
    )
    digests = []
    for cert_digest in signature.iterfind(path):
        parent = cert_digest.getparent()
        assert parent is not None
        holder = parent.getparent()
        assert holder is not None
        if holder.tag not in (f"{{{XADES}}}SigningCertificate", f"{{{XADES}}}SigningCertificateV2"):
            continue
        method = cert_digest.find(f"{{{DS}}}DigestMethod")
        value = cert_digest.find(f"{{{DS}}}DigestValue")
        if method is not None and value is not None:
            digests.append((method.get("Algorithm", ""), _text(value)))
    return digests


def _digest_matches(certificate: x509.Certificate, algorithm: str, value: str) -> bool:
    if algorithm not in _CERT_DIGESTS:
        return False
    digest = hashes.Hash(_CERT_DIGESTS[algorithm])
    digest.update(certificate.public_bytes(serialization.Encoding.DER))
    try:
        return base64.b64decode(value, validate=True) == digest.finalize()
    except ValueError:
        return False


def _check_signed_properties(
    signature: etree._Element, certificate: x509.Certificate, references: list[_Reference]
) -> None:
    properties = signature.findall(
        f"{{{DS}}}Object/{{{XADES}}}QualifyingProperties/{{{XADES}}}SignedProperties"
    )
    if len(properties) != 1:
        raise XadesError("signature", "the signature must carry exactly one XAdES SignedProperties")
    signed_properties = properties[0]
    qualifying = signed_properties.getparent()
    assert qualifying is not None
    signature_id = signature.get("Id")
    if signature_id is not None and qualifying.get("Target") != f"#{signature_id}":
        raise XadesError("signature", "the XAdES QualifyingProperties belong to another signature")
    if not any(r.covers(signed_properties, signature, skip_signatures=False) for r in references):
        raise XadesError("signature", "the XAdES SignedProperties are not signed")
    digests = _signed_certificate_digests(signature)
    if not digests:
        raise XadesError(
            "signature", "the XAdES SignedProperties do not name the signing certificate"
        )
    if not any(_digest_matches(certificate, algorithm, value) for algorithm, value in digests):
        raise XadesError(
            "signature", "the XAdES SigningCertificate does not match the KeyInfo certificate"
        )


def _check_validity(certificate: x509.Certificate, now: datetime.datetime) -> None:
    if now < certificate.not_valid_before_utc:
        raise XadesError(
            "certificate",
            "the signing certificate is not valid yet",
            status_detail="Nieważny certyfikat",
        )
    if now > certificate.not_valid_after_utc:
        raise XadesError(
            "certificate",
            "the signing certificate has expired",
            status_detail="Nieważny certyfikat",
        )


def _identity(certificate: x509.Certificate) -> tuple[str, str]:
    subject = certificate.subject
    for attribute in subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER):
        for pattern, identity_type in _PERSONAL_PATTERNS:
            match = pattern.search(str(attribute.value))
            if match:
                return identity_type, match.group(2)
    for attribute in subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_IDENTIFIER):
        match = _SEAL_PATTERN.search(str(attribute.value))
        if match:
            return "Nip", match.group(2)
    raise XadesError(
        "certificate",
        "the certificate subject carries no NIP or PESEL (use certificateFingerprint instead)",
    )


def _read_request(request: etree._Element, certificate: x509.Certificate) -> VerifiedAuthRequest:
    ns = etree.QName(request).namespace

    def text(path: str) -> str:
        element = request.find(path, {"a": ns})
        return "" if element is None else _text(element)

    context = request.find("a:ContextIdentifier", {"a": ns})
    assert context is not None and len(context) == 1  # the schema guarantees one choice
    subject_identifier_type = text("a:SubjectIdentifierType")
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex().upper()
    if subject_identifier_type == "certificateFingerprint":
        identity_type, identity_value = "Fingerprint", fingerprint
    else:
        identity_type, identity_value = _identity(certificate)
    return VerifiedAuthRequest(
        challenge=text("a:Challenge"),
        context_type=etree.QName(context[0]).localname,
        context_value=_text(context[0]),
        subject_identifier_type=subject_identifier_type,
        identity_type=identity_type,
        identity_value=identity_value,
        fingerprint=fingerprint,
        authorization_policy=_authorization_policy(request, ns),
        certificate=certificate,
    )


def _authorization_policy(request: etree._Element, ns: str | None) -> dict[str, Any] | None:
    allowed = request.find("a:AuthorizationPolicy/a:AllowedIps", {"a": ns})
    if allowed is None:
        return None

    def values(tag: str) -> list[str]:
        return [_text(e) for e in allowed.iterfind(f"a:{tag}", {"a": ns})]

    # Shaped like the JSON AuthorizationPolicy of /auth/ksef-token, so both logins look alike.
    return {
        "allowedIps": {
            "ip4Addresses": values("Ip4Address"),
            "ip4Ranges": values("Ip4Range"),
            "ip4Masks": values("Ip4Mask"),
        }
    }
