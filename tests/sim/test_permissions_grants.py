"""The simulator's /permissions endpoints over real HTTP: grants, revocations, operations,
queries, who may do what, and the documented refusals — every exchange contract-checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from ksefctl.sim.config import SimConfig
from tests.sim.permissions_helpers import (
    OTHER_PESEL,
    PESEL,
    code_of,
    grant_persons,
    operate,
    person_grant,
    persons,
    wait_operation,
)
from tests.simfixture import OTHER_NIP, OWNER_NIP, SimHandle, contract_checker, start_sim

ENTITY_DETAILS = {"fullName": "Biuro Rachunkowe sp. z o.o."}


@pytest.fixture
def sim_config() -> SimConfig:
    # Operation polling would trip the 10 req/s limit; the rate-limit test turns it back on.
    return SimConfig(rate_limits_enabled=False)


def test_a_person_grant_is_one_record_per_permission_and_asynchronous(sim: SimHandle) -> None:
    sim.set_faults(permission_delay_s=3600)
    owner = sim.owner_session()
    api = sim.client()
    started = api.post(
        "/permissions/persons/grants",
        headers=owner.headers,
        json=person_grant(("Pesel", PESEL), ["InvoiceRead", "InvoiceWrite"]),
    )
    assert started.status_code == 202
    reference = started.json()["referenceNumber"]
    status = api.get(f"/permissions/operations/{reference}", headers=owner.headers).json()
    assert status["status"]["code"] == 100
    assert persons(api, owner) == []  # nothing takes effect before the operation completes

    sim.advance_clock(3601)
    owner = sim.owner_session()
    assert wait_operation(api, owner, reference)["code"] == 200
    listed = persons(api, owner)
    assert sorted(p["permissionScope"] for p in listed) == ["InvoiceRead", "InvoiceWrite"]
    assert len({p["id"] for p in listed}) == 2
    for item in listed:
        assert item["authorizedIdentifier"] == {"type": "Pesel", "value": PESEL}
        assert item["authorIdentifier"] == {"type": "Nip", "value": OWNER_NIP}
        assert item["permissionState"] == "Active"
        assert item["subjectPersonDetails"]["lastName"] == "Testowa"


def test_a_duplicate_grant_succeeds_and_keeps_one_record(sim: SimHandle) -> None:
    owner = sim.owner_session()
    api = sim.client()
    assert grant_persons(api, owner, ("Pesel", PESEL), ["InvoiceRead"])["code"] == 200
    first = persons(api, owner)
    assert grant_persons(api, owner, ("Pesel", PESEL), ["InvoiceRead"])["code"] == 200
    assert persons(api, owner) == first


def test_revoking_removes_the_record_and_an_unknown_id_fails(sim: SimHandle) -> None:
    owner = sim.owner_session()
    api = sim.client()
    grant_persons(api, owner, ("Pesel", PESEL), ["InvoiceRead", "Introspection"])
    read = next(p for p in persons(api, owner) if p["permissionScope"] == "InvoiceRead")
    path = f"/permissions/common/grants/{read['id']}"
    assert operate(api, owner, "DELETE", path)["code"] == 200
    assert [p["permissionScope"] for p in persons(api, owner)] == ["Introspection"]
    again = operate(api, owner, "DELETE", path)
    assert again["code"] == 400 and read["id"] in again["details"][0]
    bad = api.delete("/permissions/common/grants/short", headers=owner.headers)
    assert bad.status_code == 400 and code_of(bad) == 21405


def test_who_may_grant_and_query(sim: SimHandle) -> None:
    api = sim.client()
    assert sim.grant(OWNER_NIP, ("Pesel", PESEL), ["InvoiceRead"]).status_code == 200
    reader = sim.session_for(("Pesel", PESEL), ("Nip", OWNER_NIP))
    refused = api.post(
        "/permissions/persons/grants",
        headers=reader.headers,
        json=person_grant(("Pesel", OTHER_PESEL), ["InvoiceRead"]),
    )
    assert refused.status_code == 403
    assert refused.json()["reasonCode"] == "missing-permissions"
    assert refused.json()["security"]["requiredAnyOfPermissions"] == ["CredentialsManage"]
    listing = api.post(
        "/permissions/query/persons/grants",
        headers=reader.headers,
        json={"queryType": "PermissionsInCurrentContext"},
    )
    assert listing.status_code == 403
    subunit = api.post(
        "/permissions/subunits/grants",
        headers=reader.headers,
        json={
            **person_grant(("Pesel", OTHER_PESEL), []),
            "contextIdentifier": {"type": "InternalId", "value": _internal_id(OWNER_NIP, "0001")},
            "subunitName": "Oddział Gdańsk",
        },
    )
    assert subunit.status_code == 403

    # CredentialsManage granted to a person makes them an administrator of the context.
    assert sim.grant(OWNER_NIP, ("Pesel", OTHER_PESEL), ["CredentialsManage"]).status_code == 200
    admin = sim.session_for(("Pesel", OTHER_PESEL), ("Nip", OWNER_NIP))
    assert grant_persons(api, admin, ("Nip", OTHER_NIP), ["InvoiceWrite"])["code"] == 200
    mine = persons(api, admin, "PermissionsGrantedInCurrentContext")
    assert [(p["authorizedIdentifier"]["value"], p["permissionScope"]) for p in mine] == [
        (OTHER_NIP, "InvoiceWrite")
    ]
    everyone = persons(api, admin)
    assert {p["authorIdentifier"]["type"] for p in everyone} == {"System", "Pesel"}
    seeded = persons(api, admin, authorIdentifier={"type": "System"})
    assert {p["permissionScope"] for p in seeded} == {"InvoiceRead", "CredentialsManage"}


def test_bad_requests_are_21405_in_both_error_formats(sim: SimHandle) -> None:
    owner = sim.owner_session()
    api = sim.client(invalid_requests=True)
    bodies = [
        {},
        person_grant(("Pesel", "123"), ["InvoiceRead"]),
        person_grant(("Pesel", PESEL), []),
        person_grant(("Pesel", PESEL), ["InvoiceRead", "InvoiceRead"]),
        person_grant(("Pesel", PESEL), ["SelfInvoicing"]),
        {**person_grant(("Pesel", PESEL), ["InvoiceRead"]), "description": "abc"},
        {**person_grant(("Pesel", PESEL), ["InvoiceRead"]), "subjectDetails": {}},
    ]
    for body in bodies:
        legacy = api.post("/permissions/persons/grants", headers=owner.headers, json=body)
        assert legacy.status_code == 400 and code_of(legacy) == 21405, body
        problem = api.post(
            "/permissions/persons/grants",
            headers={**owner.headers, "X-Error-Format": "problem-details"},
            json=body,
        )
        assert problem.status_code == 400 and code_of(problem) == 21405
        assert problem.headers["content-type"].startswith("application/problem+json")
    for params in ({"pageSize": 5}, {"pageSize": 101}, {"pageOffset": -1}):
        # (invalid_requests: the contract itself forbids these values)
        paged = api.post(
            "/permissions/query/persons/grants",
            headers=owner.headers,
            params=params,
            json={"queryType": "PermissionsInCurrentContext"},
        )
        assert paged.status_code == 400 and code_of(paged) == 21405


def test_refusals_come_as_operation_codes(sim: SimHandle) -> None:
    owner = sim.owner_session()
    api = sim.client()
    enforcement = grant_persons(api, owner, ("Nip", OTHER_NIP), ["EnforcementOperations"])
    assert enforcement["code"] == 430
    foreign_unit = {
        "subjectIdentifier": {"type": "Pesel", "value": PESEL},
        "contextIdentifier": {"type": "InternalId", "value": f"{OTHER_NIP}-00001"},
        "description": "unit administrator",
        "subunitName": "Oddział Kraków",
        "subjectDetails": person_grant(("Pesel", PESEL), [])["subjectDetails"],
    }
    foreign_unit["contextIdentifier"]["value"] = _internal_id(OTHER_NIP, "0001")
    subunit = operate(api, owner, "POST", "/permissions/subunits/grants", foreign_unit)
    assert subunit["code"] == 440
    pef = operate(
        api,
        owner,
        "POST",
        "/permissions/authorizations/grants",
        {
            "subjectIdentifier": {"type": "Nip", "value": OTHER_NIP},
            "permission": "PefInvoicing",
            "description": "PEF via a NIP",
            "subjectDetails": ENTITY_DETAILS,
        },
    )
    assert pef["code"] == 450
    assert persons(api, owner) == []

    # SubunitManage alone may revoke subunit administrators, not persons' grants.
    grant_persons(api, owner, ("Pesel", PESEL), ["InvoiceRead"])
    target = persons(api, owner)[0]["id"]
    assert sim.grant(OWNER_NIP, ("Pesel", OTHER_PESEL), ["SubunitManage"]).status_code == 200
    unit_admin = sim.session_for(("Pesel", OTHER_PESEL), ("Nip", OWNER_NIP))
    denied = operate(api, unit_admin, "DELETE", f"/permissions/common/grants/{target}")
    assert denied["code"] == 420


def _internal_id(nip: str, four: str) -> str:
    digits = nip + four
    check = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits)) % 10
    return f"{nip}-{four}{check}"


def test_subunit_administrators_internal_id_and_vat_group_member(sim: SimHandle) -> None:
    api = sim.client()
    owner = sim.owner_session()
    unit = _internal_id(OWNER_NIP, "0042")
    body = {
        "subjectIdentifier": {"type": "Pesel", "value": PESEL},
        "contextIdentifier": {"type": "InternalId", "value": unit},
        "description": "unit administrator",
        "subunitName": "Oddział Kraków",
        "subjectDetails": person_grant(("Pesel", PESEL), [])["subjectDetails"],
    }
    assert operate(api, owner, "POST", "/permissions/subunits/grants", body)["code"] == 200
    listed = api.post("/permissions/query/subunits/grants", headers=owner.headers, json={})
    [item] = listed.json()["permissions"]
    assert item["subunitIdentifier"] == {"type": "InternalId", "value": unit}
    assert item["permissionScope"] == "CredentialsManage"
    assert item["subunitName"] == "Oddział Kraków"
    unit_session = sim.session_for(("Pesel", PESEL), ("InternalId", unit))
    personal = api.post("/permissions/query/personal/grants", headers=unit_session.headers, json={})
    assert [p["permissionScope"] for p in personal.json()["permissions"]] == ["CredentialsManage"]

    bad_check = {**body, "contextIdentifier": {"type": "InternalId", "value": unit[:-1] + "0"}}
    if bad_check["contextIdentifier"]["value"] != unit:
        refused = sim.client(invalid_requests=True).post(
            "/permissions/subunits/grants", headers=owner.headers, json=bad_check
        )
        assert refused.status_code == 400 and code_of(refused) == 21405

    # A VAT group appoints administrators of its members by NIP.
    group, member = "3755747347", "4972530874"
    created = api.post(
        "/testdata/subject",
        json={
            "subjectNip": group,
            "subjectType": "VatGroup",
            "description": "Grupa VAT",
            "subunits": [{"subjectNip": member, "description": "członek grupy VAT"}],
        },
    )
    assert created.status_code == 200
    group_owner = sim.owner_session(group)
    roles = api.get("/permissions/query/entities/roles", headers=group_owner.headers).json()
    assert [r["role"] for r in roles["roles"]] == ["VatGroupUnit"]
    member_roles = api.get(
        "/permissions/query/entities/roles", headers=sim.owner_session(member).headers
    ).json()["roles"]
    assert member_roles[0]["role"] == "VatGroupSubUnit"
    assert member_roles[0]["parentEntityIdentifier"] == {"type": "Nip", "value": group}
    by_nip = {
        **body,
        "contextIdentifier": {"type": "Nip", "value": member},
        "subjectIdentifier": {"type": "Nip", "value": OTHER_NIP},
    }
    assert operate(api, group_owner, "POST", "/permissions/subunits/grants", by_nip)["code"] == 200
    assert operate(api, owner, "POST", "/permissions/subunits/grants", by_nip)["code"] == 440


def test_entity_grants_delegation_and_indirect_grants(sim: SimHandle) -> None:
    """A company gives its accounting office invoices with canDelegate; the office
    passes them to an employee; the employee works in the company's context."""
    api = sim.client()
    company, office = sim.owner_session(OWNER_NIP), sim.owner_session(OTHER_NIP)
    entity_grant = {
        "subjectIdentifier": {"type": "Nip", "value": OTHER_NIP},
        "permissions": [{"type": "InvoiceRead", "canDelegate": True}, {"type": "InvoiceWrite"}],
        "description": "biuro rachunkowe",
        "subjectDetails": ENTITY_DETAILS,
    }
    assert (
        operate(api, company, "POST", "/permissions/entities/grants", entity_grant)["code"] == 200
    )
    listed = persons(api, company, authorizedIdentifier={"type": "Nip", "value": OTHER_NIP})
    assert {(p["permissionScope"], p["canDelegate"]) for p in listed} == {
        ("InvoiceRead", True),
        ("InvoiceWrite", False),
    }
    assert listed[0]["subjectEntityDetails"]["fullName"] == ENTITY_DETAILS["fullName"]
    received = api.post("/permissions/query/entities/grants", headers=office.headers, json={})
    assert {p["contextIdentifier"]["value"] for p in received.json()["permissions"]} == {OWNER_NIP}
    assert len(received.json()["permissions"]) == 2
    mine = api.post("/permissions/query/personal/grants", headers=office.headers, json={})
    assert {p["permissionScope"] for p in mine.json()["permissions"]} == {
        "InvoiceRead",
        "InvoiceWrite",
    }
    # The office's owner works in the company's context with what was granted.
    office_in_company = sim.session_for(("Nip", OTHER_NIP), ("Nip", OWNER_NIP))
    assert office_in_company is not None
    assert _permissions_of(sim, ("Nip", OTHER_NIP), OWNER_NIP) == ["InvoiceRead", "InvoiceWrite"]

    indirect = {
        **person_grant(("Pesel", PESEL), ["InvoiceRead", "InvoiceWrite"], "praca dla klienta"),
        "targetIdentifier": {"type": "Nip", "value": OWNER_NIP},
    }
    assert operate(api, office, "POST", "/permissions/indirect/grants", indirect)["code"] == 200
    states = {
        p["permissionScope"]: p["permissionState"]
        for p in persons(api, office, "PermissionsGrantedInCurrentContext")
    }
    assert states == {"InvoiceRead": "Active", "InvoiceWrite": "Inactive"}  # no delegation
    assert _permissions_of(sim, ("Pesel", PESEL), OWNER_NIP) == ["InvoiceRead"]
    inactive = persons(api, office, permissionState="Inactive")
    assert [p["permissionScope"] for p in inactive] == ["InvoiceWrite"]
    assert inactive[0]["targetIdentifier"] == {"type": "Nip", "value": OWNER_NIP}


