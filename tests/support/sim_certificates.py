"""KSeF certificates through the simulator's HTTP API: XAdES logins (signed by ksefctl's
signer or by xmlsec, independently), CSRs built without ksefctl, enrolment, retrieval.

Every exchange goes through ``sim.client()``, so each one is checked against open-api.json.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ksefctl.ksef.xades_signing import build_auth_request, load_identity, sign_auth_request
from ksefctl.testcert import make_seal_certificate
from tests.support.sim import OTHER_NIP, OWNER_NIP, Session, SimHandle, poll_auth
from tests.xades.xmlsec_signer import sign_with_xmlsec

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
Pem = tuple[bytes, bytes]


def client_signer(document: bytes, certificate: Pem) -> bytes:
    return sign_auth_request(document, load_identity(*certificate))


def xmlsec_signer(document: bytes, certificate: Pem) -> bytes:
    return sign_with_xmlsec(document, certificate[0], certificate[1])


def xades_login(
    sim: SimHandle,
    certificate: Pem,
    context: tuple[str, str] = ("Nip", OWNER_NIP),
    sign: Callable[[bytes, Pem], bytes] = client_signer,
) -> tuple[dict[str, Any], Session | None]:
    """Log in by XAdES; the final authentication status and, on 200, the session."""
    api = sim.client()
    challenge = api.post("/auth/challenge").json()["challenge"]
    document = sign(build_auth_request(challenge, *context), certificate)
    started = api.post(
        "/auth/xades-signature", content=document, headers={"Content-Type": "application/xml"}
    )
    assert started.status_code == 202, started.text
    reference = started.json()["referenceNumber"]
    auth = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
    status = poll_auth(api, reference, auth)
    if status["code"] != 200:
        return status, None
    operation = api.get(f"/auth/{reference}", headers=auth).json()
    tokens = api.post("/auth/token/redeem", headers=auth).json()
    session = Session(reference, tokens["accessToken"]["token"], tokens["refreshToken"]["token"])
    return {**status, "method": operation["authenticationMethod"]}, session


def new_key(kind: str = "ec") -> Key:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


OIDS = {
    "commonName": NameOID.COMMON_NAME,
    "surname": NameOID.SURNAME,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "countryName": NameOID.COUNTRY_NAME,
    "organizationName": NameOID.ORGANIZATION_NAME,
    "givenName": NameOID.GIVEN_NAME,
    "uniqueIdentifier": x509.ObjectIdentifier("2.5.4.45"),
    "organizationIdentifier": NameOID.ORGANIZATION_IDENTIFIER,
}


def make_csr(
    data: dict[str, str],
    key: Any,
    algorithm: Any = None,
    rsa_padding: Any = None,
) -> str:
    """A Base64 DER CSR carrying exactly ``data`` (built independently of ksefctl.ksef.csr)."""
    name = x509.Name([x509.NameAttribute(OIDS[k], v) for k, v in data.items()])
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    csr = builder.sign(key, algorithm or hashes.SHA256(), rsa_padding=rsa_padding)
    return base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()


def enrol(
    api: httpx.Client,
    session: Session,
    csr: str,
    certificate_type: str = "Authentication",
    name: str = "ksefctl test certificate",
) -> httpx.Response:
    return api.post(
        "/certificates/enrollments",
        headers=session.headers,
        json={"certificateName": name, "certificateType": certificate_type, "csr": csr},
    )


def wait_enrolment(api: httpx.Client, session: Session, reference: str) -> dict[str, Any]:
    for _ in range(1000):
        body: dict[str, Any] = api.get(
            f"/certificates/enrollments/{reference}", headers=session.headers
        ).json()
        if body["status"]["code"] != 100:
            return body
    raise AssertionError(f"enrolment {reference} still in progress")


def issue(
    sim: SimHandle,
    session: Session,
    key: Key,
    certificate_type: str = "Authentication",
    name: str = "ksefctl test certificate",
) -> tuple[str, x509.Certificate]:
    """Enrol with the session's enrolment data; the serial number and the issued certificate."""
    api = sim.client()
    data = api.get("/certificates/enrollments/data", headers=session.headers).json()
    started = enrol(api, session, make_csr(data, key), certificate_type, name)
    assert started.status_code == 202, started.text
    done = wait_enrolment(api, session, started.json()["referenceNumber"])
    assert done["status"]["code"] == 200, done
    serial = done["certificateSerialNumber"]
    got = api.post(
        "/certificates/retrieve",
        headers=session.headers,
        json={"certificateSerialNumbers": [serial]},
    ).json()["certificates"]
    assert [c["certificateSerialNumber"] for c in got] == [serial]
    return serial, x509.load_der_x509_certificate(base64.b64decode(got[0]["certificate"]))


def pem(certificate: x509.Certificate, key: Key) -> Pem:
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def seal_session(sim: SimHandle, nip: str = OWNER_NIP) -> Session:
    status, session = xades_login(sim, make_seal_certificate(nip), ("Nip", nip))
    assert session is not None, status
    return session


def xades_login_started(
    api: httpx.Client,
    certificate: tuple[bytes, bytes],
    context: tuple[str, str],
    tamper: bool = False,
) -> tuple[httpx.Response, dict[str, Any] | None]:
    """POST /auth/xades-signature (``tamper``: the signed context swapped after signing);
    the raw answer and, once it was accepted, the final authentication status."""
    challenge = api.post("/auth/challenge").json()["challenge"]
    document = sign_auth_request(
        build_auth_request(challenge, context[0], context[1]), load_identity(*certificate)
    )
    if tamper:
        document = document.replace(context[1].encode(), OTHER_NIP.encode(), 1)
    started = api.post(
        "/auth/xades-signature", content=document, headers={"Content-Type": "application/xml"}
    )
    if started.status_code != 202:
        return started, None
    headers = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
    return started, poll_auth(api, started.json()["referenceNumber"], headers)
