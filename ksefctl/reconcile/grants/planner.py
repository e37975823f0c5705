"""The grants planner: ``(declared, observed, now, options) -> (changes, notes)``, pure.

KSeF keeps one record per (grantee, permission); a record is *managed* when
its description ends with this owner's marker ``[ksefctl owner=NAME grant]``.
For each declared grantee of a context whose grants are governed:

* ``expires`` has passed (the day after it began, UTC) → REVOKE ("expired")
  of its managed records, and nothing is granted;
* a declared permission held by no record → CREATE ("+ grant") of the
  missing permissions in one operation (reason "permissions changed" when
  the grantee already holds managed records);
* a managed record whose permission is no longer declared for its grantee
  → REVOKE ("permissions changed");
* an entity's managed record with the other ``canDelegate`` → REPLACE
  ("canDelegate changed"): revoke, then grant — KSeF treats a grant of a
  permission already held as a duplicate and ignores it;
* a declared permission held by a hand-made record (no marker) → a note,
  or with ``adopt`` → ADOPT: revoke the hand-made record, then grant it with
  the marker; a record of another owner → a note, never touched.

Managed records of grantees no longer declared → REVOKE ("no longer
declared").  With ``prune``, hand-made person, entity and authorization
records the manifest does not declare → REVOKE ("pruned").  Every foreign
record left alone is shown as an ``unmanaged`` note, grouped by grantee.

Lock-out (SPEC principle 8): a change that removes a record ksefctl's own
login holds CredentialsManage by, or that — with the rest of the plan —
leaves no CredentialsManage record in the context, carries ``lockout``; the
executor refuses it unless ``allow_lockout`` (``--allow-lockout``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from ksefctl.manifest.grants import key_of
from ksefctl.manifest.model import DesiredGrant
from ksefctl.reconcile.grants.model import (
    CREDENTIALS_MANAGE,
    MANAGED_KINDS,
    GrantChange,
    ObservedGrant,
    ObservedGrants,
)
from ksefctl.reconcile.model import Action, KindNote, PlanOptions
from ksefctl.vocabulary import ContextId

KIND = GrantChange.kind
ORDER = {"person": 0, "entity": 1, "authorization": 2, "indirect": 3}


def expired(grant: DesiredGrant, now: datetime) -> bool:
    return grant.expires is not None and now.date() > grant.expires


def plan_grants(
    owner: str,
    context: ContextId,
    declared: Sequence[DesiredGrant],
    observed: ObservedGrants,
    now: datetime,
    options: PlanOptions,
) -> tuple[list[GrantChange], list[KindNote]]:
    if now.tzinfo is None:
        raise ValueError("plan_grants() needs a timezone-aware 'now'")
    changes: list[GrantChange] = []
    records: dict[tuple[str, str, str], list[ObservedGrant]] = {}
    for record in observed.grants:
        records.setdefault((record.kind, record.subject_type, record.subject), []).append(record)
    handled: set[str] = set()  # record ids a change or a note of a declared grantee covers

    def base(grant: DesiredGrant, action: Action, reason: str, **fields: object) -> GrantChange:
        return GrantChange(
            action=action,
            owner=owner,
            context=context,
            name=grant.grantee,
            reason=reason,
            grant_kind=grant.kind,
            subject_type=grant.subject_type,
            subject=grant.subject,
            **fields,  # type: ignore[arg-type]
        )

    def granting(grant: DesiredGrant, permissions: Iterable[str]) -> dict[str, object]:
        return {
            "permissions": tuple(sorted(permissions)),
            "can_delegate": grant.can_delegate,
            "description": grant.description,
            "first_name": grant.first_name,
            "last_name": grant.last_name,
            "person_identifier": grant.person_identifier,
            "entity_name": grant.entity_name,
        }

    def revoking(found: Iterable[ObservedGrant]) -> dict[str, object]:
        found = sorted(found, key=lambda r: r.id)
        return {
            "revoke_ids": tuple(r.id for r in found),
            "revoke_permissions": tuple(sorted({r.permission for r in found})),
        }

    for grant in declared:
        key = key_of(grant)
        present = [
            r
            for r in records.get((key.kind, key.subject_type, key.subject), [])
            if _same_subject(r, grant)
        ]
        mine = [r for r in present if r.owner == owner]
        foreign = [r for r in present if r.owner != owner]
        handled.update(r.id for r in mine)
        if expired(grant, now):
            if mine:
                changes.append(base(grant, Action.REVOKE, "expired", **revoking(mine)))
            continue
        missing: list[str] = []
        for permission in sorted(grant.permissions):
            held = [r for r in mine if r.permission == permission]
            theirs = [r for r in foreign if r.permission == permission]
            if held:
                wrong = [r for r in held if r.can_delegate != grant.can_delegate]
                if grant.kind == "entity" and wrong:
                    changes.append(
                        base(
                            grant,
                            Action.REPLACE,
                            "canDelegate changed",
                            **granting(grant, [permission]),
                            **revoking(wrong),
                        )
                    )
                continue
            if theirs:
                handmade = [r for r in theirs if r.owner is None]
                if options.adopt and handmade and len(handmade) == len(theirs):
                    handled.update(r.id for r in handmade)
                    changes.append(
                        base(
                            grant,
                            Action.ADOPT,
                            "hand-made",
                            **granting(grant, [permission]),
                            **revoking(handmade),
                        )
                    )
                continue  # left alone; shown as an unmanaged note below
            missing.append(permission)
        stale = [r for r in mine if r.permission not in grant.permissions]
        if stale:
            changes.append(base(grant, Action.REVOKE, "permissions changed", **revoking(stale)))
        if missing:
            reason = "permissions changed" if mine else ""
            changes.append(base(grant, Action.CREATE, reason, **granting(grant, missing)))

    declared_keys = {
        (g.kind, g.subject_type, g.subject.upper(), p)
        for g in declared  # expired ones too: --prune never removes a declared permission
        for p in g.permissions
    }
    leftovers: dict[str, list[ObservedGrant]] = {}
    pruned: dict[str, list[ObservedGrant]] = {}
    foreign_left: list[ObservedGrant] = []
    for record in observed.grants:
        if record.id in handled:
            continue
        if record.owner == owner and record.kind in MANAGED_KINDS:
            leftovers.setdefault(record.grantee, []).append(record)
        elif (
            options.prune
            and record.owner is None
            and record.kind in MANAGED_KINDS
            and (record.kind, record.subject_type, record.subject.upper(), record.permission)
            not in declared_keys
        ):
            pruned.setdefault(record.grantee, []).append(record)
        elif record.owner != owner:
            foreign_left.append(record)
    for _, found in sorted(leftovers.items()):
        changes.append(_revoke(owner, context, found, "no longer declared"))
    for _, found in sorted(pruned.items()):
        changes.append(_revoke(owner, context, found, "pruned"))
    changes = _guard_lockout(changes, observed, options)
    changes.sort(key=lambda c: (c.name, c.action.name, c.revoke_ids, c.permissions))
    return changes, unmanaged_notes(owner, context, foreign_left)


def _same_subject(record: ObservedGrant, grant: DesiredGrant) -> bool:
    return record.subject.upper() == grant.subject.upper()


def _revoke(owner: str, context: ContextId, found: list[ObservedGrant], reason: str) -> GrantChange:
    first = found[0]
    found = sorted(found, key=lambda r: r.id)
    return GrantChange(
        action=Action.REVOKE,
        owner=owner,
        context=context,
        name=first.grantee,
        reason=reason,
        grant_kind=first.kind,
        subject_type=first.subject_type,
        subject=first.subject,
        revoke_ids=tuple(r.id for r in found),
        revoke_permissions=tuple(sorted({r.permission for r in found})),
    )


def lockout_of(
    change: GrantChange, revoked_by_plan: set[str], granted_cm: bool, observed: ObservedGrants
) -> str:
    """Why ``change`` could lock ksefctl out of the context; "" if it cannot."""
    ids = set(change.revoke_ids)
    if ids & observed.own_credentials:
        return "it removes the CredentialsManage ksefctl logs into this context with"
    holders = {
        g.id
        for g in observed.grants
        if g.permission == CREDENTIALS_MANAGE and g.kind == "person" and g.state == "Active"
    }
    if ids & holders and holders <= revoked_by_plan and not granted_cm:
        return "it removes the last CredentialsManage holder in this context"
    return ""


def _guard_lockout(
    changes: list[GrantChange], observed: ObservedGrants, options: PlanOptions
) -> list[GrantChange]:
    revoked = {i for c in changes for i in c.revoke_ids}
    # A grant of CredentialsManage that stands after the plan keeps a holder in place.
    granted_cm = any(
        CREDENTIALS_MANAGE in c.permissions for c in changes if c.action is Action.CREATE
    )
    guarded = []
    for change in changes:
        why = lockout_of(change, revoked, granted_cm, observed) if change.revoke_ids else ""
        if why:
            change = replace(change, lockout=why, allow_lockout=options.allow_lockout)
        guarded.append(change)
    return guarded


def unmanaged_notes(
    owner: str, context: ContextId, records: Iterable[ObservedGrant]
) -> list[KindNote]:
    by_grantee: dict[tuple[str, str], list[ObservedGrant]] = {}
    for record in records:
        whose = "hand-made" if record.owner is None else f"owner {record.owner}"
        by_grantee.setdefault((record.grantee, whose), []).append(record)
    notes = []
    for (grantee, whose), found in sorted(
        by_grantee.items(), key=lambda item: (ORDER.get(item[0][0].split()[0], 9), item[0])
    ):
        permissions = ", ".join(sorted({r.permission for r in found}))
        since = min(r.started for r in found).date().isoformat()
        holder = f" ({found[0].holder})" if found[0].holder else ""
        notes.append(
            KindNote(
                kind=KIND,
                owner=owner,
                context=context,
                name=grantee,
                text=f"unmanaged grant {grantee}{holder}: {permissions} ({whose}, since {since})",
            )
        )
    return notes
