"""The grants planner, hammered by hypothesis: pure, convergent, never touching what is not ours.

Given any declared grants and any records KSeF holds (this owner's, another
owner's, hand-made), the plan — carried out on a model of KSeF — leaves a
context whose next plan is empty; it never names another owner's record;
hand-made records go only with ``adopt`` or ``prune``; the executor's own
admission accepts every change it makes (lock-outs only with the flag);
and the order KSeF lists records in changes nothing.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from ksefctl.manifest.grants import encode
from ksefctl.manifest.model import AuthSpec, DesiredContext, DesiredGrant, Policy, SecretRef
from ksefctl.reconcile.grants.admission import refusal
from ksefctl.reconcile.grants.model import GrantChange, ObservedGrant, ObservedGrants
from ksefctl.reconcile.grants.planner import plan_grants
from ksefctl.reconcile.model import Action, PlanOptions
from ksefctl.vocabulary import ContextId

OWNER = "acme"
CONTEXT = ContextId("Nip", "5265877635")
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
PEOPLE = ("15062788702", "22271569167")
COMPANIES = ("7762811692",)
PERSON_PERMISSIONS = ("InvoiceRead", "InvoiceWrite", "CredentialsManage")
_ids = itertools.count()

grantees = st.sampled_from(
    [("person", "Pesel", p) for p in PEOPLE]
    + [("entity", "Nip", c) for c in COMPANIES]
    + [("authorization", "Nip", c) for c in COMPANIES]
)


def permissions_for(kind: str) -> st.SearchStrategy[frozenset[str]]:
    pool = {
        "person": PERSON_PERMISSIONS,
        "entity": ("InvoiceRead", "InvoiceWrite"),
        "authorization": ("SelfInvoicing", "TaxRepresentative"),
    }[kind]
    return st.frozensets(st.sampled_from(pool), min_size=1)


@st.composite
def declared(draw: st.DrawFn) -> tuple[DesiredGrant, ...]:
    found = {}
    for kind, subject_type, subject in draw(st.lists(grantees, max_size=4, unique=True)):
        found[(kind, subject)] = DesiredGrant(
            kind=kind,  # type: ignore[arg-type]
            subject_type=subject_type,
            subject=subject,
            permissions=draw(permissions_for(kind)),
            description="",
            can_delegate=kind == "entity" and draw(st.booleans()),
            first_name="Anna" if kind == "person" else "",
            last_name="Nowak" if kind == "person" else "",
            entity_name="Biuro Sp. z o.o." if kind != "person" else "",
            expires=draw(st.none() | st.sampled_from([date(2026, 2, 1), date(2026, 12, 31)])),
        )
    return tuple(found.values())


@st.composite
def records(draw: st.DrawFn) -> tuple[ObservedGrant, ...]:
    found = []
    for kind, subject_type, subject in draw(st.lists(grantees, max_size=5)):
        for permission in draw(permissions_for(kind)):
            whose = draw(st.sampled_from([OWNER, None, "other"]))
            found.append(
                ObservedGrant(
                    id=f"id-{next(_ids)}",
                    kind=kind,
                    subject_type=subject_type,
                    subject=subject,
                    permission=permission,
                    description=encode("", whose) if whose else "by hand",
                    started=NOW,
                    can_delegate=kind == "entity" and draw(st.booleans()),
                    owner=whose,
                )
            )
    return tuple(found)


def context_of(grants: tuple[DesiredGrant, ...]) -> DesiredContext:
    return DesiredContext(
        owner=OWNER,
        context=CONTEXT,
        environment="test",
        base_url="http://127.0.0.1/v2",
        auth=AuthSpec("certificate", SecretRef("secret", "admin")),
        tokens=(),
        grants=grants,
    )


POLICY = Policy(OWNER, "test", "http://127.0.0.1/v2", "secret", "{nip}/{token}", ())


def carry_out(observed: ObservedGrants, changes: list[GrantChange]) -> ObservedGrants:
    """What KSeF holds after the changes: revocations remove records, grants add marked ones
    (a duplicate of a held permission is ignored, as KSeF does)."""
    grants = list(observed.grants)
    for change in changes:
        grants = [g for g in grants if g.id not in change.revoke_ids]
        for permission in change.permissions:
            duplicate = any(
                (g.kind, g.subject, g.permission) == (change.grant_kind, change.subject, permission)
                for g in grants
            )
            if not duplicate:
                grants.append(
                    ObservedGrant(
                        id=f"id-{next(_ids)}",
                        kind=change.grant_kind,
                        subject_type=change.subject_type,
                        subject=change.subject,
                        permission=permission,
                        description=encode(change.description, OWNER),
                        started=NOW,
                        can_delegate=change.can_delegate,
                        owner=OWNER,
                    )
                )
    return ObservedGrants(tuple(grants), observed.own_credentials)


options = st.builds(
    PlanOptions, adopt=st.booleans(), prune=st.booleans(), allow_lockout=st.booleans()
)


@settings(max_examples=300, deadline=None)
@given(declared(), records(), options, st.data())
def test_plans_converge_and_touch_only_what_they_may(
    grants: tuple[DesiredGrant, ...],
    held: tuple[ObservedGrant, ...],
    opts: PlanOptions,
    data: st.DataObject,
) -> None:
    own = frozenset(data.draw(st.sets(st.sampled_from([g.id for g in held]))) if held else set())
    observed = ObservedGrants(held, own)
    changes, notes = plan_grants(OWNER, CONTEXT, grants, observed, NOW, opts)
    by_id = {g.id: g for g in held}
    context = context_of(grants)
    for change in changes:
        for grant_id in change.revoke_ids:
            record = by_id[grant_id]
            assert record.owner != "other"
            if record.owner is None:
                assert (opts.adopt and change.action is Action.ADOPT) or (
                    opts.prune and change.reason == "pruned"
                )
        why = refusal(change, POLICY, context, observed)
        if change.lockout and not opts.allow_lockout:
            assert why is not None
        else:
            assert why is None, (change, why)
    # Unmanaged notes name only records the plan leaves alone.
    touched = {i for c in changes for i in c.revoke_ids}
    for note in notes:
        assert note.text.startswith("unmanaged grant")
    assert all(by_id[i].owner != "other" for i in touched)

    after = carry_out(observed, changes)
    again, _ = plan_grants(OWNER, CONTEXT, grants, after, NOW, opts)
    assert again == []


@settings(max_examples=150, deadline=None)
@given(declared(), records(), options, st.randoms())
def test_the_order_ksef_lists_records_in_changes_nothing(
    grants: tuple[DesiredGrant, ...],
    held: tuple[ObservedGrant, ...],
    opts: PlanOptions,
    random: object,
) -> None:
    shuffled = list(held)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    first = plan_grants(OWNER, CONTEXT, grants, ObservedGrants(held), NOW, opts)
    second = plan_grants(OWNER, CONTEXT, grants, ObservedGrants(tuple(shuffled)), NOW, opts)
    assert first == second


def test_naive_now_is_refused() -> None:
    try:
        plan_grants(OWNER, CONTEXT, (), ObservedGrants(()), datetime(2026, 1, 1), PlanOptions())
    except ValueError:
        return
    raise AssertionError("a naive now was accepted")