def _permissions_of(sim: SimHandle, identity: tuple[str, str], nip: str) -> list[str]:
    data = sim.admin(
        "POST",
        "/sessions",
        {
            "context": {"type": "Nip", "value": nip},
            "identity": {"type": identity[0], "value": identity[1]},
        },
    )
    return sorted(data["permissions"])


def test_entity_authorizations_granted_received_and_revoked(sim: SimHandle) -> None:
    api = sim.client()
    company, partner = sim.owner_session(OWNER_NIP), sim.owner_session(OTHER_NIP)
    body = {
        "subjectIdentifier": {"type": "Nip", "value": OTHER_NIP},
        "permission": "SelfInvoicing",
        "description": "samofakturowanie",
        "subjectDetails": ENTITY_DETAILS,
    }
    assert operate(api, company, "POST", "/permissions/authorizations/grants", body)["code"] == 200
    granted = api.post(
        "/permissions/query/authorizations/grants",
        headers=company.headers,
        json={"queryType": "Granted", "permissionTypes": ["SelfInvoicing"]},
    ).json()["authorizationGrants"]
    assert [g["authorizedEntityIdentifier"]["value"] for g in granted] == [OTHER_NIP]
    received = api.post(
        "/permissions/query/authorizations/grants",
        headers=partner.headers,
        json={"queryType": "Received"},
    ).json()["authorizationGrants"]
    assert [g["authorizingEntityIdentifier"]["value"] for g in received] == [OWNER_NIP]
    grant_id = granted[0]["id"]
    # Authorizations are not revoked through the common endpoint.
    assert operate(api, company, "DELETE", f"/permissions/common/grants/{grant_id}")["code"] == 400
    path = f"/permissions/authorizations/grants/{grant_id}"
    assert operate(api, company, "DELETE", path)["code"] == 200
    after = api.post(
        "/permissions/query/authorizations/grants",
        headers=company.headers,
        json={"queryType": "Granted"},
    ).json()
    assert after == {"authorizationGrants": [], "hasMore": False}


