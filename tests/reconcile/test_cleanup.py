"""Ending sessions at the end of a run is bounded like the run itself."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from ksefctl.errors import KsefctlError
from ksefctl.reconcile.fanout import drain as _drain


async def test_at_most_workers_at_once_and_every_call_runs_despite_errors() -> None:
    running = peak = 0
    done: list[int] = []

    async def end(i: int) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running -= 1
        if i % 7 == 0:
            raise KsefctlError("KSeF refused to end the session")
        done.append(i)

    await _drain([partial(end, i) for i in range(100)], 5)
    assert peak == 5
    assert sorted(done) == [i for i in range(100) if i % 7]


async def test_cancellation_is_not_swallowed() -> None:
    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await _drain([cancelled], 2)
