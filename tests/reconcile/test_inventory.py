"""The pure inventory behind ``ksefctl status``: ownership, Vault and flags."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema

from ksefctl.reconcile.inventory import TokenRow, inventory, inventory_json
from tests.reconcile.world import NIP_A, NIP_B, NOW, Spec, World, desired, policy

DAY = timedelta(days=1)
ACME = policy("acme", {NIP_A: [Spec("erp", rotate_every=90 * DAY)], NIP_B: [Spec("bi")]})
ERP = ACME.secret_for(NIP_A, "erp")
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "status.v1.json").read_text()
)


def rows(world: World, unused_for: timedelta | None = None) -> dict[str, TokenRow]:
    want = desired(ACME)
    inv = inventory(want, world.observe(want), NOW, unused_for)
    jsonschema.validate({**inventory_json(inv), "failures": []}, SCHEMA)
    return {r.reference_number: r for r in inv.rows}


def test_ownership_and_vault_are_told_apart() -> None:
    world = World()
    held = world.add_token(NIP_A, owner="acme")
    world.store(ERP, held)
    foreign = world.add_token(NIP_A, owner="globex", name="bi")
    handmade = world.add_token(NIP_A, owner=None)
    found = rows(world)
    assert (found[held.reference_number].ownership, found[held.reference_number].name) == (
        "managed",
        "erp",
    )
    assert found[held.reference_number].secret_in_vault is True
    assert found[foreign.reference_number].ownership == "other-owner"
    assert found[foreign.reference_number].managed_by == "globex"
    assert found[handmade.reference_number].ownership == "unmanaged"
    # Vault is consulted only for this owner's tokens.
    assert found[foreign.reference_number].secret_in_vault is None
    assert found[handmade.reference_number].secret_in_vault is None


def test_a_predecessor_kept_for_its_overlap_is_superseded_not_missing() -> None:
    world = World()
    old = world.add_token(NIP_A, owner="acme", created=NOW - 100 * DAY)
    new = world.add_token(NIP_A, owner="acme", created=NOW - DAY)
    world.store(ERP, new)
    found = rows(world)
    assert "superseded" in found[old.reference_number].flags
    assert "secret-missing" not in found[old.reference_number].flags
    # Only the token Vault holds has a rotation date (the predecessor never rotates).
    assert found[old.reference_number].rotation_due_at is None
    assert found[new.reference_number].rotation_due_at == new.created + 90 * DAY


def test_a_live_token_nobody_can_reach_is_secret_missing() -> None:
    world = World()
    lost = world.add_token(NIP_A, owner="acme")
    world.store(ERP, None)
    assert rows(world)[lost.reference_number].flags == ("secret-missing", "never-used")


def test_rotation_due_and_disuse_follow_the_clock_and_last_use() -> None:
    world = World()
    old = world.add_token(NIP_A, owner="acme", created=NOW - 91 * DAY, last_used=NOW - 40 * DAY)
    world.store(ERP, old)
    recent = world.add_token(NIP_B, owner=None, created=NOW - 91 * DAY, last_used=NOW - DAY)
    found = rows(world, unused_for=30 * DAY)
    assert found[old.reference_number].flags == ("rotation-due", "unused")
    assert found[old.reference_number].unused_days == 40
    assert found[old.reference_number].age_days == 91
    assert found[recent.reference_number].flags == ()
    assert found[recent.reference_number].unused_days == 1
    # Without a threshold, disuse is not flagged at all.
    assert rows(world)[old.reference_number].flags == ("rotation-due",)


def test_never_used_pending_failed_and_undeclared_are_flagged() -> None:
    world = World()
    pending = world.add_token(NIP_A, owner="acme", status="Pending")
    world.store(ERP, pending)
    failed = world.add_token(NIP_B, owner=None, status="Failed")
    stray = world.add_token(NIP_B, owner="acme", name="legacy")
    world.store(ACME.secret_for(NIP_B, "legacy"), stray)
    unused = world.add_token(NIP_B, owner=None)
    found = rows(world)
    assert found[pending.reference_number].flags == ("pending",)
    assert found[failed.reference_number].flags == ("failed",)
    assert found[stray.reference_number].flags == ("not-declared", "never-used")
    assert found[unused.reference_number].flags == ("never-used",)
    assert found[unused.reference_number].unused_days == 10


def test_a_hand_made_token_being_adopted_is_flagged() -> None:
    world = World()
    handmade = world.add_token(NIP_A, owner=None)
    successor = world.add_token(NIP_A, owner="acme")
    world.store(ERP, successor, adopted_from=handmade.reference_number)
    assert "adopting" in rows(world)[handmade.reference_number].flags


def test_summaries_count_per_context_and_name_absent_tokens() -> None:
    world = World()
    world.store(ERP, world.add_token(NIP_A, owner="acme"))
    world.add_token(NIP_A, owner=None)
    world.add_token(NIP_B, owner="globex", name="bi")
    want = desired(ACME)
    inv = inventory(want, world.observe(want), NOW)
    a, b = inv.contexts
    assert (a.context, a.total, a.managed, a.unmanaged, a.absent) == (NIP_A, 2, 1, 1, ())
    # globex's "bi" is not acme's "bi": acme's is still to be created.
    assert (b.context, b.other_owners, b.absent) == (NIP_B, 1, ("bi",))
    document = inventory_json(inv)
    assert document["summary"]["absent"] == 1 and document["summary"]["tokens"] == 3
    assert [r.ownership for r in inv.rows_of(a)] == ["managed", "unmanaged"]
