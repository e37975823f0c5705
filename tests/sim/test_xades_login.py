"""XAdES login against the simulator: owners by seal, others by granted permissions."""

from __future__ import annotations

from ksefctl.testcert import make_personal_certificate, make_seal_certificate
from tests.support.sim import OTHER_NIP, OWNER_NIP, SimHandle
from tests.support.sim_certificates import xades_login_started as _xades_login


def test_a_company_seal_logs_in_as_the_owner_of_its_nip(sim: SimHandle) -> None:
    api = sim.client()
    seal = make_seal_certificate(OWNER_NIP)
    started, status = _xades_login(api, seal, ("Nip", OWNER_NIP))
    assert status is not None and status["code"] == 200, status
    headers = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
    tokens = api.post("/auth/token/redeem", headers=headers).json()
    access = {"Authorization": f"Bearer {tokens['accessToken']['token']}"}
    created = api.post(
        "/tokens",
        headers=access,
        json={"permissions": ["CredentialsManage"], "description": "owner"},
    )
    assert created.status_code == 202
    mine = api.get("/tokens", headers=access).json()["tokens"]
    assert mine[0]["authorIdentifier"] == {"type": "Nip", "value": OWNER_NIP}


def test_a_stranger_without_permissions_ends_with_415(sim: SimHandle) -> None:
    _, status = _xades_login(sim.client(), make_seal_certificate(OTHER_NIP), ("Nip", OWNER_NIP))
    assert status is not None and status["code"] == 415


def test_a_person_with_granted_permissions_gets_in(sim: SimHandle) -> None:
    pesel = "15062788702"
    sim.grant(OWNER_NIP, ("Pesel", pesel), ["InvoiceRead"])
    _, status = _xades_login(
        sim.client(), make_personal_certificate(pesel=pesel), ("Nip", OWNER_NIP)
    )
    assert status is not None and status["code"] == 200


def test_a_tampered_document_fails_and_garbage_is_400(sim: SimHandle) -> None:
    api = sim.client(invalid_requests=True)
    started, status = _xades_login(
        api, make_seal_certificate(OWNER_NIP), ("Nip", OWNER_NIP), tamper=True
    )
    # A signature that no longer matches the document is 400 9105 (the documented table).
    assert started.status_code == 400
    assert started.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] == 9105
    assert status is None
    garbage = api.post(
        "/auth/xades-signature", content=b"<not-xml", headers={"Content-Type": "application/xml"}
    )
    assert garbage.status_code == 400
