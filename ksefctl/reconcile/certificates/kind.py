"""The certificate kind as the engine sees it (``ksefctl.reconcile.kind.Kind``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ksefctl.ksef import Session
from ksefctl.manifest.model import DesiredContext, Policy
from ksefctl.reconcile.certificates import admission, executor, observe, planner
from ksefctl.reconcile.certificates.model import KIND, CertificateChange, ObservedCertificates
from ksefctl.reconcile.fields import as_bool, as_optional_str, as_str, as_time
from ksefctl.reconcile.kind import Kind, KindOutcome, StepSettings
from ksefctl.reconcile.model import Action, KindChange, KindNote, PlanOptions
from ksefctl.vault import VaultStore
from ksefctl.vocabulary import ContextId, SecretRef


class CertificateKind(Kind):
    name = KIND
    order = 10  # before tokens: a TokenPolicy may log in with a certificate made here

    async def observe(
        self, policy: Policy, context: DesiredContext, session: Session, store: VaultStore
    ) -> ObservedCertificates:
        return await observe.observe(policy, context, session, store)

    def fingerprint(self, observed: Any) -> Any:
        seen: ObservedCertificates = observed
        return {
            "certificates": sorted(
                [c.serial_number, c.name, c.type, c.status, c.valid_to.isoformat()]
                for c in seen.certificates
            ),
            "secrets": {
                name: [s.exists, s.version, s.serial_number, s.owner]
                for name, s in sorted(seen.secrets.items())
            },
        }

    def plan(
        self,
        policy: Policy,
        context: DesiredContext,
        observed: Any,
        now: datetime,
        options: PlanOptions,
    ) -> tuple[Sequence[KindChange], Sequence[KindNote]]:
        return planner.plan_context(
            policy.owner, context, observed, now, no_overlap=options.no_overlap
        )

    def refusal(
        self, change: KindChange, policy: Policy, context: DesiredContext, observed: Any
    ) -> str | None:
        if not isinstance(change, CertificateChange):
            return "not a certificate change"
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
        mine = [c for c in changes if isinstance(c, CertificateChange)]
        return await executor.execute(mine, policy, context, observed, session, store, settings)

    def text(self, change: KindChange) -> str:
        assert isinstance(change, CertificateChange)
        label = f"certificate {change.name}"
        if change.action in (Action.CREATE, Action.REPLACE):
            text = (
                f"{label}  ({change.certificate_type}, {change.key_algorithm})  → {change.secret}"
            )
            if change.action is Action.CREATE and change.reason:
                text = f"{label}  ({change.reason})  {text[len(label) + 2 :]}"
            if change.action is Action.REPLACE:
                text = f"{label}  ({change.reason})  {text[len(label) + 2 :]}"
                if change.serial_number:
                    kept = (
                        f"kept until {change.keep_until:%Y-%m-%dT%H:%MZ}"
                        if change.keep_until
                        else "then revoked"
                    )
                    text += f"  supersedes {change.serial_number}, {kept}"
            return text
        if change.serial_number is None:
            return f"{label}  ({change.reason})  delete {change.secret} only"
        text = f"{label}  ({change.reason})  {change.serial_number}"
        if change.delete_secret and change.secret is not None:
            text += f"  and delete {change.secret}"
        return text

    def to_json(self, change: KindChange) -> dict[str, Any]:
        assert isinstance(change, CertificateChange)
        return {
            "certificate_type": change.certificate_type or None,
            "key_algorithm": change.key_algorithm or None,
            "valid_from": _time(change.valid_from),
            "secret": str(change.secret) if change.secret else None,
            "secret_mount": change.secret.mount if change.secret else None,
            "secret_path": change.secret.path if change.secret else None,
            "serial_number": change.serial_number,
            "keep_until": _time(change.keep_until),
            "revocation_reason": change.revocation_reason or None,
            "delete_secret": change.delete_secret,
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
        mount, path = data.get("secret_mount"), data.get("secret_path")
        if (mount is None) != (path is None):
            raise ValueError("secret_mount and secret_path go together")
        return CertificateChange(
            action=action,
            owner=owner,
            context=context,
            name=name,
            reason=reason,
            certificate_type=_text(data, "certificate_type"),
            key_algorithm=_text(data, "key_algorithm"),
            valid_from=as_time(data.get("valid_from")),
            secret=SecretRef(as_str(mount), as_str(path)) if mount is not None else None,
            serial_number=as_optional_str(data.get("serial_number")),
            keep_until=as_time(data.get("keep_until")),
            revocation_reason=_text(data, "revocation_reason"),
            delete_secret=as_bool(data.get("delete_secret", False)),
        )


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _text(data: Mapping[str, Any], key: str) -> str:
    return as_optional_str(data.get(key)) or ""


CERTIFICATES = CertificateKind()
