"""Carry out grant changes in one context: the only code that changes KSeF grants.

Order inside a context: grants first (CREATE), then the revoke-then-grant
pairs (REPLACE, ADOPT), then revocations — nobody loses a permission before
every new one has been given.  Each KSeF operation is waited for until it
ends; a refusal is that change's failure, naming KSeF's status code, and
the other changes go on.  Before every write the owner's lock must still be
held.  A grant whose ``expires`` passed between plan and apply is not made.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ksefctl.errors import KsefctlError
from ksefctl.ksef import Session
from ksefctl.ksef.permissions import Identifier, PersonName
from ksefctl.manifest.grants import encode
from ksefctl.manifest.model import DesiredContext, Policy
from ksefctl.reconcile.fanout import unexpected
from ksefctl.reconcile.grants.admission import declared_grant
from ksefctl.reconcile.grants.model import GrantChange, ObservedGrants
from ksefctl.reconcile.grants.planner import expired
from ksefctl.reconcile.kind import KindOutcome, StepSettings
from ksefctl.reconcile.model import Action

log = logging.getLogger("ksefctl.grants")

_STAGE = {Action.CREATE: 0, Action.REPLACE: 1, Action.ADOPT: 1, Action.REVOKE: 2}
_DONE = {
    Action.CREATE: "granted",
    Action.REPLACE: "granted anew",
    Action.ADOPT: "adopted",
    Action.REVOKE: "revoked",
}


@dataclass(frozen=True)
class PersonByFingerprint(PersonName):
    """``subjectDetails`` of a person known by certificate fingerprint who has a PESEL or NIP."""

    identifier: tuple[str, str] = ("Pesel", "")

    def to_api(self) -> dict[str, object]:
        return {
            "subjectDetailsType": "PersonByFingerprintWithIdentifier",
            "personByFpWithId": {
                "firstName": self.first_name,
                "lastName": self.last_name,
                "identifier": {"type": self.identifier[0], "value": self.identifier[1]},
            },
        }


class GrantSteps:
    def __init__(
        self,
        policy: Policy,
        context: DesiredContext,
        observed: ObservedGrants,
        session: Session,
        settings: StepSettings,
    ) -> None:
        self.policy = policy
        self.context = context
        self.observed = observed
        self.session = session
        self.settings = settings
        self._kinds = {g.id: g.kind for g in observed.grants}

    async def run(self, changes: Sequence[GrantChange]) -> list[KindOutcome]:
        outcomes: list[KindOutcome] = []
        for change in sorted(changes, key=lambda c: _STAGE[c.action]):
            try:
                await self._one(change)
            except KsefctlError as error:
                log.info("grant change %s in %s failed: %s", change.name, change.context, error)
                outcomes.append(KindOutcome(change, False, f"grant {change.name}: {error}"))
                continue
            except Exception as error:  # a bug: this change fails, the others go on
                log.debug("grant change %s", change.name, exc_info=True)
                outcomes.append(
                    KindOutcome(change, False, f"grant {change.name}: {unexpected(error)}")
                )
                continue
            what = ", ".join(change.permissions or change.revoke_permissions)
            outcomes.append(
                KindOutcome(change, True, f"grant {change.name}: {_DONE[change.action]} {what}")
            )
        return outcomes

    async def _one(self, change: GrantChange) -> None:
        if change.action is not Action.REVOKE:
            grant = declared_grant(self.context, change)
            if grant is not None and expired(grant, self.settings.clock()):
                raise KsefctlError(f"expired on {grant.expires}; not granted (run plan again)")
        for grant_id in change.revoke_ids:
            await self._revoke(grant_id)
        if change.action is not Action.REVOKE:
            await self._grant(change)

    async def _wait(self, reference: str) -> None:
        await self.session.permissions.wait(reference, deadline_s=self.settings.timeout_s)

    async def _revoke(self, grant_id: str) -> None:
        self.settings.ensure_lock()
        permissions = self.session.permissions
        if self._kinds.get(grant_id) == "authorization":
            reference = await permissions.revoke_authorization(grant_id)
        else:
            reference = await permissions.revoke(grant_id)
        await self._wait(reference)

    async def _grant(self, change: GrantChange) -> None:
        description = encode(change.description, change.owner)
        permissions = self.session.permissions
        subject = Identifier(change.subject_type, change.subject)
        if change.grant_kind == "person":
            name = (
                PersonByFingerprint(change.first_name, change.last_name, change.person_identifier)
                if change.person_identifier is not None
                else PersonName(change.first_name, change.last_name)
            )
            self.settings.ensure_lock()
            await self._wait(
                await permissions.grant_persons(subject, change.permissions, description, name)
            )
        elif change.grant_kind == "entity":
            self.settings.ensure_lock()
            reference = await permissions.grant_entities(
                change.subject,
                {p: change.can_delegate for p in change.permissions},
                description,
                change.entity_name,
            )
            await self._wait(reference)
        else:
            for permission in change.permissions:
                self.settings.ensure_lock()
                reference = await permissions.grant_authorization(
                    subject, permission, description, change.entity_name
                )
                await self._wait(reference)
