"""Grants take effect: a XAdES login gets exactly what was granted, a revoked grant is gone,
and a KSeF token whose author lost a permission it was made with stops working for good."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ksefctl.sim.config import SimConfig
from ksefctl.testcert import make_personal_certificate
from tests.sim.permissions_helpers import PESEL, grant_persons, operate, persons
from tests.support.sim import OWNER_NIP, Session, SimHandle
from tests.support.sim_certificates import xades_login_started as _xades_login


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(rate_limits_enabled=False)


def _login_person(api: httpx.Client) -> tuple[dict[str, Any], Session | None]:
    started, status = _xades_login(api, make_personal_certificate(pesel=PESEL), ("Nip", OWNER_NIP))
    assert status is not None
    if status["code"] != 200:
        return status, None
    auth = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
    tokens = api.post("/auth/token/redeem", headers=auth).json()
    session = Session(
        started.json()["referenceNumber"],
        tokens["accessToken"]["token"],
        tokens["refreshToken"]["token"],
    )
    return status, session


def _personal(api: httpx.Client, session: Session) -> list[str]:
    response = api.post("/permissions/query/personal/grants", headers=session.headers, json={})
    return sorted(p["permissionScope"] for p in response.json()["permissions"])


def test_a_xades_login_gets_exactly_the_granted_permissions(sim: SimHandle) -> None:
    api = sim.client()
    owner = sim.owner_session()
    status, _ = _login_person(api)
    assert status["code"] == 415  # nothing granted yet

    assert (
        grant_persons(api, owner, ("Pesel", PESEL), ["InvoiceRead", "InvoiceWrite"])["code"] == 200
    )
    status, person = _login_person(api)
    assert status["code"] == 200 and person is not None
    assert _personal(api, person) == ["InvoiceRead", "InvoiceWrite"]
    beyond = api.post(
        "/tokens",
        headers=person.headers,
        json={"permissions": ["CredentialsRead"], "description": "more than granted"},
    )
    assert beyond.status_code == 400  # 26001: a token cannot carry what its author lacks

    for grant in persons(api, owner):
        path = f"/permissions/common/grants/{grant['id']}"
        assert operate(api, owner, "DELETE", path)["code"] == 200
    assert _personal(api, person) == []
    status, _ = _login_person(api)
    assert status["code"] == 415


def _token_status(api: httpx.Client, session: Session, reference: str) -> dict[str, Any]:
    item: dict[str, Any] = api.get(f"/tokens/{reference}", headers=session.headers).json()
    return item


def _token_login_code(sim: SimHandle, token: str) -> int:
    api = sim.client()
    started = sim.start_token_login(token, ("Nip", OWNER_NIP), client=api)
    auth = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
    for _ in range(500):
        code: int = api.get(f"/auth/{started.json()['referenceNumber']}", headers=auth).json()[
            "status"
        ]["code"]
        if code != 100:
            return code
    raise AssertionError("login still in progress")


def _generate(api: httpx.Client, session: Session, description: str) -> tuple[str, str]:
    made = api.post(
        "/tokens",
        headers=session.headers,
        json={"permissions": ["InvoiceRead"], "description": description},
    )
    assert made.status_code == 202, made.text
    reference, token = made.json()["referenceNumber"], made.json()["token"]
    for _ in range(1000):
        if _token_status(api, session, reference)["status"] == "Active":
            return reference, token
    raise AssertionError("token never became Active")


def test_a_token_dies_when_its_author_loses_a_permission_and_stays_dead(sim: SimHandle) -> None:
    api = sim.client()
    owner = sim.owner_session()
    grant_persons(api, owner, ("Pesel", PESEL), ["CredentialsManage", "InvoiceRead"])
    author = sim.session_for(("Pesel", PESEL), ("Nip", OWNER_NIP))
    reference, token = _generate(api, author, "erp reader")
    assert _token_login_code(sim, token) == 200

    read = next(p for p in persons(api, owner) if p["permissionScope"] == "InvoiceRead")
    assert operate(api, owner, "DELETE", f"/permissions/common/grants/{read['id']}")["code"] == 200
    listed = _token_status(api, owner, reference)
    assert listed["status"] == "Revoked"
    assert "utraty uprawnień" in listed["statusDetails"][0]
    assert _token_login_code(sim, token) == 450

    # The permission comes back: the old token stays revoked, a new one works.
    grant_persons(api, owner, ("Pesel", PESEL), ["InvoiceRead"])
    assert _token_login_code(sim, token) == 450
    assert _token_status(api, owner, reference)["status"] == "Revoked"
    author = sim.session_for(("Pesel", PESEL), ("Nip", OWNER_NIP))
    _, fresh = _generate(api, author, "erp reader again")
    assert _token_login_code(sim, fresh) == 200


def test_tokens_still_backed_survive_a_revocation(sim: SimHandle) -> None:
    api = sim.client()
    owner = sim.owner_session()
    grant_persons(
        api, owner, ("Pesel", PESEL), ["CredentialsManage", "InvoiceRead", "Introspection"]
    )
    author = sim.session_for(("Pesel", PESEL), ("Nip", OWNER_NIP))
    reference, token = _generate(api, author, "reader only")
    owners_token = sim.mint_token(permissions=["InvoiceRead"])
    introspection = next(p for p in persons(api, owner) if p["permissionScope"] == "Introspection")
    path = f"/permissions/common/grants/{introspection['id']}"
    assert operate(api, owner, "DELETE", path)["code"] == 200
    assert _token_status(api, owner, reference)["status"] == "Active"
    assert _token_login_code(sim, token) == 200
    assert _token_login_code(sim, owners_token.token) == 200


def test_seeded_grants_are_the_same_records(sim: SimHandle) -> None:
    """/testdata/permissions writes grants the /permissions API lists and revokes."""
    api = sim.client()
    owner = sim.owner_session()
    assert sim.grant(OWNER_NIP, ("Pesel", PESEL), ["InvoiceRead"]).status_code == 200
    [seeded] = persons(api, owner)
    assert seeded["authorIdentifier"] == {"type": "System"}
    status, person = _login_person(api)
    assert status["code"] == 200 and person is not None
    assert (
        operate(api, owner, "DELETE", f"/permissions/common/grants/{seeded['id']}")["code"] == 200
    )
    status, _ = _login_person(api)
    assert status["code"] == 415
