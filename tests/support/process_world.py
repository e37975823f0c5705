"""``process_world``: the CLI in child processes (tests/chaos/harness.py's :class:`ChaosWorld`)
on the test's simulator and KV mount, with one context seeded.

For tests that put something between ksefctl and the simulator (a TLS server, a
corrupting proxy): the simulator's answers leave the contract on purpose, so its
checker is off, and its limits are off so runs never wait on them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import ChaosWorld, nips
from tests.support.sim import SimHandle
from tests.support.vault import Bao

# The one context a process world holds (a hand-made and a foreign token in it).
CONTEXTS = nips(1, start=561_000_001)


@pytest.fixture
def process_world(sim: SimHandle, bao: Bao, tmp_path: Path) -> ChaosWorld:
    sim.checker = None
    sim.set_limits(enabled=False)
    world = ChaosWorld(sim, bao.address, bao.token, bao.mount, tmp_path)
    world.seed_contexts(CONTEXTS)
    return world
