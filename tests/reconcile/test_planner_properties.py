"""Hypothesis hammers the planner with random worlds.

Given any mix of managed, hand-made, foreign, duplicate, Pending, Failed,
Revoking and orphaned tokens, missing, stale and deleted secrets, and any
manifest: the plan is safe (never touches what is not ours), deterministic,
and applying it converges — after the overlap windows elapse a second round
leaves nothing to do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from ksefctl.reconcile.model import Action, NoteKind, Observed, Plan, PlanOptions
from ksefctl.reconcile.planner import plan
from tests.reconcile.world import shuffled
from tests.support.planner_scenarios import OVERLAPS, PROPERTIES, Scenario, scenarios


def assert_safe(p: Plan, observed: Observed, options: PlanOptions) -> None:
    """Nothing foreign touched, no token named twice, no (context, token) created twice."""
    creating = Counter((c.owner, c.context, c.token) for c in p.changes if c.action.creates_token)
    assert all(n == 1 for n in creating.values()), creating
    touched = Counter((c.context, c.reference_number) for c in p.changes if c.reference_number)
    assert all(n == 1 for n in touched.values()), touched
    for change in p.changes:
        if change.reference_number is None:
            if change.action is Action.REVOKE:
                # Only a secret with no token left to revoke (gone or Failed), of this
                # owner, of a name it no longer declares there, and only with --prune.
                seen = observed.contexts[(change.owner, change.context)]
                assert options.prune and change.delete_secret and change.reason == "token gone"
                assert change.secret == seen.secrets[change.token].secret
                assert not any(
                    t.marker
                    and t.marker.owner == change.owner
                    and t.marker.token == change.token
                    and t.status not in ("Revoking", "Revoked", "Failed")
                    for t in seen.tokens
                )
                continue
            assert change.action is Action.CREATE
            continue
        seen = observed.contexts[(change.owner, change.context)]
        token = next(t for t in seen.tokens if t.reference_number == change.reference_number)
        assert token.status != "Revoking"
        if token.marker is None:
            adopting = change.action is Action.ADOPT and options.adopt
            adopted = any(s.adopted_from == token.reference_number for s in seen.secrets.values())
            finishing = change.reason == "adoption complete" and adopted
            assert adopting or finishing, change
        else:
            assert token.marker.owner == change.owner, change
            assert token.marker.token == change.token, change


def converged(s: Scenario) -> tuple[Plan, Plan, Plan]:
    first = plan(s.want, s.world.observe(s.want), s.now, s.options)
    assert_safe(first, s.world.observe(s.want), s.options)
    s.world.apply(first, s.now)
    # After every overlap window has elapsed; forced rotation is a one-off command.
    later = s.now + max(OVERLAPS) + timedelta(seconds=1)
    again = replace(s.options, force_rotate=frozenset())
    second = plan(s.want, s.world.observe(s.want), later, again)
    assert_safe(second, s.world.observe(s.want), again)
    s.world.apply(second, later)
    third = plan(s.want, s.world.observe(s.want), later, again)
    return first, second, third


@PROPERTIES
@given(scenarios())
def test_applying_the_plan_converges_within_two_rounds(s: Scenario) -> None:
    _, _, third = converged(s)
    assert third.changes == (), third.changes
    observed = s.world.observe(s.want)
    dormant = {(n.owner, n.context, n.token) for n in third.notes if n.kind is NoteKind.DORMANT}
    for context in s.want.contexts:
        seen = observed.contexts[(context.owner, context.context)]
        for token in context.tokens:
            if (token.owner, token.context, token.name) in dormant:
                continue
            secret = seen.secrets[token.name]
            assert secret.exists, token.name
            held = [t for t in seen.tokens if t.reference_number == secret.reference_number]
            assert len(held) == 1
            assert held[0].status == "Active" and held[0].permissions == token.permissions
            assert held[0].marker is not None and held[0].marker.owner == token.owner
    # Nothing else of ours is left but predecessors still inside their overlap window.
    kept = {(n.context, n.reference_number) for n in third.notes if n.kind is NoteKind.OVERLAP}
    for (owner, context_id), seen in observed.contexts.items():
        declared = {
            t.name: t
            for c in s.want.contexts
            if (c.owner, c.context) == (owner, context_id)
            for t in c.tokens
        }
        for t in seen.tokens:
            # Failed tokens never worked and cannot be revoked: they are left alone.
            if t.marker is None or t.marker.owner != owner or t.status in ("Revoking", "Failed"):
                continue
            if (context_id, t.reference_number) in kept:
                continue
            if not any((c.owner, c.context) == (owner, context_id) for c in s.want.contexts):
                assert not s.options.prune, t  # --prune leaves nothing in undeclared contexts
                continue
            assert t.marker.token in declared, t
            secret = seen.secrets[t.marker.token]
            assert secret.exists and secret.reference_number == t.reference_number, t
        if s.options.prune:
            # ... not even a secret of a name it no longer declares there: revoked or gone.
            live = {name for name, secret in seen.secrets.items() if secret.exists}
            assert live <= set(declared), (live, declared)


@PROPERTIES
@given(scenarios())
def test_foreign_tokens_are_never_changed(s: Scenario) -> None:
    foreign = {
        (context, t.reference_number)
        for context, tokens in s.world.tokens.items()
        for t in tokens
        if t.marker is not None and t.marker.owner == "other" and t.status != "Revoking"
    }
    converged(s)
    left = {(c, t.reference_number) for c, tokens in s.world.tokens.items() for t in tokens}
    assert foreign <= left


@PROPERTIES
@given(scenarios(), st.integers(0, 2**32))
def test_plan_is_deterministic_and_ignores_observation_order(s: Scenario, seed: int) -> None:
    observed = s.world.observe(s.want)
    expected = plan(s.want, observed, s.now, s.options)
    assert plan(s.want, observed, s.now, s.options) == expected
    reordered = plan(s.want, shuffled(observed, seed), s.now, s.options)
    assert reordered == expected
    assert reordered.notes == expected.notes


@PROPERTIES
@given(scenarios())
def test_every_declared_token_is_accounted_for(s: Scenario) -> None:
    """Each declared token is created, replaced, waited for, dormant, revoked for disuse —
    or already held Active with its permissions."""
    observed = s.world.observe(s.want)
    p = plan(s.want, observed, s.now, s.options)
    for context in s.want.contexts:
        seen = observed.contexts[(context.owner, context.context)]
        for token in context.tokens:
            key = (token.owner, token.context, token.name)
            changes = [c for c in p.changes if (c.owner, c.context, c.token) == key]
            notes = {n.kind for n in p.notes if (n.owner, n.context, n.token) == key}
            if any(c.action.creates_token or c.reason.startswith("unused") for c in changes):
                continue
            if notes & {NoteKind.WAITING, NoteKind.DORMANT}:
                continue
            secret = seen.secrets[token.name]
            held = [t for t in seen.tokens if t.reference_number == secret.reference_number]
            assert secret.exists and len(held) == 1, key
            assert held[0].status == "Active" and held[0].permissions == token.permissions