def test_pages_are_newest_first_with_has_more(sim: SimHandle) -> None:
    owner = sim.owner_session()
    api = sim.client()
    peselki = ["44051401359", "02070803628", "15062788702"]
    for pesel in peselki:
        sim.advance_clock(1)
        permissions = ["InvoiceRead", "InvoiceWrite", "Introspection", "CredentialsRead"]
        grant_persons(api, owner, ("Pesel", pesel), permissions)
    owner = sim.owner_session()
    pages = []
    for offset in range(2):
        page = api.post(
            "/permissions/query/persons/grants",
            headers=owner.headers,
            params={"pageOffset": offset, "pageSize": 10},
            json={"queryType": "PermissionsInCurrentContext"},
        ).json()
        pages.append(page)
    assert [len(p["permissions"]) for p in pages] == [10, 2]
    assert [p["hasMore"] for p in pages] == [True, False]
    everything = pages[0]["permissions"] + pages[1]["permissions"]
    keys = [(p["startDate"], p["id"]) for p in everything]
    assert keys == sorted(keys, key=lambda k: (_neg(k[0]), k[1]))
    assert everything[0]["authorizedIdentifier"]["value"] == peselki[-1]


def _neg(stamp: str) -> str:
    return "".join(chr(0x10FFFF - ord(c)) for c in stamp)


