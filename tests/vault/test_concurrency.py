"""Thousands of contexts: Vault reads overlap on the event loop, over a bounded pool."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ksefctl.manifest.model import SecretRef
from ksefctl.vault import VaultStore
from ksefctl.vault.http import VaultHttp
from tests.conftest import Bao
from tests.vault.conftest import write


def established_to(port: int) -> int:
    """Open TCP connections (client side) to ``port`` on this machine, from /proc."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == "01":  # 01: ESTABLISHED
                count += 1
    return count


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc/net/tcp")
async def test_200_concurrent_reads_overlap_on_a_bounded_pool(
    bao_env: Bao, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = [SecretRef(bao_env.mount, f"ksef/test/{n:010d}/erp") for n in range(200)]
    port = urlsplit(bao_env.address).port
    assert port is not None
    before = established_to(port)
    in_flight = 0
    peak_requests = 0
    peak_connections = 0

    async with VaultStore(concurrency=8) as store:
        for ref in refs[:20]:
            await write(store, ref, cas=0)
        request = VaultHttp.request

        async def observed_request(*args: Any, **kwargs: Any) -> dict[str, Any]:
            nonlocal in_flight, peak_requests
            in_flight += 1
            peak_requests = max(peak_requests, in_flight)
            try:
                return await request(*args, **kwargs)
            finally:
                in_flight -= 1

        monkeypatch.setattr(VaultHttp, "request", observed_request)

        loop = asyncio.get_running_loop()
        lag = 0.0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal lag, peak_connections
            while not stop.is_set():
                before_tick = loop.time()
                await asyncio.sleep(0.005)
                lag = max(lag, loop.time() - before_tick - 0.005)
                peak_connections = max(peak_connections, established_to(port) - before)

        ticking = asyncio.create_task(ticker())
        states = await asyncio.gather(*(store.read_token_state(ref) for ref in refs))
        stop.set()
        await ticking

    assert [s.exists for s in states] == [True] * 20 + [False] * 180
    assert peak_requests > 1  # reads overlapped
    # At most the pool's 8 connections: every Vault call, the login too, shares that pool.
    assert 1 <= peak_connections <= 8
    # Generous: the loop never waits on a socket.
    assert lag < 0.5, f"event loop stalled for {lag:.3f}s"
