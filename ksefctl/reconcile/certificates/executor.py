"""Carry out certificate changes in one context: the only certificate code with side effects.

Ordering is the safety argument:

1. revocations first — orphans, superseded certificates whose overlap is
   over, certificates no longer declared.  None of them is what Vault holds
   for a declared name (admission checks it), and revoking them frees the
   subject's quota for the enrolments below.  A secret to delete goes before
   its certificate: killed in between, the next run still finds a managed
   certificate that no declared name holds and revokes it;
2. the subject's limits (``GET /certificates/limits``): when ``canRequest``
   is false, no enrolment is tried and the context reports one line;
3. each enrolment: key pair in memory → CSR from the enrolment data → enrol
   (with a fresh ownership marker) → wait → retrieve → check-and-set write of
   ``{certificate, privateKey}`` and its bookkeeping to Vault *before
   anything else* → only then, for a renewal, revoke the predecessor
   (Superseded) unless an overlap keeps it for a later run.

A certificate whose secret cannot be stored is revoked at once.  A process
killed between enrolment and the Vault write leaves a managed certificate no
secret holds: the next run's planner revokes it as an orphan.  The private
key exists only in this process's memory and in the Vault request body; it is
never logged, printed or written anywhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import cast

from cryptography import x509

from ksefctl.errors import KsefctlError
from ksefctl.ksef import KsefError, Session
from ksefctl.ksef.certificates import CertificateType, EnrollmentData, RevocationReason
from ksefctl.ksef.csr import KeyAlgorithm, build_csr, generate_key, private_key_pem
from ksefctl.manifest.certificates import certificate_name
from ksefctl.manifest.model import DesiredContext, Policy
from ksefctl.reconcile.certificates.model import CertificateChange, ObservedCertificates
from ksefctl.reconcile.certificates.planner import SUPERSEDED, UNSPECIFIED
from ksefctl.reconcile.fanout import unexpected
from ksefctl.reconcile.kind import KindOutcome, StepSettings
from ksefctl.reconcile.model import Action
from ksefctl.vault import MANAGED_BY, VaultError, VaultStore
from ksefctl.vault.kv import rfc3339
from ksefctl.vocabulary import SecretRef

log = logging.getLogger("ksefctl.executor")

# custom_metadata a soft delete records; cleared when a new certificate is stored.
DELETION_KEYS = ("deletedReason", "deletedAt")


class CertificateNotStored(KsefctlError):
    """An issued certificate could not be written to Vault (it was revoked)."""


class _Context:
    def __init__(
        self,
        policy: Policy,
        context: DesiredContext,
        observed: ObservedCertificates,
        session: Session,
        store: VaultStore,
        settings: StepSettings,
    ) -> None:
        self.policy = policy
        self.context = context
        self.observed = observed
        self.session = session
        self.store = store
        self.settings = settings
        self.data: EnrollmentData | None = None

    async def guard(
        self, change: CertificateChange, step: Callable[[CertificateChange], Awaitable[str]]
    ) -> KindOutcome:
        try:
            return KindOutcome(change, True, await step(change))
        except KsefctlError as error:
            log.info("certificate %s/%s failed: %s", change.context, change.name, error)
            return KindOutcome(change, False, f"certificate {change.name}: {error}")
        except Exception as error:  # a bug: this change fails, the others go on
            log.debug("certificate %s/%s", change.context, change.name, exc_info=True)
            return KindOutcome(change, False, f"certificate {change.name}: {unexpected(error)}")

    # -- revocations -----------------------------------------------------------------

    async def revoke(self, change: CertificateChange) -> str:
        done: list[str] = []
        if change.delete_secret and change.secret is not None:
            self.settings.ensure_lock()
            state = self.observed.secrets.get(change.name)
            deleted = await self.store.soft_delete(
                change.secret,
                f"certificate {change.name} {change.reason}",
                expected_version=state.version if state else None,
            )
            if deleted:
                done.append(f"secret {change.secret} deleted")
        if change.serial_number is not None:
            self.settings.ensure_lock()
            reason = cast(RevocationReason, change.revocation_reason or UNSPECIFIED)
            await self.session.certificates.revoke(change.serial_number, reason)
            done.insert(0, f"revoked {change.serial_number} ({change.reason})")
        return "certificate " + change.name + ": " + ("; ".join(done) or "nothing left to do")

    # -- enrolments -----------------------------------------------------------------

    async def enrol(self, change: CertificateChange) -> str:
        if change.secret is None:  # admission refuses it; keeps the type checker honest
            raise KsefctlError("no secret path")
        certificates = self.session.certificates
        if self.data is None:
            self.data = await certificates.enrollment_data()
        self.settings.ensure_lock()
        key = generate_key(cast(KeyAlgorithm, change.key_algorithm))
        csr = build_csr(self.data, key)
        name = certificate_name(change.name, change.owner, change.context)
        reference = await certificates.enroll(
            name, cast(CertificateType, change.certificate_type), csr, valid_from=change.valid_from
        )
        status = await certificates.wait_for_enrollment(reference, self.settings.timeout_s)
        serial = status.serial_number
        assert serial is not None  # wait_for_enrollment raises otherwise
        retrieved = next(
            (c for c in await certificates.retrieve([serial]) if c.serial_number == serial), None
        )
        if retrieved is None:
            await self._revoke_unstored(serial)
            raise CertificateNotStored(
                f"KSeF issued {serial} but did not return it; it was revoked"
            )
        issued = retrieved.certificate
        state = self.observed.secrets.get(change.name)
        cas = state.version if state else 0
        created = self.settings.clock()
        data = {
            "certificate": retrieved.pem,
            "privateKey": private_key_pem(key).reveal(),
            "serialNumber": serial,
            "certificateName": name,
            "type": change.certificate_type,
            "keyAlgorithm": change.key_algorithm,
            "validFrom": rfc3339(issued.not_valid_before_utc),
            "validTo": rfc3339(issued.not_valid_after_utc),
            "context": str(change.context),
            "environment": self.settings.environment,
            "createdAt": rfc3339(created),
        }
        del key
        try:
            self.settings.ensure_lock()
            written = await self.store.client.write(
                change.secret, data, cas=cas, operation="write certificate to"
            )
        except KsefctlError as error:
            # Its key exists nowhere else: a certificate nobody can use must not stay valid.
            await self._revoke_unstored(serial)
            raise CertificateNotStored(
                f"{serial} could not be stored in Vault ({error}); it was revoked"
            ) from None
        finally:
            data.clear()
        await self._record(change.secret, written.custom_metadata, change, serial, created, issued)
        message = (
            f"certificate {change.name}: {'renewed' if change.action is Action.REPLACE else 'enrolled'} "
            f"{serial} ({change.certificate_type}, {change.key_algorithm}, valid to "
            f"{issued.not_valid_after_utc:%Y-%m-%d}), stored at {change.secret}"
        )
        predecessor = change.serial_number
        if change.action is Action.REPLACE and predecessor is not None:
            if change.keep_until is not None:
                return f"{message}; {predecessor} kept until {change.keep_until:%Y-%m-%dT%H:%MZ}"
            self.settings.ensure_lock()
            try:
                await certificates.revoke(predecessor, SUPERSEDED)
            except KsefError as error:
                raise KsefctlError(
                    f"{message}, but revoking {predecessor} failed ({error}); the next run "
                    "revokes it"
                ) from None
            return f"{message}; revoked {predecessor} (Superseded)"
        return message

    async def _record(
        self,
        ref: SecretRef,
        before: Mapping[str, str],
        change: CertificateChange,
        serial: str,
        created: datetime,
        issued: x509.Certificate,
    ) -> None:
        custom = {k: v for k, v in before.items() if k not in DELETION_KEYS}
        custom.update(
            {
                "managedBy": MANAGED_BY,
                "owner": change.owner,
                "kind": "certificate",
                "certificate": change.name,
                "context": str(change.context),
                "serialNumber": serial,
                "environment": self.settings.environment,
                "createdAt": rfc3339(created),
                "validTo": rfc3339(issued.not_valid_after_utc),
            }
        )
        try:
            await self.store.client.write_metadata(ref, custom_metadata=custom)
        except VaultError as error:
            # The certificate and key are in Vault; only the bookkeeping is missing.
            log.warning("%s: certificate %s stored, metadata not recorded: %s", ref, serial, error)

    async def _revoke_unstored(self, serial: str) -> None:
        try:
            await self.session.certificates.revoke(serial, UNSPECIFIED)
        except KsefError as error:
            log.warning("could not revoke unstored certificate %s: %s", serial, error)


async def execute(
    changes: Sequence[CertificateChange],
    policy: Policy,
    context: DesiredContext,
    observed: ObservedCertificates,
    session: Session,
    store: VaultStore,
    settings: StepSettings,
) -> list[KindOutcome]:
    run = _Context(policy, context, observed, session, store, settings)
    outcomes = [
        await run.guard(change, run.revoke) for change in changes if change.action is Action.REVOKE
    ]
    enrolments = [c for c in changes if c.action in (Action.CREATE, Action.REPLACE)]
    if not enrolments:
        return outcomes
    limits = await session.certificates.limits()
    if not limits.can_request:
        outcomes.append(
            KindOutcome(
                None,
                False,
                f"certificate quota of the subject logged into {context.context} is full "
                f"(enrolments left {limits.enrollment.remaining} of {limits.enrollment.limit}, "
                f"active certificates left {limits.certificate.remaining} of "
                f"{limits.certificate.limit}); {len(enrolments)} certificate(s) not enrolled: "
                + ", ".join(c.name for c in enrolments),
            )
        )
        return outcomes
    for change in enrolments:
        outcomes.append(await run.guard(change, run.enrol))
    return outcomes
