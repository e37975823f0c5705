"""The certificate planner: ``(declared, observed, now) -> (changes, notes)``, a pure function.

A certificate is *managed* when its certificateName carries the marker of
this owner and this context (``manifest.certificates``); the *held* one of a
name is the managed certificate whose serial number the current Vault
secret of that name holds.  Only Active certificates are ever revoked (KSeF
refuses anything else).  For each declared certificate:

* no held certificate → CREATE (reason "secret missing" when managed ones
  exist, "certificate gone" when the secret holds one KSeF no longer lists);
  every Active managed one of that name → REVOKE ("orphan": its key is not in
  Vault — a run killed between enrolment and the Vault write);
* held, not Active (Expired, Blocked, Revoked by hand) → REPLACE (its status)
  with nothing to revoke;
* held with another type or key algorithm than declared → REPLACE ("type",
  "key algorithm");
* held and due → REPLACE ("renewal due"): due once ``validTo - renewBefore``
  has passed, but never before half of its validity, so a renewBefore longer
  than KSeF's validity cannot renew on every run;
* a REPLACE revokes its predecessor (Superseded) once the successor is
  stored, or — with an ``overlap`` — carries ``keep_until = now + overlap``
  and a later run revokes it ("superseded") once the secret's ``createdAt +
  overlap`` has passed; until then a note says it is kept;
* other Active managed certificates of that name: older than the held one →
  predecessors as above; newer → REVOKE ("orphan").

Managed certificates of a name no longer declared → REVOKE ("no longer
declared"), the secret holding it soft-deleted first; a live secret of such
a name whose certificate is gone or dead → REVOKE of the secret alone.  A
secret at a declared path that Vault says another owner (or no owner)
wrote is never overwritten: a note says so.  Certificates ksefctl did not
make, or another owner made, are shown as notes and never touched;
certificates of this owner for other contexts (one subject logging into
several contexts) belong to those contexts' plans.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from ksefctl.manifest.model import DesiredCertificate, DesiredCertificates, DesiredContext
from ksefctl.reconcile.certificates.model import (
    KIND,
    CertificateChange,
    CertificateSecret,
    ObservedCertificate,
    ObservedCertificates,
)
from ksefctl.reconcile.model import Action, KindNote
from ksefctl.vocabulary import SecretRef

ACTIVE = "Active"
SUPERSEDED: Final = "Superseded"
UNSPECIFIED: Final = "Unspecified"


def renewal_due(certificate: ObservedCertificate, declared: DesiredCertificate) -> datetime:
    """When ``certificate`` is to be renewed under ``declared``."""
    half = certificate.valid_from + (certificate.valid_to - certificate.valid_from) / 2
    return max(certificate.valid_to - declared.renew_before, half)


def plan_context(
    owner: str,
    context: DesiredContext,
    observed: ObservedCertificates,
    now: datetime,
    *,
    no_overlap: bool = False,
) -> tuple[list[CertificateChange], list[KindNote]]:
    if now.tzinfo is None:
        raise ValueError("plan needs a timezone-aware 'now'")
    declared = context.certificates or DesiredCertificates((), "", "")
    planner = _Planner(owner, context, declared, observed, now, no_overlap)
    for item in declared.items:
        planner.declared(item)
    for name in sorted(planner.managed):
        if declared.named(name) is None:
            planner.undeclared(name)
    planner.foreign()
    changes = sorted(planner.changes, key=lambda c: (c.name, c.action.name, c.serial_number or ""))
    return changes, planner.notes


class _Planner:
    def __init__(
        self,
        owner: str,
        context: DesiredContext,
        declared: DesiredCertificates,
        observed: ObservedCertificates,
        now: datetime,
        no_overlap: bool,
    ) -> None:
        self.owner = owner
        self.context = context
        self.declared_set = declared
        self.observed = observed
        self.now = now
        self.no_overlap = no_overlap
        self.changes: list[CertificateChange] = []
        self.notes: list[KindNote] = []
        self.managed: dict[str, list[ObservedCertificate]] = {}
        for certificate in observed.certificates:
            marker = certificate.marker
            if marker and marker.owner == owner and marker.context == context.context.value:
                self.managed.setdefault(marker.name, []).append(certificate)
        self.done: set[str] = set()

    def change(self, action: Action, name: str, reason: str, **fields: object) -> None:
        self.changes.append(
            CertificateChange(
                action=action,
                owner=self.owner,
                context=self.context.context,
                name=name,
                reason=reason,
                **fields,  # type: ignore[arg-type]
            )
        )

    def note(self, name: str, text: str) -> None:
        self.notes.append(KindNote(KIND, self.owner, self.context.context, name, text))

    def secret_for(self, name: str) -> CertificateSecret | None:
        return self.observed.secrets.get(name)

    def ref(self, name: str) -> SecretRef:
        return self.declared_set.secret_for(
            self.owner, self.context.environment, self.context.context, name
        )

    def revoke(self, certificate: ObservedCertificate, reason: str, why: str) -> None:
        self.change(
            Action.REVOKE,
            certificate.marker.name if certificate.marker else certificate.name,
            reason,
            serial_number=certificate.serial_number,
            revocation_reason=why,
        )

    # -- declared names -------------------------------------------------------

    def declared(self, item: DesiredCertificate) -> None:
        name = item.name
        self.done.add(name)
        certificates = self.managed.get(name, [])
        secret = self.secret_for(name)
        if secret is not None and secret.version and secret.owner != self.owner:
            self.note(
                name,
                f"certificate {name}: {item.secret} was not written by ksefctl for owner "
                f"{self.owner}; nothing done (move it away or change spec.vault.path)",
            )
            return
        held = None
        if secret is not None and secret.exists and secret.serial_number:
            held = next((c for c in certificates if c.serial_number == secret.serial_number), None)
        enrol = {
            "certificate_type": item.type,
            "key_algorithm": item.key_algorithm,
            "valid_from": item.valid_from,
            "secret": item.secret,
        }
        live = [c for c in certificates if c.status == ACTIVE and c is not held]
        if held is None:
            if live:
                reason = "secret missing"
            elif secret is not None and secret.exists:
                reason = "certificate gone"
            else:
                reason = ""
            self.change(Action.CREATE, name, reason, **enrol)
            for orphan in live:
                self.revoke(orphan, "orphan: its private key is not in Vault", UNSPECIFIED)
            return
        assert secret is not None
        renewal = self.renewal_reason(item, held, secret)
        if renewal is not None:
            active = held.status == ACTIVE
            keep = item.overlap if active and not self.no_overlap else timedelta(0)
            self.change(
                Action.REPLACE,
                name,
                renewal,
                serial_number=held.serial_number if active else None,
                keep_until=self.now + keep if keep else None,
                **enrol,
            )
        for other in live:
            if other.requested > held.requested:
                self.revoke(other, "orphan: its private key is not in Vault", UNSPECIFIED)
                continue
            until = (secret.created or self.now) + item.overlap
            if self.now < until and not self.no_overlap:
                self.note(
                    name,
                    f"certificate {name}: keeping {other.serial_number} until "
                    f"{until:%Y-%m-%dT%H:%MZ} (overlap after renewal)",
                )
            else:
                self.revoke(other, "superseded", SUPERSEDED)

    def renewal_reason(
        self, item: DesiredCertificate, held: ObservedCertificate, secret: CertificateSecret
    ) -> str | None:
        if held.status != ACTIVE:
            return held.status.lower()
        if held.type != item.type:
            return "type"
        if secret.key_algorithm is not None and secret.key_algorithm != item.key_algorithm:
            return "key algorithm"
        if self.now >= renewal_due(held, item):
            return f"renewal due, expires {held.valid_to:%Y-%m-%d}"
        return None

    # -- names no longer declared ---------------------------------------------------

    def undeclared(self, name: str) -> None:
        if name in self.done:
            return
        self.done.add(name)
        secret = self.secret_for(name)
        ours = secret is not None and secret.exists and secret.owner == self.owner
        ref = self.ref(name)
        held_serial = secret.serial_number if ours and secret is not None else None
        deleted = False
        for certificate in self.managed.get(name, []):
            if certificate.status != ACTIVE:
                continue
            holds = held_serial == certificate.serial_number
            deleted = deleted or holds
            self.change(
                Action.REVOKE,
                name,
                "no longer declared",
                serial_number=certificate.serial_number,
                revocation_reason=UNSPECIFIED,
                secret=ref if holds else None,
                delete_secret=holds,
            )
        if ours and not deleted:
            live = self.observed.by_serial(held_serial) if held_serial else None
            if live is not None and live.status == ACTIVE:
                self.note(
                    name, f"{ref} holds {held_serial}, which ksefctl did not make; not touched"
                )
            else:
                self.change(Action.REVOKE, name, "certificate gone", secret=ref, delete_secret=True)

    # -- what is not ours -------------------------------------------------------

    def foreign(self) -> None:
        for certificate in self.observed.certificates:
            marker = certificate.marker
            if certificate.status != ACTIVE:
                continue
            if marker is not None and marker.owner == self.owner:
                continue  # ours: here, or another context's (the same subject logs in there)
            made = f"made by owner {marker.owner}" if marker else "not made by ksefctl"
            self.note(
                certificate.name,
                f"certificate {certificate.name!r} {certificate.serial_number} "
                f"({certificate.type}, valid to {certificate.valid_to:%Y-%m-%d}) {made}: "
                "not managed here, never touched",
            )
