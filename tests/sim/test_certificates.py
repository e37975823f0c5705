"""KSeF certificates in the simulator: limits, enrolment data, CSR rules, asynchronous enrolment,
retrieval, query, revocation, expiry, and logging in with what was issued.

Every exchange goes through ``sim.client()``, so each response is checked against open-api.json.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ksefctl.sim.config import SimConfig
from ksefctl.testcert import make_personal_certificate
from tests.support.sim import OTHER_NIP, OWNER_NIP, Session, SimHandle, start_sim
from tests.support.sim_certificates import (
    Pem,
    enrol,
    issue,
    make_csr,
    new_key,
    pem,
    seal_session,
    wait_enrolment,
    xades_login,
)
from tests.support.sim_certificates import client_signer as _client_signer
from tests.support.sim_certificates import xmlsec_signer as _xmlsec_signer

PESEL = "15062788702"
DAY = 24 * 3600.0


@pytest.fixture
def sim_config() -> SimConfig:
    # These stories make more than the 30 requests a minute KSeF allows; one test turns limits on.
    return SimConfig(rate_limits_enabled=False)


# --- helpers ---------------------------------------------------------------------------


def _code(response: httpx.Response) -> int:
    body = response.json()
    if "exception" in body:
        return int(body["exception"]["exceptionDetailList"][0]["exceptionCode"])
    return int(body["errors"][0]["code"])


def query(sim: SimHandle, session: Session, body: Any = None, **params: Any) -> dict[str, Any]:
    response = sim.client().post(
        "/certificates/query", headers=session.headers, json=body or {}, params=params
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# --- limits and enrolment data -----------------------------------------------------------


def test_limits_follow_the_subject_type_and_the_test_overrides(sim: SimHandle) -> None:
    api = sim.client()
    seal = seal_session(sim)
    limits = api.get("/certificates/limits", headers=seal.headers).json()
    assert limits == {
        "canRequest": True,
        "enrollment": {"limit": 300, "remaining": 300},
        "certificate": {"limit": 100, "remaining": 100},
    }
    sim.grant(OWNER_NIP, ("Pesel", PESEL), ["InvoiceRead"])
    _, person = xades_login(sim, make_personal_certificate(pesel=PESEL))
    assert person is not None
    assert api.get("/certificates/limits", headers=person.headers).json()["certificate"] == {
        "limit": 6,
        "remaining": 6,
    }
    changed = api.post(
        "/testdata/limits/subject/certificate",
        headers=person.headers,
        json={"subjectIdentifierType": "Pesel", "certificate": {"maxCertificates": 0}},
    )
    assert changed.status_code == 200
    after = api.get("/certificates/limits", headers=person.headers).json()
    assert after["canRequest"] is False and after["certificate"] == {"limit": 0, "remaining": 0}
    assert api.get("/limits/subject", headers=person.headers).json() == {
        "enrollment": {"maxEnrollments": 12},
        "certificate": {"maxCertificates": 0},
    }
    assert api.delete("/testdata/limits/subject/certificate", headers=person.headers).is_success
    assert api.get("/certificates/limits", headers=person.headers).json()["canRequest"] is True


def test_enrolment_data_repeats_the_login_certificate_and_token_sessions_get_25001(
    sim: SimHandle,
) -> None:
    api = sim.client()
    seal = seal_session(sim)
    assert api.get("/certificates/enrollments/data", headers=seal.headers).json() == {
        "commonName": "Test Company",
        "countryName": "PL",
        "organizationName": "Test Company",
        "organizationIdentifier": f"VATPL-{OWNER_NIP}",
    }
    sim.grant(OWNER_NIP, ("Pesel", PESEL), ["InvoiceRead"])
    _, person = xades_login(sim, make_personal_certificate(pesel=PESEL, given_name="Anna"))
    assert person is not None
    assert api.get("/certificates/enrollments/data", headers=person.headers).json() == {
        "commonName": "Anna Kowalski",
        "countryName": "PL",
        "givenName": "Anna",
        "surname": "Kowalski",
        "serialNumber": f"PNOPL-{PESEL}",
    }
    token_session = sim.login_with_token(sim.mint_token().token)
    refused = api.get("/certificates/enrollments/data", headers=token_session.headers)
    assert refused.status_code == 400 and _code(refused) == 25001
    as_problem = api.get(
        "/certificates/enrollments/data",
        headers={**token_session.headers, "X-Error-Format": "problem-details"},
    )
    assert as_problem.status_code == 400 and _code(as_problem) == 25001
    csr = make_csr({"commonName": "x", "countryName": "PL"}, new_key())
    assert _code(enrol(api, token_session, csr)) == 25002


# --- the CSR rules ---------------------------------------------------------------------


def test_a_csr_must_repeat_the_dn_use_an_allowed_key_and_signature(sim: SimHandle) -> None:
    api = sim.client()
    seal = seal_session(sim)
    data = api.get("/certificates/enrollments/data", headers=seal.headers).json()

    def code_for(csr: str) -> int:
        response = enrol(api, seal, csr)
        assert response.status_code == 400, response.text
        return _code(response)

    assert code_for(make_csr({**data, "commonName": "Someone Else"}, new_key())) == 25003
    assert code_for(make_csr({**data, "surname": "Extra"}, new_key())) == 25003
    fewer = {k: v for k, v in data.items() if k != "organizationName"}
    assert code_for(make_csr(fewer, new_key())) == 25003
    assert code_for(make_csr(data, rsa.generate_private_key(65537, 3072))) == 25010
    assert code_for(make_csr(data, ec.generate_private_key(ec.SECP384R1()))) == 25010
    assert code_for(make_csr(data, new_key(), hashes.SHA224())) == 25011
    assert code_for(make_csr(data, new_key("rsa"), hashes.SHA3_256())) == 25011
    assert code_for(base64.b64encode(b"not a certificate request").decode()) == 25004
    good = bytearray(base64.b64decode(make_csr(data, new_key("rsa"))))
    good[-5] ^= 0xFF  # inside the signature
    assert code_for(base64.b64encode(bytes(good)).decode()) == 25004
    # Order and string types of the attributes do not matter; RSA-PSS and SHA-512 are allowed.
    shuffled = dict(reversed(list(data.items())))
    assert enrol(api, seal, make_csr(shuffled, new_key())).status_code == 202
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    assert enrol(api, seal, make_csr(data, new_key("rsa"), rsa_padding=pss)).status_code == 202
    assert enrol(api, seal, make_csr(data, new_key(), hashes.SHA512())).status_code == 202

    invalid = sim.client(invalid_requests=True)
    bad_name = enrol(invalid, seal, make_csr(data, new_key()), name="no/slashes")
    assert bad_name.status_code == 400 and _code(bad_name) == 21405
    bad_type = enrol(invalid, seal, make_csr(data, new_key()), certificate_type="Both")
    assert bad_type.status_code == 400 and _code(bad_type) == 21405


# --- enrolment, retrieval, login ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["ec", "rsa"])
@pytest.mark.parametrize("sign", [_client_signer, _xmlsec_signer], ids=["client", "xmlsec"])
def test_an_issued_authentication_certificate_logs_in_as_its_subject(
    sim: SimHandle, kind: str, sign: Callable[[bytes, Pem], bytes]
) -> None:
    seal = seal_session(sim)
    key = new_key(kind)
    serial, certificate = issue(sim, seal, key)
    assert f"{certificate.serial_number:016X}" == serial
    assert certificate.issuer.rfc4514_string() == "CN=KSeF Simulator CA,O=ksefctl simulator,C=PL"
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.content_commitment
    assert (certificate.not_valid_after_utc - certificate.not_valid_before_utc).days == 730
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert certificate.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)

    status, session = xades_login(sim, pem(certificate, key), sign=sign)
    assert status["code"] == 200 and status["method"] == "InternalCertificate"
    assert session is not None
    api = sim.client()
    created = api.post(
        "/tokens",
        headers=session.headers,
        json={"permissions": ["InvoiceRead"], "description": "made by a KSeF certificate"},
    )
    assert created.status_code == 202
    # The next enrolment (renewal) works from the KSeF certificate's own session.
    again = api.get("/certificates/enrollments/data", headers=session.headers).json()
    assert again["organizationIdentifier"] == f"VATPL-{OWNER_NIP}"
    listed = query(sim, session, {"certificateSerialNumber": serial})["certificates"]
    assert listed[0]["status"] == "Active" and "lastUseDate" in listed[0]
    assert listed[0]["subjectIdentifier"] == {"type": "Nip", "value": OWNER_NIP}


def test_enrolment_is_asynchronous_and_its_status_expires_after_30_days(sim: SimHandle) -> None:
    sim.set_faults(enrollment_delay_s=3600)
    api = sim.client()
    seal = seal_session(sim)
    data = api.get("/certificates/enrollments/data", headers=seal.headers).json()
    started = enrol(api, seal, make_csr(data, new_key()))
    reference = started.json()["referenceNumber"]
    first = api.get(f"/certificates/enrollments/{reference}", headers=seal.headers).json()
    assert first["status"] == {"code": 100, "description": "Wniosek przyjęty do realizacji"}
    assert "certificateSerialNumber" not in first
    sim.advance_clock(3601)
    owner = sim.owner_session()  # the clock jump outlived the access token
    done = api.get(f"/certificates/enrollments/{reference}", headers=owner.headers).json()
    assert done["status"]["code"] == 200 and len(done["certificateSerialNumber"]) == 16
    other = sim.owner_session(OTHER_NIP)
    foreign = api.get(f"/certificates/enrollments/{reference}", headers=other.headers)
    assert foreign.status_code == 400 and _code(foreign) == 25005
    unknown = api.get(f"/certificates/enrollments/{reference[:-1]}0", headers=owner.headers)
    assert unknown.status_code == 400 and _code(unknown) == 25005
    sim.advance_clock(31 * DAY)
    later = sim.owner_session()
    gone = api.get(f"/certificates/enrollments/{reference}", headers=later.headers)
    assert gone.status_code == 410


def test_injected_failures_and_a_key_certified_by_someone_else_end_the_enrolment(
    sim: SimHandle,
) -> None:
    api = sim.client()
    seal = seal_session(sim)
    data = api.get("/certificates/enrollments/data", headers=seal.headers).json()
    sim.set_faults(failed_enrollment_rate=1.0)
    failed = enrol(api, seal, make_csr(data, new_key()))
    assert wait_enrolment(api, seal, failed.json()["referenceNumber"])["status"]["code"] == 500
    sim.set_faults(failed_enrollment_rate=0.0)

    key = new_key()
    issue(sim, seal, key)
    other = seal_session(sim, OTHER_NIP)
    other_data = api.get("/certificates/enrollments/data", headers=other.headers).json()
    same_key = enrol(api, other, make_csr(other_data, key))
    status = wait_enrolment(api, other, same_key.json()["referenceNumber"])["status"]
    assert status["code"] == 400
    assert status["details"] == ["Klucz publiczny został już certyfikowany przez inny podmiot."]


def test_quota_is_checked_at_submission_and_again_when_issuing(sim: SimHandle) -> None:
    api = sim.client()
    seal = seal_session(sim)
    data = api.get("/certificates/enrollments/data", headers=seal.headers).json()
    api.post(
        "/testdata/limits/subject/certificate",
        headers=seal.headers,
        json={"subjectIdentifierType": "Nip", "certificate": {"maxCertificates": 1}},
    )
    sim.set_faults(enrollment_delay_s=3600)
    first = enrol(api, seal, make_csr(data, new_key()))
    second = enrol(api, seal, make_csr(data, new_key()))  # accepted: nothing is Active yet
    assert first.status_code == second.status_code == 202
    sim.advance_clock(3601)
    owner = sim.owner_session()
    assert wait_enrolment(api, owner, first.json()["referenceNumber"])["status"]["code"] == 200
    late = wait_enrolment(api, owner, second.json()["referenceNumber"])["status"]
    assert late["code"] == 400
    assert late["details"] == ["Osiągnięto dopuszczalny limit posiadanych certyfikatów."]
    data = api.get("/certificates/enrollments/data", headers=owner.headers).json()
    full = enrol(api, owner, make_csr(data, new_key()))
    assert full.status_code == 400 and _code(full) == 25007
    assert api.get("/certificates/limits", headers=owner.headers).json()["canRequest"] is False

    api.post(
        "/testdata/limits/subject/certificate",
        headers=owner.headers,
        json={"enrollment": {"maxEnrollments": 2}, "certificate": {"maxCertificates": 10}},
    )
    too_many = enrol(api, owner, make_csr(data, new_key()))
    assert too_many.status_code == 400 and _code(too_many) == 25006


# --- query, revocation, expiry -------------------------------------------------------------


def test_query_filters_and_pages_newest_first(sim: SimHandle) -> None:
    seal = seal_session(sim)
    serials = [
        issue(sim, seal, new_key(), "Offline" if i % 4 == 0 else "Authentication", f"cert {i:02d}")[
            0
        ]
        for i in range(12)
    ]
    first = query(sim, seal)
    assert [c["certificateSerialNumber"] for c in first["certificates"]] == serials[::-1][:10]
    assert first["hasMore"] is True
    second = query(sim, seal, pageSize=10, pageOffset=1)
    assert [c["certificateSerialNumber"] for c in second["certificates"]] == serials[1::-1]
    assert second["hasMore"] is False
    offline = query(sim, seal, {"type": "Offline"}, pageSize=50)["certificates"]
    assert [c["name"] for c in offline] == ["cert 08", "cert 04", "cert 00"]
    assert [c["name"] for c in query(sim, seal, {"name": "RT 1"})["certificates"]] == [
        "cert 11",
        "cert 10",
    ]
    one = query(sim, seal, {"certificateSerialNumber": serials[3]})["certificates"]
    assert [c["certificateSerialNumber"] for c in one] == [serials[3]]
    assert query(sim, seal, {"status": "Revoked"})["certificates"] == []
    assert query(sim, seal, {"expiresAfter": "2999-01-01T00:00:00Z"})["certificates"] == []
    assert query(sim, sim.owner_session(OTHER_NIP))["certificates"] == []

    invalid = sim.client(invalid_requests=True)
    small = invalid.post(
        "/certificates/query", headers=seal.headers, json={}, params={"pageSize": 9}
    )
    assert small.status_code == 400 and _code(small) == 21405
    retrieved = sim.client().post(
        "/certificates/retrieve",
        headers=seal.headers,
        json={"certificateSerialNumbers": [serials[0], "0123456789ABCDEF"]},
    )
    assert [c["certificateType"] for c in retrieved.json()["certificates"]] == ["Offline"]
    too_many = invalid.post(
        "/certificates/retrieve",
        headers=seal.headers,
        json={"certificateSerialNumbers": serials[:11]},
    )
    assert too_many.status_code == 400 and _code(too_many) == 21405


def test_revocation_blocks_then_revokes_and_the_certificate_can_no_longer_log_in(
    sim: SimHandle,
) -> None:
    api = sim.client()
    seal = seal_session(sim)
    key = new_key()
    serial, certificate = issue(sim, seal, key)
    token_session = sim.login_with_token(sim.mint_token().token)
    by_token = api.post(f"/certificates/{serial}/revoke", headers=token_session.headers, json={})
    assert by_token.status_code == 403
    assert by_token.json()["reasonCode"] == "auth-method-not-allowed"
    other = sim.owner_session(OTHER_NIP)
    foreign = api.post(f"/certificates/{serial}/revoke", headers=other.headers, json={})
    assert foreign.status_code == 400 and _code(foreign) == 25008

    sim.set_faults(revocation_delay_s=3600)
    revoked = api.post(
        f"/certificates/{serial}/revoke",
        headers=seal.headers,
        json={"revocationReason": "Superseded"},
    )
    assert revoked.status_code == 204
    blocked = query(sim, seal, {"certificateSerialNumber": serial})["certificates"][0]
    assert blocked["status"] == "Blocked"
    status, _ = xades_login(sim, pem(certificate, key))
    assert status["code"] == 460 and status["details"] == ["Certyfikat zawieszony"]
    sim.advance_clock(3601)
    seal = sim.owner_session()  # the clock jump outlived the access token
    assert query(sim, seal, {"status": "Revoked"})["certificates"][0][
        "certificateSerialNumber"
    ] == (serial)
    status, _ = xades_login(sim, pem(certificate, key))
    assert status["code"] == 460 and status["details"] == ["Certyfikat odwołany"]
    twice = api.post(f"/certificates/{serial}/revoke", headers=seal.headers, json={})
    assert twice.status_code == 400 and _code(twice) == 25009
    missing = api.post("/certificates/0123456789ABCDEF/revoke", headers=seal.headers, json={})
    assert missing.status_code == 400 and _code(missing) == 25008
    lower = sim.client(invalid_requests=True).post(
        f"/certificates/{serial.lower()}/revoke", headers=seal.headers, json={}
    )
    assert lower.status_code == 400 and _code(lower) == 21405


def test_offline_certificates_never_log_in(sim: SimHandle) -> None:
    seal = seal_session(sim)
    key = new_key()
    _, certificate = issue(sim, seal, key, "Offline")
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.content_commitment and not usage.digital_signature
    status, session = xades_login(sim, pem(certificate, key))
    assert session is None
    assert status["code"] == 460 and status["details"] == ["Niepoprawny certyfikat"]


def test_expired_certificates_are_reported_and_refused(sim: SimHandle) -> None:
    seal = seal_session(sim)
    key = new_key()
    serial, certificate = issue(sim, seal, key)
    sim.advance_clock(731 * DAY)
    owner = sim.owner_session()
    listed = query(sim, owner, {"status": "Expired"})["certificates"]
    assert [c["certificateSerialNumber"] for c in listed] == [serial]
    limits = sim.client().get("/certificates/limits", headers=owner.headers).json()
    assert limits["certificate"]["remaining"] == 100
    status, session = xades_login(sim, pem(certificate, key))
    assert session is None and status["code"] == 460
    expired = sim.client().post(f"/certificates/{serial}/revoke", headers=owner.headers, json={})
    assert expired.status_code == 400 and _code(expired) == 25009


def test_certificates_and_the_ca_survive_a_restart(tmp_path: Any) -> None:
    from tests.support.sim import contract_checker

    state = str(tmp_path / "sim.db")
    first = start_sim(SimConfig(state_file=state, rate_limits_enabled=False), contract_checker())
    try:
        seal = seal_session(first)
        key = new_key()
        serial, certificate = issue(first, seal, key)
    finally:
        first.close()
    second = start_sim(SimConfig(state_file=state, rate_limits_enabled=False), contract_checker())
    try:
        status, session = xades_login(second, pem(certificate, key))
        assert status["code"] == 200 and session is not None
        listed = query(second, session)["certificates"]
        assert [c["certificateSerialNumber"] for c in listed] == [serial]
    finally:
        second.close()
    assert second.checker is None or not second.checker.violations


def test_certificate_endpoints_are_rate_limited_as_group_other(sim: SimHandle) -> None:
    sim.set_limits(enabled=True, limits={"other": [100, 2, 1000]})
    seal = sim.owner_session()
    api = sim.client()
    answers = [api.get("/certificates/limits", headers=seal.headers) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert answers[2].status_code == 429 and int(answers[2].headers["retry-after"]) >= 1
