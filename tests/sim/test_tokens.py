"""KSeF tokens in the simulator: generation, asynchronous status, listing, visibility, revocation."""

from __future__ import annotations

from typing import Any

import httpx

from tests.simfixture import OTHER_NIP, OWNER_NIP, SimHandle


def _code(response: httpx.Response) -> int:
    code: int = response.json()["exception"]["exceptionDetailList"][0]["exceptionCode"]
    return code


def _wait_status(
    api: httpx.Client, headers: dict[str, str], reference: str, wanted: str
) -> dict[str, Any]:
    for _ in range(1000):
        item: dict[str, Any] = api.get(f"/tokens/{reference}", headers=headers).json()
        if item["status"] == wanted:
            return item
    raise AssertionError(f"token {reference} never became {wanted}")


def test_token_lifecycle_pending_active_revoking_revoked(sim: SimHandle) -> None:
    sim.set_limits(enabled=False)
    owner = sim.owner_session()
    api = sim.client()
    created = api.post(
        "/tokens",
        headers=owner.headers,
        json={"permissions": ["InvoiceRead"], "description": "ERP reader"},
    )
    assert created.status_code == 202
    reference, token = created.json()["referenceNumber"], created.json()["token"]
    assert token.startswith(f"{reference}|nip-{OWNER_NIP}|")
    assert len(token.rsplit("|", 1)[1]) == 64

    first = api.get(f"/tokens/{reference}", headers=owner.headers).json()
    assert first["status"] in ("Pending", "Active")
    active = _wait_status(api, owner.headers, reference, "Active")
    assert active["authorIdentifier"] == {"type": "Nip", "value": OWNER_NIP}
    assert active["requestedPermissions"] == ["InvoiceRead"]

    assert api.delete(f"/tokens/{reference}", headers=owner.headers).status_code == 204
    assert api.get(f"/tokens/{reference}", headers=owner.headers).json()["status"] in (
        "Revoking",
        "Revoked",
    )
    _wait_status(api, owner.headers, reference, "Revoked")


def test_internal_id_token_string_names_the_context(sim: SimHandle) -> None:
    internal = f"{OWNER_NIP}-12345"
    session = sim.session_for(("Nip", OWNER_NIP), ("InternalId", internal))
    created = sim.client().post(
        "/tokens",
        headers=session.headers,
        json={"permissions": ["InvoiceRead"], "description": "subunit"},
    )
    assert created.status_code == 202
    assert f"|internalId-{internal}|" in created.json()["token"]


def test_listing_filters_and_pages_newest_first(sim: SimHandle) -> None:
    sim.set_limits(enabled=False)
    minted = [
        sim.mint_token(description=f"bulk token {i:03d}", permissions=["InvoiceRead"])
        for i in range(105)
    ]
    # Both stay Pending for the whole test: a short activation delay would race the listing.
    sim.set_faults(activation_delay_s=3600)
    special = sim.mint_token(description="Vault-managed ERP", active=False)
    pending = sim.mint_token(description="still pending one", active=False)
    owner = sim.owner_session()
    api = sim.client()

    seen: list[str] = []
    cursor: dict[str, str] = {}
    pages = 0
    while True:
        page = api.get(
            "/tokens", params={"pageSize": 100}, headers={**owner.headers, **cursor}
        ).json()
        seen += [t["referenceNumber"] for t in page["tokens"]]
        pages += 1
        if not page.get("continuationToken"):
            break
        cursor = {"x-continuation-token": page["continuationToken"]}
    expected = [t.reference_number for t in [*minted, special, pending]][::-1]
    assert seen == expected
    assert pages == 2

    by_description = api.get(
        "/tokens", params={"description": "vault-MANAGED"}, headers=owner.headers
    )
    assert [t["referenceNumber"] for t in by_description.json()["tokens"]] == [
        special.reference_number
    ]
    by_status = api.get("/tokens", params={"status": ["Pending", "Revoked"]}, headers=owner.headers)
    assert [t["referenceNumber"] for t in by_status.json()["tokens"]] == [
        pending.reference_number,
        special.reference_number,
    ]
    active = api.get("/tokens", params={"status": "Active", "pageSize": 100}, headers=owner.headers)
    assert special.reference_number not in [t["referenceNumber"] for t in active.json()["tokens"]]
    by_author = api.get(
        "/tokens",
        params={"authorIdentifier": OWNER_NIP[:5], "authorIdentifierType": "Pesel"},
        headers=owner.headers,
    )
    assert by_author.json()["tokens"] == []
    default_page = api.get("/tokens", headers=owner.headers).json()
    assert len(default_page["tokens"]) == 10

    bad = api.get("/tokens", headers={**owner.headers, "x-continuation-token": "not-a-cursor"})
    assert bad.status_code == 400 and _code(bad) == 21418
    too_big = sim.client(invalid_requests=True).get(
        "/tokens", params={"pageSize": 101}, headers=owner.headers
    )
    assert too_big.status_code == 400 and _code(too_big) == 21405


