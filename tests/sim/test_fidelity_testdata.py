"""The TEST environment's documented scenarios (dane-testowe-scenariusze.md, open-api.json):
repeats refused with 30001, bailiffs, deceased persons, blocked contexts, production limits,
and the examples' lower-case enum values."""

from __future__ import annotations

from typing import Any

import httpx

from tests.simfixture import OTHER_NIP, OWNER_NIP, SimHandle, poll_auth

BAILIFF_NIP = "7980332920"  # the scenario's own example values
BAILIFF_PESEL = "30112206276"
VAT_GROUP_NIP = "3755747347"


def _error_code(response: httpx.Response) -> int:
    code: int = response.json()["exception"]["exceptionDetailList"][0]["exceptionCode"]
    return code


def _person(nip: str, pesel: str, **flags: Any) -> dict[str, Any]:
    return {"nip": nip, "pesel": pesel, "description": "osoba testowa", "isBailiff": False, **flags}


def _login(sim: SimHandle, api: httpx.Client, token: str, nip: str) -> dict[str, Any]:
    started = sim.start_token_login(token, ("Nip", nip), client=api)
    assert started.status_code == 202, started.text
    headers = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
    status = poll_auth(api, started.json()["referenceNumber"], headers)
    return {"status": status, "headers": headers}


def test_repeating_a_subject_or_a_person_is_30001_not_an_update(sim: SimHandle) -> None:
    api = sim.client()
    subject = {"subjectNip": VAT_GROUP_NIP, "subjectType": "VatGroup", "description": "Grupa VAT"}
    assert api.post("/testdata/subject", json=subject).status_code == 200
    again = api.post("/testdata/subject", json=subject)
    assert again.status_code == 400
    assert _error_code(again) == 30001

    person = _person(BAILIFF_NIP, BAILIFF_PESEL)
    assert api.post("/testdata/person", json=person).status_code == 200
    repeated = api.post("/testdata/person", json=person)
    assert repeated.status_code == 400
    assert _error_code(repeated) == 30001
    # After removal the identifier is free again.
    assert api.post("/testdata/person/remove", json={"nip": BAILIFF_NIP}).status_code == 200
    assert api.post("/testdata/person", json=person).status_code == 200


def test_the_scenario_examples_work_verbatim_with_lower_case_types(sim: SimHandle) -> None:
    api = sim.client(invalid_requests=True)  # "nip"/"pesel" are outside the contract's enum
    granted = api.post(
        "/testdata/permissions",
        json={
            "contextIdentifier": {"value": OWNER_NIP, "type": "nip"},
            "authorizedIdentifier": {"value": "38092277125", "type": "pesel"},
            "permissions": [{"permissionType": "InvoiceRead", "description": "praca w kontekście"}],
        },
    )
    assert granted.status_code == 200, granted.text
    session = sim.session_for(("Pesel", "38092277125"), ("Nip", OWNER_NIP))
    created = api.post(
        "/tokens",
        headers=session.headers,
        json={"permissions": ["InvoiceRead"], "description": "reader of a granted context"},
    )
    assert created.status_code == 202, created.text


def test_only_a_bailiffs_context_holds_enforcement_operations(sim: SimHandle) -> None:
    api = sim.client()
    ask = {"permissions": ["EnforcementOperations"], "description": "enforcement token"}
    owner = sim.owner_session(OWNER_NIP)
    refused = api.post("/tokens", headers=owner.headers, json=ask)
    assert refused.status_code == 400
    assert _error_code(refused) == 26001

    bailiff = _person(BAILIFF_NIP, BAILIFF_PESEL, description="Komornik", isBailiff=True)
    assert api.post("/testdata/person", json=bailiff).status_code == 200
    for identity in (("Pesel", BAILIFF_PESEL), ("Nip", BAILIFF_NIP)):
        session = sim.session_for(identity, ("Nip", BAILIFF_NIP))
        assert api.post("/tokens", headers=session.headers, json=ask).status_code == 202

    authority = {
        "subjectNip": OTHER_NIP,
        "subjectType": "EnforcementAuthority",
        "description": "organ egzekucyjny",
    }
    assert api.post("/testdata/subject", json=authority).status_code == 200
    session = sim.owner_session(OTHER_NIP)
    assert api.post("/tokens", headers=session.headers, json=ask).status_code == 202


