"""DELETE /tokens/{ref} revokes "any active token" (open-api.json): a token already Revoked,
or Failed (never active), is refused with 400 21405; a revocation under way repeats harmlessly."""

from __future__ import annotations

import httpx

from tests.simfixture import SimHandle


def _status(api: httpx.Client, headers: dict[str, str], reference: str) -> str:
    status: str = api.get(f"/tokens/{reference}", headers=headers).json()["status"]
    return status


def test_revoking_twice_is_204_while_revoking_and_400_once_revoked(sim: SimHandle) -> None:
    sim.set_faults(revocation_delay_s=3600)
    owner = sim.owner_session()
    api = sim.client()
    minted = sim.mint_token(permissions=["InvoiceRead"])
    assert (
        api.delete(f"/tokens/{minted.reference_number}", headers=owner.headers).status_code == 204
    )
    assert _status(api, owner.headers, minted.reference_number) == "Revoking"
    assert (
        api.delete(f"/tokens/{minted.reference_number}", headers=owner.headers).status_code == 204
    )

    sim.advance_clock(3601)
    owner = sim.owner_session()  # the first access token expired meanwhile
    assert _status(api, owner.headers, minted.reference_number) == "Revoked"
    again = api.delete(f"/tokens/{minted.reference_number}", headers=owner.headers)
    assert again.status_code == 400
    assert again.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] == 21405


def test_a_failed_token_cannot_be_revoked(sim: SimHandle) -> None:
    sim.set_faults(failed_activation_rate=1.0)
    owner = sim.owner_session()
    api = sim.client()
    created = api.post(
        "/tokens",
        headers=owner.headers,
        json={"permissions": ["InvoiceRead"], "description": "fails"},
    )
    reference = created.json()["referenceNumber"]
    sim.advance_clock(60)
    assert _status(api, owner.headers, reference) == "Failed"
    refused = api.delete(f"/tokens/{reference}", headers=owner.headers)
    assert refused.status_code == 400
    assert _status(api, owner.headers, reference) == "Failed"