def test_you_cannot_give_a_token_permissions_you_lack(sim: SimHandle) -> None:
    token_session = sim.login_with_token(
        sim.mint_token(permissions=["CredentialsManage", "InvoiceRead"]).token
    )
    api = sim.client()
    refused = api.post(
        "/tokens",
        headers=token_session.headers,
        json={"permissions": ["InvoiceRead", "InvoiceWrite"], "description": "too much"},
    )
    assert refused.status_code == 400 and _code(refused) == 26001
    assert "InvoiceWrite" in refused.json()["exception"]["exceptionDetailList"][0]["details"][0]
    allowed = api.post(
        "/tokens",
        headers=token_session.headers,
        json={"permissions": ["InvoiceRead"], "description": "subset"},
    )
    assert allowed.status_code == 202


def test_tokens_only_in_nip_or_internal_id_contexts(sim: SimHandle) -> None:
    session = sim.session_for(("Nip", OWNER_NIP), ("NipVatUe", f"{OWNER_NIP}-DE123456789"))
    refused = sim.client().post(
        "/tokens",
        headers=session.headers,
        json={"permissions": ["InvoiceRead"], "description": "vat ue"},
    )
    assert refused.status_code == 400 and _code(refused) == 26002


def test_visibility_and_revocation_rules(sim: SimHandle) -> None:
    sim.set_limits(enabled=False)
    api = sim.client()
    pesel = ("Pesel", "15062788702")
    reader = ("Nip", OTHER_NIP)
    assert sim.grant(OWNER_NIP, pesel, ["InvoiceRead", "InvoiceWrite"]).status_code == 200
    assert sim.grant(OWNER_NIP, reader, ["CredentialsRead", "InvoiceRead"]).status_code == 200
    owners_token = sim.mint_token(permissions=["InvoiceRead"])
    person = sim.session_for(pesel)
    persons_ref = api.post(
        "/tokens",
        headers=person.headers,
        json={"permissions": ["InvoiceWrite"], "description": "by a person"},
    ).json()["referenceNumber"]
    everyone = {owners_token.reference_number, persons_ref}

    def visible(headers: dict[str, str]) -> set[str]:
        return {t["referenceNumber"] for t in api.get("/tokens", headers=headers).json()["tokens"]}

    owner = sim.owner_session()
    assert visible(owner.headers) == everyone
    assert visible(sim.session_for(reader).headers) == everyone  # CredentialsRead sees all
    assert visible(person.headers) == {persons_ref}  # only their own
    token_login = sim.login_with_token(owners_token.token)
    assert visible(token_login.headers) == {owners_token.reference_number}  # only itself

    hidden = api.get(f"/tokens/{owners_token.reference_number}", headers=person.headers)
    assert (
        hidden.status_code == 403 and hidden.json()["reasonCode"] == "insufficient-resource-access"
    )
    # Seeing everything is not managing everything: revoking others' tokens needs CredentialsManage.
    reader_session = sim.session_for(reader)
    forbidden = api.delete(f"/tokens/{persons_ref}", headers=reader_session.headers)
    assert forbidden.status_code == 403 and forbidden.json()["reasonCode"] == "missing-permissions"
    assert api.delete(f"/tokens/{persons_ref}", headers=person.headers).status_code == 204
    assert (
        api.delete(f"/tokens/{owners_token.reference_number}", headers=owner.headers).status_code
        == 204
    )


def test_someone_without_permissions_sees_nothing_of_a_foreign_context(sim: SimHandle) -> None:
    sim.mint_token()
    stranger = sim.session_for(("Nip", OTHER_NIP), ("Nip", OWNER_NIP))
    assert sim.client().get("/tokens", headers=stranger.headers).json()["tokens"] == []
