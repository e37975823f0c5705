"""A second, independent XAdES-BES signer built on libxmlsec1, for interop tests.

It emits what xmlsec-based KSeF clients send: two references (the document
and SignedProperties, no KeyInfo reference), a legacy XAdES 1.3.2
``SigningCertificate`` with IssuerSerial, and a choice of document
transforms (enveloped-signature, XPath 1.0 filter, XPath Filter 2.0) and
canonicalisation.  It can also sign enveloping, and misbehave on request.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from typing import Literal

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"

C14N = {
    "inclusive": xmlsec.constants.TransformInclC14N,
    "inclusive-comments": xmlsec.constants.TransformInclC14NWithComments,
    "inclusive-1.1": xmlsec.constants.TransformInclC14N11,
    "exclusive": xmlsec.constants.TransformExclC14N,
    "exclusive-comments": xmlsec.constants.TransformExclC14NWithComments,
}
DocumentTransform = Literal["enveloped", "xpath", "xpath2", "xpath+xpath2", "none"]
NOT_SIGNATURE = "not(ancestor-or-self::ds:Signature)"


def sign_with_xmlsec(
    document: bytes,
    certificate_pem: bytes,
    key_pem: bytes,
    *,
    transform: DocumentTransform = "enveloped",
    c14n: str = "inclusive",
    xpath: str = NOT_SIGNATURE,
    enveloping: bool = False,
    signing_certificate_pem: bytes | None = None,
    sign_properties: bool = True,
) -> bytes:
    """Sign ``document``.

    ``signing_certificate_pem`` lies in SigningCertificate when given;
    ``sign_properties=False`` leaves SignedProperties out of SignedInfo.
    """
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    is_ec = "EC" in type(certificate.public_key()).__name__
    method = xmlsec.constants.TransformEcdsaSha256 if is_ec else xmlsec.constants.TransformRsaSha256
    c14n_transform = C14N[c14n]
    request = etree.fromstring(document)

    if enveloping:
        signature = xmlsec.template.create(request, c14n_transform, method, ns="ds")
        carrier = etree.SubElement(signature, f"{{{DS}}}Object", Id="Object-1")
        carrier.append(request)
        uri = "#Object-1"
        root = signature
    else:
        signature = xmlsec.template.create(request, c14n_transform, method, ns="ds")
        request.append(signature)
        uri = ""
        root = request
    signature.set("Id", "Signature-1")

    reference = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256, uri=uri)
    if transform == "enveloped":
        xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    if transform in ("xpath", "xpath+xpath2"):
        node = xmlsec.template.add_transform(reference, xmlsec.constants.TransformXPath)
        etree.SubElement(node, f"{{{DS}}}XPath", nsmap={"ds": DS}).text = xpath
    if transform in ("xpath2", "xpath+xpath2"):
        node = xmlsec.template.add_transform(reference, xmlsec.constants.TransformXPath2)
        filter2 = etree.SubElement(
            node, f"{{{FILTER2}}}XPath", Filter="subtract", nsmap={"dsig-xpath": FILTER2, "ds": DS}
        )
        filter2.text = "/descendant::ds:Signature"
    xmlsec.template.add_transform(reference, c14n_transform)

    if sign_properties:
        properties_reference = xmlsec.template.add_reference(
            signature,
            xmlsec.constants.TransformSha256,
            uri="#SignedProperties-1",
            type="http://uri.etsi.org/01903#SignedProperties",
        )
        xmlsec.template.add_transform(properties_reference, c14n_transform)
    key_info = xmlsec.template.ensure_key_info(signature)
    xmlsec.template.add_x509_data(key_info)

    named = x509.load_pem_x509_certificate(signing_certificate_pem or certificate_pem)
    _signed_properties(signature, named)
    if enveloping:
        # The template was assembled off-document; xmlsec resolves "#Object-1"
        # only within a real document whose root is the signature.
        root = signature = etree.fromstring(etree.tostring(signature))
    signed_properties = root.find(f".//{{{XADES}}}SignedProperties")

    key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(certificate_pem, xmlsec.constants.KeyDataFormatCertPem)
    context = xmlsec.SignatureContext()
    context.key = key
    context.register_id(signed_properties, "Id")
    if enveloping:
        context.register_id(root.find(f"{{{DS}}}Object"), "Id")
    context.sign(signature)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def _signed_properties(signature: etree._Element, named: x509.Certificate) -> None:
    carrier = etree.SubElement(signature, f"{{{DS}}}Object")
    qualifying = etree.SubElement(
        carrier, f"{{{XADES}}}QualifyingProperties", Target="#Signature-1", nsmap={"xades": XADES}
    )
    signed_properties = etree.SubElement(
        qualifying, f"{{{XADES}}}SignedProperties", Id="SignedProperties-1"
    )
    signature_properties = etree.SubElement(
        signed_properties, f"{{{XADES}}}SignedSignatureProperties"
    )
    etree.SubElement(signature_properties, f"{{{XADES}}}SigningTime").text = datetime.datetime.now(
        datetime.UTC
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    cert = etree.SubElement(
        etree.SubElement(signature_properties, f"{{{XADES}}}SigningCertificate"), f"{{{XADES}}}Cert"
    )
    digest = etree.SubElement(cert, f"{{{XADES}}}CertDigest")
    etree.SubElement(
        digest, f"{{{DS}}}DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"
    )
    der = named.public_bytes(serialization.Encoding.DER)
    etree.SubElement(digest, f"{{{DS}}}DigestValue").text = base64.b64encode(
        hashlib.sha256(der).digest()
    ).decode()
    issuer_serial = etree.SubElement(cert, f"{{{XADES}}}IssuerSerial")
    etree.SubElement(issuer_serial, f"{{{DS}}}X509IssuerName").text = named.issuer.rfc4514_string()
    etree.SubElement(issuer_serial, f"{{{DS}}}X509SerialNumber").text = str(named.serial_number)
