"""The multi-window sliding-log limiter: never more than allowed in any window."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ksefctl.ksef.pacing import Limiter, WindowLimits, minimum_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def take(limiter: Limiter) -> None:
    async with limiter.slot():
        pass


def test_minimum_duration_of_bursts() -> None:
    # 4/s: bursts of four at t = 0, 1, 2 …; the 40th request leaves at t = 9.
    assert minimum_duration(WindowLimits(per_second=4, per_minute=60), 40) == 9.0
    # 2/s and 5/min: five requests in the first 2 s, then the minute window rules.
    assert minimum_duration(WindowLimits(per_second=2, per_minute=5), 6) == 60.0
    assert minimum_duration(WindowLimits(), 1000) == 0.0
    assert minimum_duration(WindowLimits(per_second=1), 0) == 0.0


async def test_delay_counts_every_window_from_the_answer() -> None:
    clock = Clock()
    limiter = Limiter(WindowLimits(per_second=2, per_minute=3), margin_s=0.0, clock=clock)
    await take(limiter)
    clock.now += 0.1
    await take(limiter)
    assert limiter.delay() == pytest.approx(0.9)  # the second window is full until t0 + 1
    clock.now += 1.0
    await take(limiter)
    assert limiter.delay() == pytest.approx(58.9)  # now the minute is full
    clock.now += 59.0
    assert limiter.delay() == 0.0


async def test_an_in_flight_request_holds_its_slot_until_answered() -> None:
    clock = Clock()
    limiter = Limiter(WindowLimits(per_second=1), margin_s=0.0, clock=clock)
    async with limiter.slot():
        assert math.isinf(limiter.delay())
        clock.now += 5.0
    assert limiter.delay() == pytest.approx(1.0)  # one full window after the answer


async def test_block_for_and_update() -> None:
    clock = Clock()
    limiter = Limiter(WindowLimits(per_second=100), margin_s=0.0, clock=clock)
    limiter.block_for(3.0)
    assert limiter.delay() == pytest.approx(3.0)
    clock.now += 3.0
    await take(limiter)
    limiter.update(WindowLimits(per_second=1))
    assert limiter.delay() == pytest.approx(1.0)


async def test_concurrent_callers_never_exceed_any_window() -> None:
    limits = WindowLimits(per_second=4, per_minute=12)
    limiter = Limiter(limits, margin_s=0.0)
    started: list[float] = []
    answered: list[float] = []

    async def request() -> None:
        async with limiter.slot():
            started.append(time.monotonic())
            await asyncio.sleep(0.002)
            answered.append(time.monotonic())

    began = time.monotonic()
    await asyncio.gather(*(request() for _ in range(8)))
    # Whenever a request starts, fewer than `limit` answers of its window precede it
    # and no other request is in flight beyond the limit.
    for t in started:
        recent = [a for a in answered if t - 1.0 < a <= t]
        in_flight = [s for s, a in zip(started, answered, strict=True) if s < t < a]
        assert len(recent) + len(in_flight) < 4
    assert time.monotonic() - began >= minimum_duration(limits, 8)


@given(
    st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=10),
)
def test_delay_is_exactly_when_the_windows_allow(
    gaps: list[float], per_second: int, per_minute: int
) -> None:
    """Sending whenever delay() says 0 never overruns; waiting delay() always suffices."""
    clock = Clock()
    limits = WindowLimits(per_second=per_second, per_minute=per_minute)
    # A microsecond of margin absorbs float rounding in `now += wait`.
    limiter = Limiter(limits, margin_s=1e-6, clock=clock)
    sent: list[float] = []

    async def run() -> None:
        for gap in gaps:
            clock.now += gap
            wait = limiter.delay()
            clock.now += wait
            assert limiter.delay() <= 0.0
            await take(limiter)
            sent.append(clock.now)

    asyncio.run(run())
    for length, n in limits.windows():
        for t in sent:
            assert len([s for s in sent if t - length < s <= t]) <= n


def test_each_endpoint_has_its_own_counter_and_learnt_limits_reach_all_of_its_group() -> None:
    from ksefctl.ksef import pacing as endpoints
    from ksefctl.ksef.transport import Transport
    from ksefctl.vocabulary import ContextId

    transport = Transport("http://127.0.0.1:9/v2")
    one, two = ContextId("Nip", "5265877635"), ContextId("Nip", "7762811692")
    create = transport.limiter(endpoints.CREATE_TOKEN, one)
    assert transport.limiter(endpoints.LIST_TOKENS, one) is not create
    assert transport.limiter(endpoints.CREATE_TOKEN, two) is not create
    assert transport.limiter(endpoints.CREATE_TOKEN, one) is create
    # Public endpoints are counted per client IP: one limiter whatever the context.
    assert transport.limiter(endpoints.CHALLENGE, one) is transport.limiter(
        endpoints.CHALLENGE, two
    )
    assert transport.limiter(endpoints.CHALLENGE, one) is not transport.limiter(
        endpoints.KSEF_TOKEN_LOGIN, one
    )
    learnt = WindowLimits(5, 50, 500)
    transport.adopt_limits("other", one, learnt)
    assert create.limits == learnt
    assert transport.limiter(endpoints.REVOKE_TOKEN, one).limits == learnt  # created after
    assert transport.limiter(endpoints.CREATE_TOKEN, two).limits == endpoints.PROTECTED_DEFAULT
    assert transport.limiter(endpoints.REFRESH, one).limits == endpoints.PUBLIC_DEFAULT


def test_unlisted_endpoints_share_a_counter_per_operation_not_per_resource() -> None:
    from ksefctl.ksef.pacing import unlisted

    a = unlisted("get", "/permissions/operations/20251010-EO-1DCE3E3000-12ECB5B36E-45")
    b = unlisted("GET", "/permissions/operations/20251011-EO-2DCE3E3000-12ECB5B36E-46")
    assert a == b and a.name == "GET /permissions/operations/{}"
    assert (
        unlisted("POST", "/permissions/persons/grants").name == "POST /permissions/persons/grants"
    )
