"""One story per planner rule: given KSeF and Vault, when we plan, then these changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ksefctl.reconcile.model import Action, Change, NoteKind, Plan, PlanOptions
from ksefctl.reconcile.planner import fingerprint, plan, token_policy_digest
from tests.reconcile.world import NIP_A, NIP_B, NOW, Spec, World, desired, policy

DAY = timedelta(days=1)
ERP = Spec("erp", rotate_every=90 * DAY)
ACME = policy("acme", {NIP_A: [ERP]})
SECRET = ACME.secret_for(NIP_A, "erp")


def plan_for(world: World, *policies: object, **options: object) -> Plan:
    want = desired(*(policies or (ACME,)))  # type: ignore[arg-type]
    return plan(want, world.observe(want), NOW, PlanOptions(**options))  # type: ignore[arg-type]


def only(p: Plan) -> Change:
    assert len(p.changes) == 1, p.changes
    return p.changes[0]


def healthy(world: World, **kw: object) -> str:
    token = world.add_token(NIP_A, owner="acme", **kw)  # type: ignore[arg-type]
    world.store(SECRET, token)
    return token.reference_number


def test_nothing_declared_exists_so_it_is_created() -> None:
    change = only(plan_for(World()))
    assert change.action is Action.CREATE
    assert (change.owner, change.context, change.token) == ("acme", NIP_A, "erp")
    assert change.permissions == {"InvoiceRead", "InvoiceWrite"}
    assert change.secret == SECRET and change.reference_number is None


def test_a_healthy_token_needs_nothing() -> None:
    world = World()
    healthy(world)
    p = plan_for(world)
    assert p.empty and not p.notes
    assert p.fingerprint == fingerprint(world.observe(desired(ACME)))
    assert p.created_at == NOW


def test_changed_permissions_replace_the_token() -> None:
    world = World()
    old = healthy(world, permissions=["InvoiceRead"])
    change = only(plan_for(world))
    assert (change.action, change.reason, change.reference_number) == (
        Action.REPLACE,
        "permissions",
        old,
    )
    assert change.permissions == {"InvoiceRead", "InvoiceWrite"}
    assert change.keep_until is None  # no overlap declared: revoke right after activation


def test_an_old_token_is_rotated() -> None:
    world = World()
    old = healthy(world, created=NOW - 90 * DAY)
    change = only(plan_for(world))
    assert (change.action, change.reason, change.reference_number) == (
        Action.REPLACE,
        "rotation due",
        old,
    )


def test_forced_rotation_replaces_a_healthy_token() -> None:
    world = World()
    healthy(world)
    change = only(plan_for(world, force_rotate=frozenset({("acme", NIP_A, "erp")})))
    assert (change.action, change.reason) == (Action.REPLACE, "forced rotation")


def test_rotation_with_overlap_keeps_the_predecessor_until_the_window_ends() -> None:
    acme = policy("acme", {NIP_A: [replace(ERP, overlap=7 * DAY)]})
    world = World()
    healthy(world, created=NOW - 100 * DAY)
    change = only(plan_for(world, acme))
    assert change.keep_until == NOW + 7 * DAY
    assert only(plan_for(world, acme, no_overlap=True)).keep_until is None


def test_a_missing_secret_replaces_the_unknowable_token_at_once() -> None:
    acme = policy("acme", {NIP_A: [replace(ERP, overlap=7 * DAY)]})
    world = World()
    lost = world.add_token(NIP_A, owner="acme")
    change = only(plan_for(world, acme))
    assert (change.action, change.reason, change.reference_number) == (
        Action.REPLACE,
        "secret missing",
        lost.reference_number,
    )
    assert change.keep_until is None


def test_a_secret_of_a_token_ksef_no_longer_has_is_recreated() -> None:
    world = World()
    world.store(SECRET, "20250101-EC-GONE")
    assert only(plan_for(world)).action is Action.CREATE


def test_a_stale_secret_with_a_live_managed_token_replaces_that_token() -> None:
    world = World()
    live = world.add_token(NIP_A, owner="acme")
    world.store(SECRET, "20250101-EC-GONE")
    change = only(plan_for(world))
    assert (change.action, change.reason) == (Action.REPLACE, "secret missing")
    assert change.reference_number == live.reference_number


def test_orphans_and_duplicates_are_revoked() -> None:
    world = World()
    duplicate = world.add_token(NIP_A, owner="acme", created=NOW - 20 * DAY)
    healthy(world, created=NOW - 10 * DAY)
    orphan = world.add_token(NIP_A, owner="acme", created=NOW - 1 * DAY)
    failed = world.add_token(NIP_A, owner="acme", status="Failed", created=NOW - 30 * DAY)
    reasons = {c.reference_number: c.reason for c in plan_for(world).changes}
    assert reasons == {
        duplicate.reference_number: "duplicate",
        orphan.reference_number: "orphan",
    }
    # A Failed token never worked and KSeF leaves it Failed: revoking it would repeat forever.
    assert failed.reference_number not in reasons


def test_a_predecessor_inside_its_overlap_is_kept_and_shown() -> None:
    acme = policy("acme", {NIP_A: [replace(ERP, overlap=7 * DAY)]})
    world = World()
    old = world.add_token(NIP_A, owner="acme", created=NOW - 95 * DAY)
    healthy(world, created=NOW - 2 * DAY)
    p = plan_for(world, acme)
    assert p.empty
    (note,) = p.notes
    assert (note.kind, note.reference_number, note.until) == (
        NoteKind.OVERLAP,
        old.reference_number,
        NOW + 5 * DAY,
    )
    later = plan(desired(acme), world.observe(desired(acme)), NOW + 5 * DAY)
    assert [(c.reason, c.reference_number) for c in later.changes] == [
        ("overlap ended", old.reference_number)
    ]
    no_overlap = plan_for(world, acme, no_overlap=True)
    assert [c.reason for c in no_overlap.changes] == ["duplicate"]


def test_a_pending_token_in_vault_is_waited_for() -> None:
    world = World()
    ref = healthy(world, status="Pending", permissions=["InvoiceRead"])
    p = plan_for(world)
    assert p.empty
    assert [(n.kind, n.reference_number) for n in p.notes] == [(NoteKind.WAITING, ref)]


def test_a_failed_activation_is_replaced() -> None:
    world = World()
    ref = healthy(world, status="Failed")
    change = only(plan_for(world))
    assert (change.action, change.reason, change.reference_number) == (
        Action.REPLACE,
        "activation failed",
        ref,
    )


def test_revoking_tokens_are_ignored() -> None:
    world = World()
    healthy(world)
    world.add_token(NIP_A, owner="acme", status="Revoking")
    assert plan_for(world).empty


def test_an_unused_token_is_revoked_with_its_secret() -> None:
    acme = policy("acme", {NIP_A: [replace(ERP, revoke_if_unused_for=60 * DAY)]})
    world = World()
    ref = healthy(world, created=NOW - 80 * DAY, last_used=NOW - 74 * DAY)
    change = only(plan_for(world, acme))
    assert (change.action, change.reason, change.reference_number) == (
        Action.REVOKE,
        "unused 74 days",
        ref,
    )
    assert change.delete_secret and change.secret == SECRET
    assert change.policy_digest == token_policy_digest(acme.contexts[0].tokens[0])


def test_a_never_used_token_counts_from_its_creation() -> None:
    acme = policy("acme", {NIP_A: [replace(ERP, revoke_if_unused_for=60 * DAY)]})
    world = World()
    healthy(world, created=NOW - 59 * DAY)
    assert plan_for(world, acme).empty
    world2 = World()
    healthy(world2, created=NOW - 61 * DAY)
    assert only(plan_for(world2, acme)).reason == "unused 61 days"


def test_a_token_revoked_for_disuse_stays_revoked_until_its_definition_changes() -> None:
    spec = replace(ERP, revoke_if_unused_for=60 * DAY)
    acme = policy("acme", {NIP_A: [spec]})
    world = World()
    world.add_token(NIP_A, owner="acme", created=NOW - 61 * DAY)
    world.store(SECRET, world.tokens[NIP_A][0])
    world.apply(plan_for(world, acme), NOW)
    assert not world.tokens[NIP_A]
    p = plan_for(world, acme)
    assert p.empty and [n.kind for n in p.notes] == [NoteKind.DORMANT]
    # unchanged again later: still dormant
    assert plan(desired(acme), world.observe(desired(acme)), NOW + 400 * DAY).empty
    # any change to the definition brings it back
    for changed in (
        replace(spec, revoke_if_unused_for=None),
        replace(spec, revoke_if_unused_for=120 * DAY),
        replace(spec, permissions=["InvoiceRead"]),
    ):
        assert only(plan_for(world, policy("acme", {NIP_A: [changed]}))).action is Action.CREATE
    # and so does an explicit rotation
    forced = frozenset({("acme", NIP_A, "erp")})
    assert only(plan_for(world, acme, force_rotate=forced)).action is Action.CREATE


def test_without_a_recorded_policy_disuse_holds_while_the_threshold_is_set() -> None:
    spec = replace(ERP, revoke_if_unused_for=60 * DAY)
    world = World()
    world.store(SECRET, None, revoked_reason="unused 61 days")
    assert plan_for(world, policy("acme", {NIP_A: [spec]})).empty
    assert only(plan_for(world)).action is Action.CREATE  # ACME has no threshold


def test_a_secret_deleted_for_another_reason_is_recreated() -> None:
    world = World()
    world.store(SECRET, None, revoked_reason="no longer declared")
    assert only(plan_for(world)).action is Action.CREATE


def test_undeclared_managed_tokens_are_revoked_with_their_secret() -> None:
    world = World()
    healthy(world)
    legacy = world.add_token(NIP_A, owner="acme", name="legacy")
    change = only(plan_for(world))
    assert (change.action, change.token, change.reason) == (
        Action.REVOKE,
        "legacy",
        "no longer declared",
    )
    assert change.reference_number == legacy.reference_number
    assert change.delete_secret and change.secret == ACME.secret_for(NIP_A, "legacy")


def test_prune_revokes_everything_of_this_owner_in_undeclared_contexts() -> None:
    world = World()
    healthy(world)
    gone = world.add_token(NIP_B, owner="acme", name="erp")
    world.add_token(NIP_B, owner="other", name="erp")
    world.add_token(NIP_B, owner=None)
    assert plan_for(world).empty
    change = only(plan_for(world, prune=True))
    assert (change.context, change.reason, change.reference_number) == (
        NIP_B,
        "pruned",
        gone.reference_number,
    )
    assert change.delete_secret and change.secret == ACME.secret_for(NIP_B, "erp")


def test_hand_made_and_foreign_tokens_are_never_in_the_plan() -> None:
    world = World()
    healthy(world)
    world.add_token(NIP_A, owner=None, created=NOW - 500 * DAY)
    world.add_token(NIP_A, owner="other", name="erp", created=NOW - 500 * DAY)
    assert plan_for(world).empty


def test_adopt_replaces_a_matching_hand_made_token() -> None:
    acme = policy("acme", {NIP_A: [replace(ERP, overlap=3 * DAY), Spec("bi", ["InvoiceRead"])]})
    world = World()
    other = world.add_token(NIP_A, owner=None, permissions=["CredentialsRead"])
    older = world.add_token(NIP_A, owner=None, created=NOW - 40 * DAY)
    world.add_token(NIP_A, owner=None, created=NOW - 5 * DAY)
    p = plan_for(world, acme, adopt=True)
    by_token = {c.token: c for c in p.changes}
    assert by_token["bi"].action is Action.CREATE
    adopt = by_token["erp"]
    assert (adopt.action, adopt.reference_number) == (Action.ADOPT, older.reference_number)
    assert adopt.keep_until == NOW + 3 * DAY and adopt.secret == SECRET
    unmanaged = {n.reference_number for n in p.notes if n.kind is NoteKind.UNMANAGED}
    assert other.reference_number in unmanaged and older.reference_number not in unmanaged
    assert all(c.action is not Action.ADOPT for c in plan_for(world, acme).changes)


def test_an_adopted_hand_made_token_is_revoked_once_the_overlap_ends() -> None:
    acme = policy("acme", {NIP_A: [replace(ERP, overlap=3 * DAY)]})
    world = World()
    handmade = world.add_token(NIP_A, owner=None, created=NOW - 40 * DAY)
    world.apply(plan_for(world, acme, adopt=True), NOW)
    kept = plan_for(world, acme)
    assert kept.empty and [n.kind for n in kept.notes] == [NoteKind.OVERLAP]
    later = plan(desired(acme), world.observe(desired(acme)), NOW + 3 * DAY)
    change = only(later)
    assert (change.action, change.reason, change.reference_number) == (
        Action.REVOKE,
        "adoption complete",
        handmade.reference_number,
    )


def test_adopt_only_when_the_declared_token_has_no_managed_token() -> None:
    world = World()
    healthy(world)
    world.add_token(NIP_A, owner=None)
    assert plan_for(world, adopt=True).empty


def test_one_hand_made_token_is_adopted_once_across_owners() -> None:
    acme = policy("acme", {NIP_A: [ERP]})
    beta = policy("beta", {NIP_A: [ERP]})
    world = World()
    world.add_token(NIP_A, owner=None)
    actions = sorted(c.action.name for c in plan_for(world, acme, beta, adopt=True).changes)
    assert actions == ["ADOPT", "CREATE"]


def test_changes_are_ordered_by_owner_context_token_and_action() -> None:
    acme = policy("acme", {NIP_B: [ERP], NIP_A: [ERP, Spec("bi")]})
    beta = policy("beta", {NIP_A: [ERP]})
    world = World()
    healthy(world, permissions=["InvoiceRead"])
    world.add_token(NIP_A, owner="acme", name="zzz")
    keys = [
        (c.owner, str(c.context), c.token, c.action.name)
        for c in plan_for(world, beta, acme).changes
    ]
    assert keys == [
        ("acme", "Nip:5265877635", "bi", "CREATE"),
        ("acme", "Nip:5265877635", "erp", "REPLACE"),
        ("acme", "Nip:5265877635", "zzz", "REVOKE"),
        ("acme", "Nip:7762811692", "erp", "CREATE"),
        ("beta", "Nip:5265877635", "erp", "CREATE"),
    ]


def test_fingerprint_follows_what_matters_and_ignores_order_and_use() -> None:
    world = World()
    healthy(world)
    world.add_token(NIP_A, owner=None)
    want = desired(ACME)
    base = fingerprint(world.observe(want))
    assert len(base) == 64
    world.tokens[NIP_A].reverse()
    assert fingerprint(world.observe(want)) == base
    world.tokens[NIP_A] = [replace(t, last_used=NOW) for t in world.tokens[NIP_A]]
    assert fingerprint(world.observe(want)) == base
    world.tokens[NIP_A][0] = replace(world.tokens[NIP_A][0], status="Revoking")
    assert fingerprint(world.observe(want)) != base


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        plan(desired(ACME), World().observe(desired(ACME)), datetime(2026, 1, 1))
    aware = plan(desired(ACME), World().observe(desired(ACME)), datetime(2026, 1, 1, tzinfo=UTC))
    assert only(aware).action is Action.CREATE
