"""Certificates shared by the XAdES tests (RSA keys are slow to make, so once per session)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from ksefctl.ksef.xades_signing import SigningIdentity, build_auth_request, load_identity
from ksefctl.testcert import make_certificate, make_personal_certificate, make_seal_certificate

CHALLENGE = "20250625-CR-20F5EE4000-DA48AE4124-46"
NIP = "5265877635"
PESEL = "90010112349"


@dataclass(frozen=True)
class Credentials:
    certificate_pem: bytes
    key_pem: bytes

    @property
    def identity(self) -> SigningIdentity:
        return load_identity(self.certificate_pem, self.key_pem)


def auth_request(
    subject_identifier_type: str = "certificateSubject",
    context_type: str = "Nip",
    context_value: str = NIP,
) -> bytes:
    return build_auth_request(CHALLENGE, context_type, context_value, subject_identifier_type)


@pytest.fixture(scope="session")
def seal_rsa() -> Credentials:
    return Credentials(*make_seal_certificate(NIP, key_type="rsa"))


@pytest.fixture(scope="session")
def seal_ec() -> Credentials:
    return Credentials(*make_seal_certificate(NIP, key_type="ec"))


@pytest.fixture(scope="session")
def personal_pesel_rsa() -> Credentials:
    return Credentials(*make_personal_certificate(pesel=PESEL, key_type="rsa"))


@pytest.fixture(scope="session")
def personal_nip_ec() -> Credentials:
    return Credentials(*make_personal_certificate(nip=NIP, key_type="ec"))


@pytest.fixture(scope="session")
def other_ec() -> Credentials:
    return Credentials(*make_seal_certificate("1111111111", key_type="ec"))


@pytest.fixture(scope="session")
def expired_ec() -> Credentials:
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    return Credentials(*make_seal_certificate(NIP, key_type="ec", valid_from=start, valid_days=1))


@pytest.fixture(scope="session")
def anonymous_ec() -> Credentials:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "No Identity Here")])
    return Credentials(*make_certificate(subject, key_type="ec"))