def test_operations_expire_after_30_days_and_belong_to_their_context(sim: SimHandle) -> None:
    owner = sim.owner_session()
    api = sim.client()
    started = api.post(
        "/permissions/persons/grants",
        headers=owner.headers,
        json=person_grant(("Pesel", PESEL), ["InvoiceRead"]),
    )
    reference = started.json()["referenceNumber"]
    assert wait_operation(api, owner, reference)["code"] == 200
    stranger = sim.owner_session(OTHER_NIP)
    foreign = api.get(f"/permissions/operations/{reference}", headers=stranger.headers)
    assert foreign.status_code == 403
    sim.advance_clock(31 * 24 * 3600)
    owner = sim.owner_session()
    gone = api.get(f"/permissions/operations/{reference}", headers=owner.headers)
    assert gone.status_code == 410
    assert gone.headers["content-type"].startswith("application/problem+json")
    assert len(persons(api, owner)) == 1  # the grant itself stays until revoked


def test_permission_endpoints_are_rate_limited_per_context(sim: SimHandle) -> None:
    sim.set_limits(enabled=True, limits={"other": [2, 100, 1000]})
    owner = sim.owner_session()
    api = sim.client()
    answers = [
        api.post(
            "/permissions/query/persons/grants",
            headers=owner.headers,
            json={"queryType": "PermissionsInCurrentContext"},
        )
        for _ in range(3)
    ]
    assert [a.status_code for a in answers][:2] == [200, 200]
    assert answers[2].status_code == 429
    assert int(answers[2].headers["retry-after"]) >= 1


