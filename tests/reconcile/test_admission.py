"""The executor's own rules (ksefctl.reconcile.admission), without KSeF or Vault.

Two halves: every change the planner makes, in any random world, is admitted
(so the rules never stand in the way of an honest plan); and every way of
bending an honest change outside the owner's policy is refused.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given

from ksefctl.manifest.model import ContextId, SecretRef
from ksefctl.reconcile.admission import Scope, refusal
from ksefctl.reconcile.model import Action, Change, Observed, ObservedSecret
from ksefctl.reconcile.planner import plan, token_policy_digest
from tests.reconcile.world import NIP_A, NIP_B, Spec, World, desired, policy
from tests.support.planner_scenarios import PROPERTIES, Scenario, scenarios

LOGIN = SecretRef("secret", "ksef-admin/5265877635")


def scope_for(s: Scenario, observed: Observed, change: Change) -> Scope:
    owner_policy = next(p for p in s.want.policies if p.owner == change.owner)
    declared = next((c for c in owner_policy.contexts if c.context == change.context), None)
    seen = observed.contexts[(change.owner, change.context)]
    return Scope(owner_policy, declared, seen, frozenset({LOGIN}))


@PROPERTIES
@given(scenarios())
def test_every_change_the_planner_makes_is_admitted(s: Scenario) -> None:
    observed = s.world.observe(s.want)
    for change in plan(s.want, observed, s.now, s.options).changes:
        assert refusal(change, scope_for(s, observed, change)) is None, change


# -- one hand-built context --------------------------------------------------

ACME = policy(
    "acme",
    {
        NIP_A: [
            Spec("erp", ("InvoiceRead",), revoke_if_unused_for=timedelta(days=30)),
            Spec("bi", ("InvoiceRead",), description="BI"),
        ]
    },
)
WANT = desired(ACME)


@pytest.fixture
def world() -> tuple[World, dict[str, str]]:
    w = World()
    erp = w.add_token(NIP_A, owner="acme", name="erp", permissions=("InvoiceRead",))
    old = w.add_token(NIP_A, owner="acme", name="old", permissions=("InvoiceRead",))
    handmade = w.add_token(NIP_A, owner=None, permissions=("InvoiceRead",))
    beta = w.add_token(NIP_A, owner="beta", name="erp", permissions=("InvoiceRead",))
    w.store(ACME.secret_for(NIP_A, "erp"), erp)
    w.store(ACME.secret_for(NIP_A, "old"), old)
    refs = {
        "erp": erp.reference_number,
        "old": old.reference_number,
        "handmade": handmade.reference_number,
        "beta": beta.reference_number,
    }
    return w, refs


def scope(w: World) -> Scope:
    seen = w.observe(WANT).contexts[("acme", NIP_A)]
    return Scope(ACME, ACME.contexts[0], seen, frozenset({LOGIN}))


def revoke(name: str, reference: str | None, secret: SecretRef | None = None) -> Change:
    return Change(
        Action.REVOKE,
        "acme",
        NIP_A,
        name,
        reason="no longer declared",
        reference_number=reference,
        secret=secret,
        delete_secret=secret is not None,
    )


def create(name: str, permissions: frozenset[str], description: str = "") -> Change:
    return Change(
        Action.CREATE,
        "acme",
        NIP_A,
        name,
        permissions=permissions,
        description=description,
        secret=ACME.secret_for(NIP_A, name),
    )


READ = frozenset({"InvoiceRead"})


def test_the_honest_changes_are_admitted(world: tuple[World, dict[str, str]]) -> None:
    w, refs = world
    here = scope(w)
    assert refusal(revoke("old", refs["old"], ACME.secret_for(NIP_A, "old")), here) is None
    assert refusal(create("bi", READ, "BI"), here) is None
    assert (
        refusal(
            replace(create("erp", READ), action=Action.REPLACE, reference_number=refs["erp"]),
            here,
        )
        is None
    )
    disuse = replace(
        revoke("erp", refs["erp"], ACME.secret_for(NIP_A, "erp")),
        reason="unused 40 days",
        policy_digest=token_policy_digest(ACME.contexts[0].tokens[1]),
    )
    assert ACME.contexts[0].tokens[1].name == "erp"
    assert refusal(disuse, here) is None


HOSTILE = {
    "hand-made token": (lambda r: revoke("erp", r["handmade"]), "is not managed"),
    "other owner's token": (lambda r: revoke("erp", r["beta"]), "is not managed"),
    "our token under another name": (lambda r: revoke("bi", r["old"]), "is not managed"),
    "a token not in the context": (lambda r: revoke("old", "20260101-EC-FFFF-00"), "is not in"),
    "login material": (lambda r: revoke("old", r["old"], LOGIN), "login material"),
    "another name's path": (
        lambda r: revoke("old", r["old"], ACME.secret_for(NIP_A, "erp")),
        "is not where",
    ),
    "another mount": (
        lambda r: revoke("old", r["old"], SecretRef("other", "ksef/test/acme/x/old")),
        "is not where",
    ),
    "held token of a declared name": (
        lambda r: revoke("erp", r["erp"], ACME.secret_for(NIP_A, "erp")),
        "only for disuse",
    ),
    "disuse under an old definition": (
        lambda r: replace(
            revoke("erp", r["erp"], ACME.secret_for(NIP_A, "erp")), policy_digest="0" * 64
        ),
        "only for disuse",
    ),
    "a declared secret alone": (
        lambda r: revoke("erp", None, ACME.secret_for(NIP_A, "erp")),
        "is declared",
    ),
    "a revocation of nothing": (lambda r: revoke("old", None), "names no token"),
    "undeclared token": (lambda r: create("backdoor", READ), "not declared"),
    "undeclared permissions": (
        lambda r: create("bi", frozenset({"InvoiceRead", "CredentialsManage"}), "BI"),
        "permissions",
    ),
    "another description": (lambda r: create("bi", READ, "innocent"), "description"),
    "no secret": (lambda r: replace(create("bi", READ, "BI"), secret=None), "without a secret"),
    "a create deleting a secret": (
        lambda r: replace(create("bi", READ, "BI"), delete_secret=True),
        "cannot delete",
    ),
    "a replace of someone else's token": (
        lambda r: replace(
            create("erp", READ), action=Action.REPLACE, reference_number=r["handmade"]
        ),
        "is not managed",
    ),
    "an adoption of a managed token": (
        lambda r: replace(create("erp", READ), action=Action.ADOPT, reference_number=r["beta"]),
        "hand-made token to adopt",
    ),
    "a create superseding a token": (
        lambda r: replace(create("erp", READ), reference_number=r["erp"]),
        "supersedes no token",
    ),
    "another owner": (lambda r: replace(revoke("old", r["old"]), owner="beta"), "owner"),
    "another context": (
        lambda r: replace(revoke("old", r["old"]), context=NIP_B),
        "not this context",
    ),
    "an internal id context": (
        lambda r: replace(revoke("old", r["old"]), context=ContextId("InternalId", "x")),
        "not this context",
    ),
}


@pytest.mark.parametrize("what", list(HOSTILE))
def test_a_hostile_change_is_refused(world: tuple[World, dict[str, str]], what: str) -> None:
    w, refs = world
    forge, why = HOSTILE[what]
    reason = refusal(forge(refs), scope(w))
    assert reason is not None and why in reason, reason


def test_a_pruned_context_admits_only_revocations(world: tuple[World, dict[str, str]]) -> None:
    w, refs = world
    seen = w.observe(WANT).contexts[("acme", NIP_A)]
    pruning = Scope(ACME, None, seen, frozenset({LOGIN}))
    assert refusal(revoke("old", refs["old"], ACME.secret_for(NIP_A, "old")), pruning) is None
    assert refusal(create("bi", READ, "BI"), pruning) is not None


def test_a_path_of_another_owner_or_of_no_owner_is_never_written(
    world: tuple[World, dict[str, str]],
) -> None:
    w, _ = world
    ref = ACME.secret_for(NIP_A, "bi")
    for owner, why in (("beta", "belongs to owner 'beta'"), (None, "not written by ksefctl")):
        w.secrets[ref] = replace(w.secrets.get(ref) or _blank(ref), version=3, owner=owner)
        reason = refusal(create("bi", READ, "BI"), scope(w))
        assert reason is not None and why in reason, reason
    w.secrets[ref] = replace(w.secrets[ref], owner="acme")
    assert refusal(create("bi", READ, "BI"), scope(w)) is None


def _blank(ref: SecretRef) -> ObservedSecret:
    return ObservedSecret(ref, exists=False, version=0)
