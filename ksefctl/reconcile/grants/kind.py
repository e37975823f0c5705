"""Permission grants as a :class:`~ksefctl.reconcile.kind.Kind` the engine reconciles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ksefctl.ksef import Session
from ksefctl.manifest.model import DesiredContext, Policy
from ksefctl.reconcile.fields import as_bool, as_list, as_str
from ksefctl.reconcile.grants import admission
from ksefctl.reconcile.grants.executor import GrantSteps
from ksefctl.reconcile.grants.model import GrantChange, ObservedGrants
from ksefctl.reconcile.grants.observe import observe_grants
from ksefctl.reconcile.grants.planner import plan_grants
from ksefctl.reconcile.kind import Kind, KindOutcome, StepSettings
from ksefctl.reconcile.model import Action, KindChange, KindNote, PlanOptions
from ksefctl.vault import VaultStore
from ksefctl.vocabulary import ContextId


class Grants(Kind):
    name = GrantChange.kind
    # Tokens are made with permissions their author holds: grants go first.
    order = 0

    async def observe(
        self, policy: Policy, context: DesiredContext, session: Session, store: VaultStore
    ) -> ObservedGrants:
        return await observe_grants(session)

    def fingerprint(self, observed: Any) -> Any:
        seen: ObservedGrants = observed
        return {
            "grants": [
                (
                    g.id,
                    g.kind,
                    g.subject_type,
                    g.subject,
                    g.permission,
                    g.description,
                    g.can_delegate,
                    g.state,
                )
                for g in sorted(seen.grants, key=lambda g: g.id)
            ],
            "ownCredentials": sorted(seen.own_credentials),
        }

    def plan(
        self,
        policy: Policy,
        context: DesiredContext,
        observed: Any,
        now: datetime,
        options: PlanOptions,
    ) -> tuple[Sequence[KindChange], Sequence[KindNote]]:
        return plan_grants(
            policy.owner, context.context, context.grants or (), observed, now, options
        )

    def refusal(
        self, change: KindChange, policy: Policy, context: DesiredContext, observed: Any
    ) -> str | None:
        return admission.refusal(change, policy, context, observed)

    async def execute(
        self,
        changes: Sequence[KindChange],
        policy: Policy,
        context: DesiredContext,
        observed: Any,
        session: Session,
        store: VaultStore,
        settings: StepSettings,
    ) -> list[KindOutcome]:
        mine = [c for c in changes if isinstance(c, GrantChange)]
        return await GrantSteps(policy, context, observed, session, settings).run(mine)

    def text(self, change: KindChange) -> str:
        assert isinstance(change, GrantChange)
        if change.action is Action.REVOKE:
            what = ", ".join(change.revoke_permissions)
        else:
            what = ", ".join(change.permissions)
        holder = (
            f"{change.first_name} {change.last_name}".strip() or change.entity_name
            if change.action is not Action.REVOKE
            else ""
        )
        line = f"grant {change.name}"
        if holder:
            line += f" ({holder})"
        line += f": {what}"
        if change.can_delegate and change.action is not Action.REVOKE:
            line += " (canDelegate)"
        if change.reason:
            line += f" ({change.reason})"
        if change.lockout:
            allowed = (
                "allowed by --allow-lockout"
                if change.allow_lockout
                else ("apply refuses it without --allow-lockout")
            )
            line += f" [LOCK-OUT: {change.lockout}; {allowed}]"
        return line

    def to_json(self, change: KindChange) -> dict[str, Any]:
        assert isinstance(change, GrantChange)
        return {
            "grant_kind": change.grant_kind,
            "subject_type": change.subject_type,
            "subject": change.subject,
            "permissions": list(change.permissions),
            "can_delegate": change.can_delegate,
            "description": change.description,
            "first_name": change.first_name,
            "last_name": change.last_name,
            "person_identifier": list(change.person_identifier)
            if change.person_identifier
            else None,
            "entity_name": change.entity_name,
            "revoke_ids": list(change.revoke_ids),
            "revoke_permissions": list(change.revoke_permissions),
            "lockout": change.lockout,
            "allow_lockout": change.allow_lockout,
        }

    def from_json(
        self,
        action: Action,
        owner: str,
        context: ContextId,
        name: str,
        reason: str,
        data: Mapping[str, Any],
    ) -> KindChange:
        identifier = data["person_identifier"]
        if identifier is not None:
            kind, value = (as_str(v) for v in as_list(identifier))
            person_identifier: tuple[str, str] | None = (kind, value)
        else:
            person_identifier = None
        return GrantChange(
            action=action,
            owner=owner,
            context=context,
            name=name,
            reason=reason,
            grant_kind=as_str(data["grant_kind"]),
            subject_type=as_str(data["subject_type"]),
            subject=as_str(data["subject"]),
            permissions=tuple(as_str(p) for p in as_list(data["permissions"])),
            can_delegate=as_bool(data["can_delegate"]),
            description=as_str(data["description"]),
            first_name=as_str(data["first_name"]),
            last_name=as_str(data["last_name"]),
            person_identifier=person_identifier,
            entity_name=as_str(data["entity_name"]),
            revoke_ids=tuple(as_str(i) for i in as_list(data["revoke_ids"])),
            revoke_permissions=tuple(as_str(p) for p in as_list(data["revoke_permissions"])),
            lockout=as_str(data["lockout"]),
            allow_lockout=as_bool(data["allow_lockout"]),
        )


GRANTS = Grants()
