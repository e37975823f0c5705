"""POST /auth/ksef-token as KSeF 2.6 validates it: AllowedIps, publicKeyId, context types.

Every check here is input validation, so it answers 400 21405 before any key, challenge or
session is looked at; none of them may leave a session that later answers 500.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.simfixture import OWNER_NIP, SimHandle, encrypt, poll_auth


def _login_body(
    api: httpx.Client, token: str, context: tuple[str, str] = ("Nip", OWNER_NIP), **extra: Any
) -> dict[str, Any]:
    certificates = api.get("/security/public-key-certificates").json()
    chosen = next(c for c in certificates if "KsefTokenEncryption" in c["usage"])
    key = x509.load_der_x509_certificate(base64.b64decode(chosen["certificate"])).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    challenge = api.post("/auth/challenge").json()
    body: dict[str, Any] = {
        "challenge": challenge["challenge"],
        "contextIdentifier": {"type": context[0], "value": context[1]},
        "encryptedToken": encrypt(key, f"{token}|{challenge['timestampMs']}"),
        "publicKeyId": chosen["publicKeyId"],
    }
    body.update(extra)
    return body


def _error_code(response: httpx.Response) -> int:
    code: int = response.json()["exception"]["exceptionDetailList"][0]["exceptionCode"]
    return code


def _policy(**lists: list[str]) -> dict[str, Any]:
    return {"allowedIps": lists}


@pytest.mark.parametrize(
    "policy",
    [
        _policy(ip4Addresses=[f"10.0.0.{i}" for i in range(11)]),
        _policy(ip4Addresses=["999.1.1.1"]),
        _policy(ip4Addresses=["127.0.0.1\n"]),
        _policy(ip4Ranges=["10.0.0.1"]),
        _policy(ip4Masks=["10.0.0.0/33"]),
        _policy(ip4Masks=[f"10.0.{i}.0/24" for i in range(11)]),
        _policy(ip4Ranges="10.0.0.1-10.0.0.2"),  # type: ignore[arg-type]
        {"allowedIps": ["127.0.0.1"]},
        "127.0.0.1",
    ],
)
def test_a_malformed_ip_policy_is_400_21405_and_starts_no_session(
    sim: SimHandle, policy: Any
) -> None:
    minted = sim.mint_token()
    api = sim.client(invalid_requests=True)
    refused = api.post(
        "/auth/ksef-token", json=_login_body(api, minted.token, authorizationPolicy=policy)
    )
    assert refused.status_code == 400, refused.text
    assert _error_code(refused) == 21405
    assert sim.stats()["statuses"].get("500") is None


def test_a_valid_ip_policy_limits_where_the_access_token_works(sim: SimHandle) -> None:
    minted = sim.mint_token()
    api = sim.client()
    for allowed, works in (
        (_policy(ip4Addresses=["127.0.0.1"]), True),
        (_policy(ip4Ranges=["127.0.0.0-127.0.0.255"]), True),
        (_policy(ip4Masks=["127.0.0.0/8"]), True),
        (_policy(ip4Addresses=["10.9.8.7"], ip4Masks=["192.168.0.0/16"]), False),
    ):
        started = api.post(
            "/auth/ksef-token", json=_login_body(api, minted.token, authorizationPolicy=allowed)
        )
        assert started.status_code == 202, started.text
        auth = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
        assert poll_auth(api, started.json()["referenceNumber"], auth)["code"] == 200
        access = api.post("/auth/token/redeem", headers=auth).json()["accessToken"]["token"]
        listed = api.get("/tokens", headers={"Authorization": f"Bearer {access}"})
        assert listed.status_code == (200 if works else 403), (allowed, listed.text)
        if not works:
            assert listed.json()["reasonCode"] == "ip-not-allowed"


@pytest.mark.parametrize("key_id", ["short", "A" * 45, "!" * 44])
def test_a_malformed_public_key_id_is_21405_not_21470(sim: SimHandle, key_id: str) -> None:
    minted = sim.mint_token()
    api = sim.client(invalid_requests=True)
    refused = api.post("/auth/ksef-token", json=_login_body(api, minted.token, publicKeyId=key_id))
    assert refused.status_code == 400
    assert _error_code(refused) == 21405


def test_a_well_formed_unknown_public_key_id_is_21470(sim: SimHandle) -> None:
    minted = sim.mint_token()
    api = sim.client()
    unknown = base64.b64encode(b"\x00" * 32).decode()
    refused = api.post("/auth/ksef-token", json=_login_body(api, minted.token, publicKeyId=unknown))
    assert refused.status_code == 400
    assert _error_code(refused) == 21470


def test_a_malformed_challenge_is_21405(sim: SimHandle) -> None:
    minted = sim.mint_token()
    api = sim.client(invalid_requests=True)
    refused = api.post("/auth/ksef-token", json=_login_body(api, minted.token, challenge="x"))
    assert refused.status_code == 400
    assert _error_code(refused) == 21405


def test_a_peppol_context_is_a_login_context_where_nobody_holds_permissions(
    sim: SimHandle,
) -> None:
    minted = sim.mint_token()
    api = sim.client()
    started = api.post(
        "/auth/ksef-token", json=_login_body(api, minted.token, ("PeppolId", "PPL123456"))
    )
    assert started.status_code == 202, started.text
    auth = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
    # The token belongs to a Nip context, so it is no credential for the Peppol one.
    assert poll_auth(api, started.json()["referenceNumber"], auth)["code"] == 450

    malformed = sim.client(invalid_requests=True).post(
        "/auth/ksef-token", json=_login_body(api, minted.token, ("PeppolId", "PL123456"))
    )
    assert malformed.status_code == 400
    assert _error_code(malformed) == 21405


def test_enum_values_are_read_in_any_case_as_the_official_examples_write_them(
    sim: SimHandle,
) -> None:
    minted = sim.mint_token()
    api = sim.client(invalid_requests=True)
    started = api.post("/auth/ksef-token", json=_login_body(api, minted.token, ("nip", OWNER_NIP)))
    assert started.status_code == 202, started.text
    auth = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
    assert poll_auth(api, started.json()["referenceNumber"], auth)["code"] == 200