def test_a_deceased_persons_login_ends_470_and_their_session_cannot_refresh(
    sim: SimHandle,
) -> None:
    api = sim.client()
    person = _person(BAILIFF_NIP, BAILIFF_PESEL)
    assert api.post("/testdata/person", json=person).status_code == 200
    minted = sim.mint_token(BAILIFF_NIP, ["InvoiceRead"], author=("Pesel", BAILIFF_PESEL))
    alive = sim.session_for(("Pesel", BAILIFF_PESEL), ("Nip", BAILIFF_NIP))

    assert api.post("/testdata/person/remove", json={"nip": BAILIFF_NIP}).status_code == 200
    assert api.post("/testdata/person", json={**person, "isDeceased": True}).status_code == 200
    login = _login(sim, api, minted.token, BAILIFF_NIP)
    assert login["status"]["code"] == 470
    assert login["status"]["details"] == ["Próba wykorzystania metod autoryzacyjnych osoby zmarłej"]
    redeemed = api.post("/auth/token/redeem", headers=login["headers"])
    assert redeemed.status_code == 400
    assert _error_code(redeemed) == 21308

    refreshed = api.post(
        "/auth/token/refresh", headers={"Authorization": f"Bearer {alive.refresh_token}"}
    )
    assert refreshed.status_code == 400
    assert _error_code(refreshed) == 21308


def test_a_blocked_context_ends_every_login_480_until_unblocked(sim: SimHandle) -> None:
    api = sim.client()
    minted = sim.mint_token()
    context = {"contextIdentifier": {"type": "Nip", "value": OWNER_NIP}}
    assert api.post("/testdata/context/block", json=context).status_code == 200
    login = _login(sim, api, minted.token, OWNER_NIP)
    assert login["status"]["code"] == 480
    assert login["status"]["description"] == "Uwierzytelnienie zablokowane"
    assert api.post("/auth/token/redeem", headers=login["headers"]).status_code == 400
    # Another context is not affected.
    assert _login(sim, api, sim.mint_token(OTHER_NIP).token, OTHER_NIP)["status"]["code"] == 200

    assert api.post("/testdata/context/unblock", json=context).status_code == 200
    assert _login(sim, api, minted.token, OWNER_NIP)["status"]["code"] == 200

    bad = sim.client(invalid_requests=True).post("/testdata/context/block", json={})
    assert bad.status_code == 400
    assert _error_code(bad) == 21405


def test_production_limits_replace_a_generous_configuration_for_one_context(
    sim: SimHandle,
) -> None:
    sim.set_limits(limits={"other": [1000, 100000, 1000000]})
    api = sim.client()
    owner = sim.owner_session()
    assert api.get("/rate-limits", headers=owner.headers).json()["other"]["perSecond"] == 1000
    production = api.post("/testdata/rate-limits/production", headers=owner.headers)
    assert production.status_code == 200
    limits = api.get("/rate-limits", headers=owner.headers).json()
    assert limits["other"] == {"perSecond": 10, "perMinute": 30, "perHour": 120}
    assert limits["invoiceDownload"] == {"perSecond": 8, "perMinute": 16, "perHour": 64}
    other = sim.owner_session(OTHER_NIP)
    assert api.get("/rate-limits", headers=other.headers).json()["other"]["perSecond"] == 1000
    assert api.delete("/testdata/rate-limits", headers=owner.headers).status_code == 200
    assert api.get("/rate-limits", headers=owner.headers).json()["other"]["perSecond"] == 1000
