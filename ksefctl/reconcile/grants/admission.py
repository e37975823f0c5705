"""What the grants executor may do in one context, whatever the plan in its hands says.

The executor's own reading of the owner's policy (SPEC principle 7), pure:

* a change belongs to this owner and context;
* a grant (CREATE, and the grant half of REPLACE and ADOPT) gives a grantee
  the context declares only permissions declared for it, with the declared
  ``canDelegate``, description and names;
* a record is revoked only if it exists here, belongs to the change's
  grantee, and carries this owner's marker — or, hand-made, is taken over by
  an ADOPT of a declared permission or pruned while undeclared; another
  owner's record never;
* a change that removes the CredentialsManage ksefctl logs in with is
  refused unless it says ``allow_lockout``, and so is one the planner marked
  as a lock-out (the last holder) without it.
"""

from __future__ import annotations

from ksefctl.manifest.model import DesiredContext, DesiredGrant, Policy
from ksefctl.reconcile.grants.model import GrantChange, ObservedGrants
from ksefctl.reconcile.model import Action, KindChange


def declared_grant(context: DesiredContext, change: GrantChange) -> DesiredGrant | None:
    return next(
        (
            g
            for g in context.grants or ()
            if (g.kind, g.subject_type, g.subject.upper())
            == (change.grant_kind, change.subject_type, change.subject.upper())
        ),
        None,
    )


def refusal(
    change: KindChange, policy: Policy, context: DesiredContext, observed: ObservedGrants
) -> str | None:
    if not isinstance(change, GrantChange):
        return f"not a grant change ({type(change).__name__})"
    if change.owner != policy.owner or context.owner != policy.owner:
        return f"owner {change.owner!r} does not own this run's context of {policy.owner!r}"
    if change.context != context.context:
        return f"the change names {change.context}, not this context"
    if context.grants is None:
        return f"{context.context} declares no grants"
    grant = declared_grant(context, change)
    granting = change.action in (Action.CREATE, Action.REPLACE, Action.ADOPT)
    if granting:
        problem = _grant_problem(change, grant)
        if problem:
            return problem
    elif change.permissions:
        return "a revocation grants nothing"
    if change.action is not Action.CREATE:
        problem = _revocation_problem(change, grant, policy.owner, observed)
        if problem:
            return problem
    elif change.revoke_ids:
        return "a grant revokes nothing"
    if change.revoke_ids and not change.allow_lockout:
        if set(change.revoke_ids) & observed.own_credentials:
            return (
                "it removes the CredentialsManage ksefctl logs into this context with; "
                "pass --allow-lockout to do it anyway"
            )
        if change.lockout:
            return f"{change.lockout}; pass --allow-lockout to do it anyway"
    return None


def _grant_problem(change: GrantChange, grant: DesiredGrant | None) -> str | None:
    if grant is None:
        return f"{change.name} is not declared in {change.context}"
    if not change.permissions or not set(change.permissions) <= grant.permissions:
        return f"permissions for {change.name} differ from the manifest's"
    expected = (
        grant.can_delegate,
        grant.description,
        grant.first_name,
        grant.last_name,
        grant.person_identifier,
        grant.entity_name,
    )
    actual = (
        change.can_delegate,
        change.description,
        change.first_name,
        change.last_name,
        change.person_identifier,
        change.entity_name,
    )
    if actual != expected:
        return f"the grant to {change.name} differs from the manifest's"
    return None


def _revocation_problem(
    change: GrantChange, grant: DesiredGrant | None, owner: str, observed: ObservedGrants
) -> str | None:
    if not change.revoke_ids:
        return "the change names no grant to revoke"
    by_id = {g.id: g for g in observed.grants}
    for grant_id in change.revoke_ids:
        record = by_id.get(grant_id)
        if record is None:
            return f"grant {grant_id} is not in {change.context}"
        if (record.kind, record.subject_type, record.subject) != (
            change.grant_kind,
            change.subject_type,
            change.subject,
        ):
            return f"grant {grant_id} is not {change.name}'s"
        if record.owner == owner:
            continue
        if record.owner is not None:
            return f"grant {grant_id} belongs to owner {record.owner!r}"
        declared = grant is not None and record.permission in grant.permissions
        adopting = change.action is Action.ADOPT and declared
        pruning = change.action is Action.REVOKE and change.reason == "pruned" and not declared
        if not (adopting or pruning):
            return f"grant {grant_id} was not made by ksefctl for owner {owner!r}"
    return None
