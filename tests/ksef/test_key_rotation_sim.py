"""KSeF public-key rotation (bezpieczenstwo_klucze-publiczne-do-szyfrowania.md) over real HTTP.

The simulator's admin calls publish, re-certify and retire keys; the client
picks the valid key with the latest ``validFrom`` and survives an emergency
rotation with one refetch of the list and one retry per login.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ksefctl.ksef import ClientSettings, KsefClient, ValidationFailed
from ksefctl.ksef.keys import TOKEN_ENCRYPTION, parse_public_keys, select_key
from ksefctl.secret import Secret
from ksefctl.sim.config import ConfigError, SimConfig
from ksefctl.sim.server import start_in_thread
from tests.contract import ContractChecker
from tests.ksef.conftest import NIP, OTHER_NIP, admin, mint
from tests.support.sim import SimHandle

KEYS_PATH = "/security/public-key-certificates"
KEYS_ROUTE = f"GET /v2{KEYS_PATH}"
LOGIN_ROUTE = "POST /v2/auth/ksef-token"


@pytest.fixture
async def api(sim: SimHandle, contract: ContractChecker) -> AsyncIterator[httpx.AsyncClient]:
    """Plain /v2 calls, every one checked against the contract."""
    async with httpx.AsyncClient(
        base_url=sim.base_url, event_hooks=contract.async_hooks(), timeout=10
    ) as http:
        yield http


async def token_keys(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get(KEYS_PATH)
    assert response.status_code == 200
    return [k for k in response.json() if TOKEN_ENCRYPTION in k["usage"]]


def rotate(sim: SimHandle, **step: Any) -> dict[str, Any]:
    return admin(sim, "/public-keys", step)  # type: ignore[no-any-return]


def requests(sim: SimHandle, route: str) -> int:
    return int(admin(sim, "/stats", method="GET")["requests"].get(route, 0))


def noting_key_ids(contract: ContractChecker, seen: list[str]) -> ClientSettings:
    """Contract-checked requests; the publicKeyId of every token login goes into ``seen``."""
    hooks = contract.async_hooks()

    async def note(request: httpx.Request) -> None:
        if request.url.path.endswith("/auth/ksef-token"):
            seen.append(json.loads(request.content)["publicKeyId"])

    return ClientSettings(event_hooks={**hooks, "request": [*hooks.get("request", []), note]})


async def test_planned_rotation_lists_both_keys_and_both_are_accepted(
    sim: SimHandle, api: httpx.AsyncClient
) -> None:
    (old,) = await token_keys(api)
    created = rotate(sim, action="publish")["created"]
    listed = await token_keys(api)
    assert [k["publicKeyId"] for k in listed] == [old["publicKeyId"], created["publicKeyId"]]
    assert created["validFrom"] > old["validFrom"]
    # The client prefers the newest valid key, exactly as the docs ask.
    parsed = parse_public_keys((await api.get(KEYS_PATH)).json())
    assert select_key(parsed, TOKEN_ENCRYPTION).public_key_id == created["publicKeyId"]


async def test_recertification_keeps_the_key_id_and_changes_the_certificate(
    sim: SimHandle, api: httpx.AsyncClient
) -> None:
    (old,) = await token_keys(api)
    valid_to = datetime.now(UTC).replace(microsecond=0) + timedelta(days=800)
    renewed = rotate(sim, action="recertify", validTo=valid_to.isoformat())["created"]
    (listed,) = await token_keys(api)
    assert listed == renewed
    assert renewed["publicKeyId"] == old["publicKeyId"]
    assert renewed["certificateId"] != old["certificateId"]
    assert renewed["certificate"] != old["certificate"]
    assert datetime.fromisoformat(renewed["validTo"]) == valid_to


async def test_a_retired_key_is_refused_with_21470_and_a_new_one_published(
    sim: SimHandle, api: httpx.AsyncClient, secrets_seen: list[Secret]
) -> None:
    _, token = mint(sim)
    secrets_seen.append(token)
    (old,) = await token_keys(api)
    answer = rotate(sim, action="retire", publicKeyId=old["publicKeyId"])
    (new,) = await token_keys(api)
    assert answer["created"] == new and new["publicKeyId"] != old["publicKeyId"]
    challenge = (await api.post("/auth/challenge")).json()["challenge"]
    body = {
        "challenge": challenge,
        "contextIdentifier": {"type": "Nip", "value": NIP},
        "encryptedToken": base64.b64encode(b"x" * 256).decode(),
        "publicKeyId": old["publicKeyId"],
    }
    refused = await api.post("/auth/ksef-token", json=body)
    assert refused.status_code == 400
    assert refused.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] == 21470


async def test_a_key_published_ahead_of_its_validity_is_listed_but_not_yet_accepted(
    sim: SimHandle, api: httpx.AsyncClient
) -> None:
    later = datetime.now(UTC) + timedelta(days=30)
    ahead = rotate(sim, action="publish", validFrom=later.isoformat())["created"]
    assert [k["acceptedNow"] for k in admin(sim, "/public-keys", method="GET")] == [
        True,
        True,
        False,
    ]
    assert ahead["publicKeyId"] in [k["publicKeyId"] for k in await token_keys(api)]
    # A client that goes by validity alone keeps the current key until then.
    parsed = parse_public_keys((await api.get(KEYS_PATH)).json())
    assert select_key(parsed, TOKEN_ENCRYPTION).public_key_id != ahead["publicKeyId"]


@pytest.mark.parametrize(
    ("step", "status"),
    [
        ({"action": "explode"}, 400),
        ({"action": "publish", "usage": "Nothing"}, 400),
        ({"action": "retire", "publicKeyId": "bm90IGEga2V5"}, 404),
        ({"action": "publish", "validFrom": "tomorrow"}, 400),
        ({"action": "publish", "validFrom": "2030-01-01T00:00:00"}, 400),  # no time zone
        ({"action": "retire", "validTo": "2030-01-01T00:00:00+00:00"}, 400),
        ({"action": "publish", "colour": "red"}, 400),
    ],
)
def test_bad_rotation_steps_are_one_clear_error(
    sim: SimHandle, step: dict[str, Any], status: int
) -> None:
    response = httpx.post(f"{sim.admin_url}/public-keys", json=step, timeout=10)
    assert response.status_code == status
    assert response.json()["error"]
    assert len(admin(sim, "/public-keys", method="GET")) == 2  # nothing changed


def test_config_rotation_steps_run_at_start() -> None:
    config = SimConfig.from_mapping(
        {"public_keys": [{"action": "publish"}, {"action": "retire", "usage": TOKEN_ENCRYPTION}]}
    )
    running = start_in_thread(config)
    try:
        listed = admin(running, "/public-keys", method="GET")
    finally:
        running.stop()
    token = [k for k in listed if TOKEN_ENCRYPTION in k["usage"]]
    # Planned rotation, then the emergency retirement of the old key: only the new one left.
    assert len(token) == 1 and token[0]["acceptedNow"]
    with pytest.raises(ConfigError, match="public_keys"):
        SimConfig.from_mapping({"public_keys": [{"action": "burn"}]})


async def test_the_client_logs_in_with_the_newest_key_during_a_planned_rotation(
    sim: SimHandle, contract: ContractChecker, secrets_seen: list[Secret]
) -> None:
    _, token = mint(sim)
    secrets_seen.append(token)
    new = rotate(sim, action="publish")["created"]
    seen: list[str] = []
    async with (
        KsefClient(sim.base_url, noting_key_ids(contract, seen)) as ksef,
        await ksef.login_with_token("Nip", NIP, token) as session,
    ):
        assert await session.list_tokens() is not None
    assert seen == [new["publicKeyId"]]


async def test_a_key_retired_mid_run_costs_each_login_one_retry_and_the_run_one_refetch(
    sim: SimHandle, contract: ContractChecker, secrets_seen: list[Secret]
) -> None:
    tokens = {nip: mint(sim, nip)[1] for nip in (NIP, OTHER_NIP)}
    secrets_seen.extend(tokens.values())
    seen: list[str] = []
    async with KsefClient(sim.base_url, noting_key_ids(contract, seen)) as ksef:
        cached = (await ksef.token_encryption_key()).public_key_id
        replacement = rotate(sim, action="retire", publicKeyId=cached)["created"]
        sessions = await asyncio.gather(
            *(ksef.login_with_token("Nip", nip, token) for nip, token in tokens.items())
        )
        for session in sessions:
            await session.close()
    assert requests(sim, KEYS_ROUTE) == 2  # the first fetch and one refetch for both logins
    assert requests(sim, LOGIN_ROUTE) == 4  # each login: refused once, then accepted
    assert sorted(seen) == sorted([cached] * 2 + [replacement["publicKeyId"]] * 2)


async def test_a_refused_key_that_stays_listed_is_not_retried_forever(
    sim: SimHandle, contract: ContractChecker, secrets_seen: list[Secret]
) -> None:
    _, token = mint(sim)
    secrets_seen.append(token)
    # Listed but not valid on the simulator's clock: KSeF refuses it, the list keeps it.
    async with KsefClient(sim.base_url, noting_key_ids(contract, [])) as ksef:
        await ksef.public_keys()
        admin(sim, "/clock", {"advanceSeconds": -3 * 86400})
        with pytest.raises(ValidationFailed) as refused:
            await ksef.login_with_token("Nip", NIP, token)
    assert 21470 in refused.value.codes
    assert requests(sim, LOGIN_ROUTE) == 1
    assert requests(sim, KEYS_ROUTE) == 2


def test_a_rotation_survives_a_restart_with_a_state_file(tmp_path: Path) -> None:
    config = SimConfig.from_mapping({"state_file": str(tmp_path / "sim.db")})
    first = start_in_thread(config)
    try:
        published = admin(first, "/public-keys", {"action": "publish"})["keys"]
    finally:
        first.stop()
    second = start_in_thread(config)
    try:
        listed = admin(second, "/public-keys", method="GET")
    finally:
        second.stop()
    assert [k["publicKeyId"] for k in listed] == [k["publicKeyId"] for k in published]
    assert len(listed) == 3  # two usages, and the token-encryption key twice
