"""Rate-limit waits are announced, and ``--max-wait`` bounds them (no silent hour on a 429).

Given KSeF answering 429 with a Retry-After, when a wait is longer than the
announcement threshold the client says so (where, what, how long, why) before
waiting; when it is longer than ``max_wait_s`` the call fails at once, sending
nothing more, with one line that says when to retry.
"""

from __future__ import annotations

import pytest

from ksefctl.ksef import ClientSettings, KsefClient, RetryPolicy, WaitTooLong
from ksefctl.sim.server import RunningSimulator
from tests.contract import ContractChecker
from tests.ksef.conftest import set_faults

RETRY = RetryPolicy(max_attempts=2, max_rate_limited=3, base_delay_s=0.01)


async def test_a_long_wait_is_announced_before_it_starts(
    sim: RunningSimulator, contract: ContractChecker
) -> None:
    heard: list[tuple[str, str, float, str]] = []
    set_faults(sim, storm_rate=1.0, storm_retry_after=1)
    settings = ClientSettings(
        event_hooks=contract.async_hooks(),
        retry=RetryPolicy(max_attempts=2, max_rate_limited=1, base_delay_s=0.01),
        announce_wait_s=0.5,
        on_wait=lambda *told: heard.append(told),
    )
    async with KsefClient(sim.base_url, settings) as ksef:
        with pytest.raises(Exception, match="429"):
            await ksef.public_keys()
    ((where, endpoint, seconds, why),) = heard  # once for the wait, not per request
    assert where == "this client" and endpoint == "GET /security/public-key-certificates"
    assert seconds == 1.0 and why.startswith("429 Retry-After")


async def test_a_wait_beyond_max_wait_fails_at_once_saying_when_to_retry(
    sim: RunningSimulator, contract: ContractChecker
) -> None:
    set_faults(sim, storm_rate=1.0, storm_retry_after=3600)
    settings = ClientSettings(event_hooks=contract.async_hooks(), retry=RETRY, max_wait_s=30)
    async with KsefClient(sim.base_url, settings) as ksef:
        with pytest.raises(WaitTooLong) as refused:
            await ksef.public_keys()
        sent = ksef.stats.requests["-"]
    message = str(refused.value)
    assert "would hold this client for 3600 s, more than --max-wait 30 s" in message
    assert "nothing sent, retry after" in message and "\n" not in message
    assert sent == 1  # the 429 itself; nothing after it


async def test_a_pacing_wait_is_told_before_it_starts_and_can_be_refused() -> None:
    from ksefctl.ksef import Limiter, WindowLimits

    limiter = Limiter(WindowLimits(per_minute=1))
    heard: list[float] = []

    def refuse(wait: float) -> None:
        heard.append(wait)
        raise WaitTooLong("too long")

    async with limiter.slot(refuse):
        pass  # room now: nobody is told anything
    assert heard == []
    with pytest.raises(WaitTooLong):
        async with limiter.slot(refuse):
            pytest.fail("a refused wait must not hold a slot")
    (wait,) = heard
    assert 59 < wait <= 60.1