def test_grants_and_operations_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "sim.db")
    first = start_sim(SimConfig(state_file=state, rate_limits_enabled=False), contract_checker())
    try:
        owner = first.owner_session()
        api = first.client()
        grant_persons(api, owner, ("Pesel", PESEL), ["InvoiceRead"])
        first.set_faults(permission_delay_s=3600)
        pending = api.post(
            "/permissions/persons/grants",
            headers=owner.headers,
            json=person_grant(("Pesel", OTHER_PESEL), ["InvoiceWrite"]),
        ).json()["referenceNumber"]
        before = persons(api, owner)
    finally:
        first.close()
    second = start_sim(SimConfig(state_file=state, rate_limits_enabled=False), contract_checker())
    try:
        owner = second.owner_session()
        api = second.client()
        assert persons(api, owner) == before
        status = api.get(f"/permissions/operations/{pending}", headers=owner.headers).json()
        assert status["status"]["code"] == 100
        second.advance_clock(3601)
        owner = second.owner_session()
        assert wait_operation(api, owner, pending)["code"] == 200
        assert {p["authorizedIdentifier"]["value"] for p in persons(api, owner)} == {
            PESEL,
            OTHER_PESEL,
        }
    finally:
        second.close()
    for handle in (first, second):
        if handle.checker is not None:
            handle.checker.assert_clean()
