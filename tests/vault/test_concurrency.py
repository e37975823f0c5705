"""Thousands of contexts: Vault calls run in a bounded pool and the event loop stays free."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ksefctl.manifest.model import SecretRef
from ksefctl.vault import VaultStore
from ksefctl.vault.store import _Version
from tests.conftest import Bao
from tests.vault.conftest import write


async def test_200_concurrent_reads_run_in_the_bounded_pool(
    bao_env: Bao, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = [SecretRef(bao_env.mount, f"ksef/test/{n:010d}/erp") for n in range(200)]
    in_flight = 0
    peak = 0
    threads: set[str] = set()
    guard = threading.Lock()

    async with VaultStore(concurrency=8) as store:
        for ref in refs[:20]:
            await write(store, ref, cas=0)
        read = store._read_version

        def observed_read(mount: str, path: str) -> _Version:
            nonlocal in_flight, peak
            with guard:
                in_flight += 1
                peak = max(peak, in_flight)
                threads.add(threading.current_thread().name)
            try:
                return read(mount, path)
            finally:
                with guard:
                    in_flight -= 1

        monkeypatch.setattr(store, "_read_version", observed_read)

        loop = asyncio.get_running_loop()
        lag = 0.0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal lag
            while not stop.is_set():
                before = loop.time()
                await asyncio.sleep(0.005)
                lag = max(lag, loop.time() - before - 0.005)

        ticking = asyncio.create_task(ticker())
        states = await asyncio.gather(*(store.read_token_state(ref) for ref in refs))
        stop.set()
        await ticking

    assert [s.exists for s in states] == [True] * 20 + [False] * 180
    assert all(name.startswith("ksefctl-vault") for name in threads)
    assert 1 < peak <= 8  # calls overlapped, never beyond the pool's size
    # Generous: the loop only ever waits on futures, never on a socket.
    assert lag < 0.5, f"event loop stalled for {lag:.3f}s"
