"""20 contexts × 3 tokens applied through every kind of fault the simulator can inject,
and through a Vault that is killed mid-run and restarted (data kept on disk).

A dev server would come back empty, which is a different disaster (the secrets gone) and
not one apply could recover from; a production Vault keeps its storage, so the test uses
``bao server`` with integrated (raft) storage on disk, initialised and unsealed by the harness.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hvac
import pytest

from tests.chaos.conftest import chaos_sim
from tests.chaos.harness import ChaosWorld, PersistentBao, nips, record

pytestmark = pytest.mark.chaos

CONTEXTS = 20
CALM: dict[str, Any] = {
    "error_rate": 0.0,
    "drop_rate": 0.0,
    "latency_ms": 0,
    "jitter_ms": 0,
    "storm_rate": 0.0,
    "failed_activation_rate": 0.0,
    "drop_after_commit_rate": 0.0,
}
PHASES: list[tuple[str, dict[str, Any]]] = [
    (
        "5xx, dropped connections, latency spikes",
        {"error_rate": 0.08, "drop_rate": 0.04, "latency_ms": 5, "jitter_ms": 60},
    ),
    ("429 storm, Retry-After 1", {"storm_rate": 0.06, "storm_retry_after": 1}),
    ("429 storm, Retry-After 2", {"storm_rate": 0.06, "storm_retry_after": 2}),
    (
        "Failed activations, connection cut after commit",
        {"failed_activation_rate": 0.25, "drop_after_commit_rate": 0.15},
    ),
]


KINDS = ("errors", "drops", "storms", "dropsAfterCommit", "failedActivations", "latencySpikes")


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[PersistentBao]:
    server = PersistentBao(tmp_path / "bao")
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_apply_through_faults_and_a_vault_restart_converges(
    vault: PersistentBao, tmp_path: Path
) -> None:
    hvac.Client(url=vault.address, token=vault.root_token).sys.enable_secrets_engine(
        "kv", path="secret", options={"version": "2"}
    )
    sim = chaos_sim(seed=7)
    try:
        world = ChaosWorld(sim, vault.address, vault.root_token, "secret", tmp_path)
        world.instrument()
        contexts = nips(CONTEXTS, start=531_000_001)
        world.seed_contexts(contexts)
        manifest = world.manifest("acme", contexts)
        reruns: dict[str, int] = {}
        first = True
        latency_hits = 0
        for name, faults in PHASES:
            sim.set_faults(**faults)
            before = sum(sim.running.simulator.stats.requests.values())
            extra = [] if first else ["--now", (datetime.now(UTC) + timedelta(days=2)).isoformat()]
            result = world.apply(manifest, *extra)
            assert "Traceback" not in result.err, result
            first = False
            if faults.get("latency_ms"):
                latency_hits += sum(sim.running.simulator.stats.requests.values()) - before
            sim.set_faults(**CALM)
            reruns[name] = world.converge(manifest)
            world.check_invariants("acme", contexts)

        # Vault dies while tokens are being created, and comes back with its data.
        created_before = sum(world.created.values())
        outcome: list[Any] = []

        def rotate() -> None:
            future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
            outcome.append(world.apply(manifest, "--now", future))

        runner = threading.Thread(target=rotate)
        runner.start()
        while runner.is_alive() and sum(world.created.values()) < created_before + 5:
            runner.join(0.002)
        vault.stop()
        runner.join(120)
        assert outcome and "Traceback" not in outcome[0].err, outcome
        assert outcome[0].code == 1, outcome[0]
        vault.start()
        reruns["Vault killed mid-run, restarted"] = world.converge(manifest)
        figures = world.check_invariants("acme", contexts)
        world.assert_no_changes(manifest)

        injected = Counter(sim.stats()["injected"])
        injected["failedActivations"] = sum(
            t["status"] == "Failed" for nip in contexts for t in world.tokens(nip)
        )
        injected["latencySpikes"] = latency_hits
        record(
            "faults",
            contexts=CONTEXTS,
            tokens=CONTEXTS * 3,
            injected_by_kind=dict(injected),
            storm_retry_after_s=[1, 2],
            vault_restarts=1,
            reruns_to_converge=reruns,
            reruns_to_converge_max=max(reruns.values()),
            tokens_lost=figures["lost"],
            orphans_left_active=figures["orphans"],
            vault_versions_reused=figures["overwritten"],
        )
        # Every kind of fault really happened.
        assert all(injected[k] > 0 for k in KINDS), injected
    finally:
        sim.close()
