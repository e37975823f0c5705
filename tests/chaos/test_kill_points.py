"""SIGKILL ``ksefctl apply`` at seeded moments; plain re-runs must always converge safely.

Six owners with two contexts each, one concurrent worker per owner: after a kill, the
owner's lease lock (``--lock-ttl 2``) expires while the other workers run, and the re-run
simply waits for it, as a real re-run would.  Every kill run rotates all six tokens of its owner (``--now`` two days ahead
makes them all due), so there is always work in flight to interrupt: logins, POST
/tokens, the Vault write, waiting for Active, revoking the old token.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ksefctl.manifest import marker
from tests.chaos.harness import ChaosWorld, nips, record

pytestmark = pytest.mark.chaos

OWNERS = 6
WORKERS = 6
CONTEXTS_PER_OWNER = 2
KILL_POINTS = 54


def trigger(
    world: ChaosWorld, contexts: list[str], rng: random.Random
) -> tuple[str, Callable[[], bool]]:
    """A seeded kill moment, read from the simulator's counters for these contexts only."""

    def created() -> int:
        return sum(world.created[nip] for nip in contexts)

    def requests(method: str | None = None) -> int:
        return sum(
            n
            for (verb, nip), n in list(world.requests.items())
            if nip in contexts and method in (None, verb)
        )

    kind = rng.choice(["created", "created", "revoked", "request", "time"])
    if kind == "created":
        # The instant KSeF commits a token: before ksefctl has even read the answer, so
        # usually before the Vault write.
        base, k = created(), rng.randint(1, 6)
        return kind, lambda: created() >= base + k
    if kind == "revoked":
        base, k = requests("DELETE"), rng.randint(1, 6)
        return kind, lambda: requests("DELETE") >= base + k
    if kind == "request":
        base, k = requests(), rng.randint(1, 40)
        return kind, lambda: requests() >= base + k
    started, after = time.monotonic(), rng.uniform(0.0, 1.5)
    return kind, lambda: time.monotonic() - started >= after


def in_flight_orphans(world: ChaosWorld, owner: str, contexts: list[str]) -> int:
    """Tokens of ``owner`` live in KSeF whose secret is not Vault's current version."""
    count = 0
    for nip in contexts:
        stored = set()
        for name in ("erp", "reader", "writer"):
            current, _ = world.secret_versions(nip, name)
            if current is not None:
                stored.add(current["referenceNumber"])
        for token in world.tokens(nip):
            found = marker.decode(token["description"])
            if (
                token["status"] in ("Pending", "Active")
                and found is not None
                and found.owner == owner
                and token["referenceNumber"] not in stored
            ):
                count += 1
    return count


def disturb(
    world: ChaosWorld,
    owners: dict[str, list[str]],
    manifests: dict[str, Path],
    seed: int,
    quota: int,
) -> dict[str, Any]:
    """One worker: kill runs of its owners in turn, re-running to convergence before each."""
    rng = random.Random(seed)
    kinds: Counter[str] = Counter()
    reruns: list[int] = []
    window_hits = kills = attempts = 0
    names = list(owners)
    while kills < quota:
        attempts += 1
        assert attempts < quota * 2, "too many runs finished before their kill point"
        owner = names[attempts % len(names)]
        contexts = owners[owner]
        if attempts > len(names):
            reruns.append(world.converge(manifests[owner]))
            world.check_invariants(owner, contexts)
        future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        kind, kill_when = trigger(world, contexts, rng)
        result = world.apply(manifests[owner], "--now", future, kill_when=kill_when)
        assert "Traceback" not in result.err, result
        if not result.killed:
            continue
        kills += 1
        kinds[kind] += 1
        window_hits += in_flight_orphans(world, owner, contexts) > 0
    for owner in names:
        reruns.append(world.converge(manifests[owner]))
    return {
        "kinds": kinds,
        "reruns": reruns,
        "window_hits": window_hits,
        "kills": kills,
        "finished": attempts - kills,
    }


def test_apply_killed_at_54_seeded_moments_always_converges(kill_world: ChaosWorld) -> None:
    world = kill_world
    world.instrument()
    all_nips = nips(OWNERS * CONTEXTS_PER_OWNER)
    world.seed_contexts(all_nips)
    owners = {
        f"team-{i}": all_nips[i * CONTEXTS_PER_OWNER : (i + 1) * CONTEXTS_PER_OWNER]
        for i in range(OWNERS)
    }
    manifests = {owner: world.manifest(owner, contexts) for owner, contexts in owners.items()}
    for owner in owners:
        world.converge(manifests[owner])

    names = list(owners)
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(
            pool.map(
                lambda w: disturb(
                    world,
                    {o: owners[o] for o in names[w::WORKERS]},
                    manifests,
                    seed=20240808 + w,
                    quota=KILL_POINTS // WORKERS,
                ),
                range(WORKERS),
            )
        )

    figures: Counter[str] = Counter()
    for owner, contexts in owners.items():
        figures.update(world.check_invariants(owner, contexts))
        world.assert_no_changes(manifests[owner])
    kinds: Counter[str] = sum((r["kinds"] for r in results), Counter())
    reruns = [n for r in results for n in r["reruns"]]
    window_hits = sum(r["window_hits"] for r in results)
    record(
        "kill_points",
        kill_points=sum(r["kills"] for r in results),
        runs_finished_before_their_kill_point=sum(r["finished"] for r in results),
        by_trigger=dict(kinds),
        kills_leaving_a_token_outside_vault=window_hits,
        reruns_to_converge_max=max(reruns),
        reruns_to_converge_total=sum(reruns),
        rerun_errors=dict(world.rerun_errors.most_common(5)),
        tokens_lost=figures["lost"],
        orphans_left_active=figures["orphans"],
        vault_versions_reused=figures["overwritten"],
    )
    # The dangerous window (KSeF has the token, Vault does not) was really exercised.
    assert window_hits >= 5, window_hits
