"""Pacing against the simulator's real limits: no 429s, and no time wasted either.

KSeF counts every endpoint separately (limity_limity-api.md), so the limits a
context is given apply to POST /tokens, GET /tokens, GET /tokens/{ref} and
DELETE /tokens/{ref} each on its own.
"""

from __future__ import annotations

import time

from ksefctl.ksef import ClientSettings, KsefClient, WindowLimits, minimum_duration
from ksefctl.secret import Secret
from tests.contract import ContractChecker
from tests.ksef.conftest import NIP, admin, mint
from tests.support.sim import SimHandle

SMALL = WindowLimits(per_second=4, per_minute=60, per_hour=1000)


async def test_forty_token_operations_are_paced_per_endpoint_without_a_single_429(
    sim: SimHandle, contract: ContractChecker, secrets_seen: list[Secret]
) -> None:
    _, token = mint(sim)
    secrets_seen.append(token)
    async with (
        KsefClient(
            sim.base_url,
            ClientSettings(event_hooks=contract.async_hooks(), learn_rate_limits=False),
        ) as ksef,
        await ksef.login_with_token("Nip", NIP, token) as session,
    ):
        started = time.monotonic()
        # GET /rate-limits + POST /testdata/rate-limits: two requests of the group.
        await session.set_test_rate_limits({"other": SMALL})
        for i in range(10):
            marker = f"pace-{i:02d}"
            made = await session.generate_token(["InvoiceRead"], f"paced {marker}")
            secrets_seen.append(made.token)
            await session.get_token(made.reference_number)
            assert len(await session.list_tokens(description=marker)) == 1
            await session.revoke_token(made.reference_number)
        elapsed = time.monotonic() - started
    # Ten requests of each token endpoint; one counter each (one shared counter: 10 s).
    bound = minimum_duration(SMALL, 10)
    assert bound == 2.0
    assert ksef.stats.total_rate_limited() == 0
    assert "429" not in admin(sim, "/stats", method="GET")["statuses"]
    assert bound <= elapsed <= bound + 2.5, f"{elapsed:.2f} s for a {bound:.2f} s minimum"


async def test_a_429_caused_by_another_machine_is_waited_out(
    sim: SimHandle, contract: ContractChecker, secrets_seen: list[Secret]
) -> None:
    _, token = mint(sim)
    secrets_seen.append(token)
    hooks = contract.async_hooks()
    async with (
        KsefClient(sim.base_url, ClientSettings(event_hooks=hooks)) as first,
        KsefClient(sim.base_url, ClientSettings(event_hooks=hooks)) as second,
    ):
        one = await first.login_with_token("Nip", NIP, token)
        other = await second.login_with_token("Nip", NIP, token)
        await one.set_test_rate_limits({"other": WindowLimits(2, 60, 1000)})
        # `first` spends this second's quota; `second` cannot know and meets a 429.
        await one.list_tokens()
        await one.list_tokens()
        assert await other.list_tokens()
        assert second.stats.total_rate_limited() == 1
        assert first.stats.total_rate_limited() == 0
        await one.close()
        await other.close()
