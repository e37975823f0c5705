"""A revocation for disuse holds at the moment of apply, not only when planned.

Given a token planned for revocation as "unused 84 days", when it is used
between the plan and the apply, then neither a saved plan nor the executor
itself revokes it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ksefctl.manifest.load import load_manifests
from ksefctl.reconcile.engine import Engine, RunSettings
from ksefctl.reconcile.model import PlanOptions
from ksefctl.vault import VaultStore
from tests.e2e.conftest import NIPS, World

NIP = NIPS[0]
MANIFEST = f"""\
contexts:
  - nip: "{NIP}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
        revokeIfUnusedFor: 60d
"""
LATER = datetime.now(UTC) + timedelta(days=84)


pytestmark = pytest.mark.usefixtures("roomy_limits")


def use_it_now(world: World, token: str) -> None:
    """The integration logs in with the token on day 84 (the simulator's clock moves too)."""
    world.sim.advance_clock(84 * 86400)
    world.sim.login_with_token(token, ("Nip", NIP))


def test_a_saved_disuse_revoke_is_refused_once_the_token_was_used(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    stored = world.secret(NIP, "erp")["data"]
    saved = world.directory / "disuse.plan"
    made = world.ksefctl(
        "plan", "-f", str(manifest), "--now", LATER.isoformat(), "--out", str(saved)
    )
    assert made.code == 0 and "(unused 8" in made.out, made

    use_it_now(world, stored["token"])

    refused = world.ksefctl("apply", str(saved), "--now", LATER.isoformat())
    assert refused.code == 1 and "run plan again" in refused.err, refused
    assert [t["status"] for t in world.tokens(NIP)] == ["Active"]
    assert world.secret(NIP, "erp")["data"]["referenceNumber"] == stored["referenceNumber"]


@pytest.fixture
def applied(world: World) -> dict[str, str]:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    return dict(world.secret(NIP, "erp")["data"])


async def test_the_executor_rechecks_disuse_before_revoking(
    world: World, applied: dict[str, str]
) -> None:
    manifest, stored = world.directory / "tokens.yaml", applied
    desired = load_manifests([str(manifest)])
    world.sim.advance_clock(84 * 86400)  # KSeF's day 84 too, so the run's session is fresh
    settings = RunSettings(session_cache="off", clock=lambda: LATER)
    async with (
        VaultStore.from_environment(desired) as store,
        Engine(desired, store, settings) as engine,
    ):
        observed = await engine.observe()
        plan = engine.plan(observed, PlanOptions())
        assert [c.reason[:8] for c in plan.changes] == ["unused 8"]

        # Used between the plan and its execution.
        world.sim.login_with_token(stored["token"], ("Nip", NIP))

        report = await engine.apply(plan)
    (outcomes,) = report.outcomes.values()
    (outcome,) = outcomes
    assert not outcome.ok and "after the plan was made; not revoked" in outcome.message, outcome
    assert [t["status"] for t in world.tokens(NIP)] == ["Active"]
    assert world.secret(NIP, "erp")["data"]["referenceNumber"] == stored["referenceNumber"]
