"""Fixtures of the chaos suite: one simulator and one KV mount shared by a module's tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from ksefctl.openbao import DevServer
from ksefctl.sim.config import SimConfig
from tests.chaos.harness import ChaosWorld
from tests.support.sim import SimHandle, start_sim


def chaos_sim(seed: int) -> SimHandle:
    config = SimConfig(seed=seed)
    handle = start_sim(config)  # no contract checker: injected faults break the contract on purpose
    # The documented hourly limits would throttle dozens of runs on the same contexts; the
    # 429 storms this suite wants are injected explicitly instead.
    handle.set_limits(enabled=False)
    return handle


@pytest.fixture
def kill_world(bao_server: DevServer, tmp_path: Path) -> Iterator[ChaosWorld]:
    mount = f"chaos-{uuid.uuid4().hex[:10]}"
    client = hvac.Client(url=bao_server.address, token=bao_server.root_token)
    client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    sim = chaos_sim(seed=8)
    try:
        yield ChaosWorld(sim, bao_server.address, bao_server.root_token, mount, tmp_path)
    finally:
        sim.close()
        client.sys.disable_secrets_engine(mount)
