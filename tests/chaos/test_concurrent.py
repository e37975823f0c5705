"""Two applies of one owner at once: the Vault lease lock makes one wait for the other,
or fail clearly with --lock-timeout; never two tokens for one name."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from tests.chaos.harness import ChaosWorld, Run, nips, record

pytestmark = pytest.mark.chaos


def test_two_applies_of_one_owner_never_duplicate_tokens(kill_world: ChaosWorld) -> None:
    world = kill_world
    # Nothing is killed here, so no lease needs to expire quickly; a short TTL would only
    # let a loaded machine miss a renewal and fail the holder with LockLost.
    world.lock_ttl = 15.0
    world.instrument()
    contexts = nips(3, start=541_000_001)
    world.seed_contexts(contexts)
    manifest = world.manifest("acme", contexts)
    before = sum(world.created.values())

    results: list[Run] = []
    runners = [
        threading.Thread(target=lambda: results.append(world.apply(manifest))) for _ in range(2)
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(120)
    assert [r.code for r in results] == [0, 0], results
    # One run made the 9 tokens; the other, once it had the lock, found nothing to do.
    assert sum("No changes" in r.out for r in results) == 1, results
    assert sum(world.created.values()) - before == 9
    world.check_invariants("acme", contexts)

    # A slow holder and an impatient contender: the contender gives up with one clear line.
    world.sim.set_faults(latency_ms=150)
    holder: list[Run] = []
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()  # every token due: work
    slow = threading.Thread(target=lambda: holder.append(world.apply(manifest, "--now", future)))
    slow.start()
    try:
        deadline = sum(world.requests.values()) + 3  # the holder is past the lock and in KSeF
        while sum(world.requests.values()) < deadline and slow.is_alive():
            slow.join(0.01)
        impatient = world.apply(manifest, "--lock-timeout", "0.3")
    finally:
        slow.join(120)
        world.sim.set_faults(latency_ms=0)
    assert impatient.code == 1, impatient
    assert "Traceback" not in impatient.err
    assert "lock" in impatient.err and len(impatient.err.strip().splitlines()) == 1, impatient
    assert holder and holder[0].code == 0, holder
    record("concurrent_applies", duplicates=0, impatient_error=impatient.err.strip()[:160])
