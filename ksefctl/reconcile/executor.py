"""Carry out a plan in one context: the only code that changes KSeF or Vault.

Ordering is the safety argument (SPEC principles 3 and 4):

1. every token-creating change first: generate (with a fresh ownership
   marker) → write the secret to Vault with check-and-set *before anything
   else* → wait until Active → record activation in metadata → revoke the
   predecessor (unless an overlap keeps it for a later run);
2. then the revocations.  A secret to delete goes first, then the token:
   killed in between, the next run still sees a managed token that no
   declared name holds and revokes it.  (The other way round, a live secret
   of a revoked token would stay behind for good.)  A revocation for disuse
   is the exception: its token goes first, since a deleted secret beside a
   live token reads as "secret missing" and would bring the token back.

Before any of it, every change must pass :mod:`ksefctl.reconcile.admission`
— the executor's own reading of the owner's policy — or nothing is done in
the context (SPEC principle 7); and before every write the owner's lock must
still be held by this run.

If the Vault write fails, the new token is revoked at once.  If ``POST
/tokens`` ends ambiguously, every token the client finds by the marker's
nonce is revoked.  A process killed between any two steps leaves a state the
next run's planner recognises (an orphan of this owner without its secret,
or a predecessor still Active) and converges from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ksefctl.errors import KsefctlError
from ksefctl.ksef import Session
from ksefctl.ksef.errors import AmbiguousTokenCreation, PermissionDenied
from ksefctl.manifest import marker
from ksefctl.manifest.model import Marker, SecretRef
from ksefctl.reconcile.admission import Scope, refusal
from ksefctl.reconcile.fanout import unexpected
from ksefctl.reconcile.model import (
    Action,
    Change,
    Note,
    NoteKind,
    ObservedSecret,
)
from ksefctl.vault import PartialWrite, VaultStore
from ksefctl.vocabulary import NOT_REVOKED, TokenStatus

log = logging.getLogger("ksefctl.executor")


@dataclass(frozen=True)
class Outcome:
    """What became of one change (or one waited-for Pending token)."""

    change: Change | None
    ok: bool
    message: str
    reference_number: str | None = None  # the token created, for creating changes


class Refused(KsefctlError):
    """A change the owner's policy does not allow; nothing was done in its context."""


def _no_lock() -> None:
    return None


@dataclass(frozen=True)
class ExecutorSettings:
    environment: str
    activation_timeout_s: float = 300.0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Raises (LockLost) once this run no longer holds the owner's lock: called before
    # every write, so a run that lost its lock stops writing at the next step.
    ensure_lock: Callable[[], None] = _no_lock


class ContextExecutor:
    def __init__(
        self,
        session: Session,
        store: VaultStore,
        scope: Scope,
        settings: ExecutorSettings,
    ) -> None:
        self.session = session
        self.store = store
        self.scope = scope
        self.observed = scope.observed
        self.settings = settings

    async def run(self, changes: Sequence[Change], notes: Sequence[Note] = ()) -> list[Outcome]:
        """Creations (and waits for Pending tokens) at once, then the revocations at once.

        A context's tokens are independent, so their create → store → wait →
        revoke-predecessor chains run concurrently: the activation waits
        overlap instead of adding up, and the session's rate limiter keeps the
        burst inside the context's /tokens limits.  Changes that touch the same
        Vault path stay in plan order, so each check-and-set and metadata merge
        sees what the previous one left.

        :class:`Refused` (nothing done) if any change is outside the owner's
        policy: a plan with one forged change is not trusted for the others.
        """
        self.admit(changes)
        creating = [c for c in changes if c.action.creates_token or c.action is Action.MOVE]
        waiting = [note for note in notes if note.kind is NoteKind.WAITING]
        created, waited = await asyncio.gather(
            self._by_path(creating, self._create_or_move),
            asyncio.gather(*(self._wait_pending(note) for note in waiting)),
        )
        # Only after every successor is stored and Active: SPEC principle 4.
        revoking = [change for change in changes if change.action is Action.REVOKE]
        revoked = await self._by_path(revoking, self._revoke)
        return [*created, *waited, *revoked]

    def admit(self, changes: Sequence[Change]) -> None:
        """:class:`Refused` unless every change is within the owner's policy (admission)."""
        for change in changes:
            why = refusal(change, self.scope)
            if why is not None:
                raise Refused(
                    f"refused {change.action.name.lower()} of {change.token!r}"
                    f"{f' ({change.reference_number})' if change.reference_number else ''}: "
                    f"{why}; nothing done in this context"
                )

    async def _by_path(
        self, changes: Sequence[Change], step: Callable[[Change], Awaitable[Outcome]]
    ) -> list[Outcome]:
        """Run ``step`` on every change, concurrently across Vault paths; outcomes in plan order."""
        groups: dict[SecretRef | str | None, list[Change]] = {}
        for change in changes:
            # A change without a secret still belongs with its token name.
            groups.setdefault(change.secret or change.token, []).append(change)
        outcomes: dict[int, Outcome] = {}

        async def in_order(group: list[Change]) -> None:
            for change in group:
                outcomes[id(change)] = await self._guard(change, step)

        await asyncio.gather(*(in_order(group) for group in groups.values()))
        return [outcomes[id(change)] for change in changes]

    async def _guard(self, change: Change, step: Callable[[Change], Awaitable[Outcome]]) -> Outcome:
        try:
            return await step(change)
        except KsefctlError as error:
            log.info("%s %s/%s failed: %s", change.action.name, change.context, change.token, error)
            return Outcome(change, False, f"{change.token}: {error}")
        except Exception as error:  # a bug: this change fails, the others go on
            log.debug("%s %s/%s", change.action.name, change.context, change.token, exc_info=True)
            return Outcome(change, False, f"{change.token}: {unexpected(error)}")

    async def _create_or_move(self, change: Change) -> Outcome:
        return await (self._move if change.action is Action.MOVE else self._create)(change)

    async def _move(self, change: Change) -> Outcome:
        if change.secret is None or change.moved_from is None or not change.reference_number:
            raise Refused(f"{change.token}: a move names no source, target or token")
        state = self.observed.secrets.get(change.token)
        self.settings.ensure_lock()
        await self.store.move_token(
            change.moved_from,
            change.secret,
            reference_number=change.reference_number,
            cas=state.version if state else 0,
        )
        return Outcome(change, True, f"{change.token}: secret moved to {change.secret}")

    async def _create(self, change: Change) -> Outcome:
        if change.secret is None:  # admission refuses it; keeps the type checker honest
            raise Refused(f"{change.token}: no secret path")
        self.settings.ensure_lock()
        if change.action is Action.REPLACE and change.reason == "forced rotation":
            # Recorded before anything happens: a run stopped halfway leaves the intent
            # (rotate this token; with or without its overlap) where the planner sees it.
            await self.store.update_metadata(
                change.secret,
                {
                    "rotationOf": change.reference_number or "",
                    "rotationNoOverlap": "true" if change.keep_until is None else "false",
                },
            )
        nonce = marker.new_nonce()
        description = marker.encode(change.description, Marker(change.owner, change.token, nonce))
        try:
            generated = await self.session.generate_token(
                sorted(change.permissions), description, find_marker=nonce
            )
        except AmbiguousTokenCreation as error:
            # The token may exist but its value is lost: it must not outlive this run.
            for reference in error.orphans:
                await self.session.revoke_token(reference)
            raise
        state = self.observed.secrets.get(change.token)
        cas = state.version if state else 0
        written = cas + 1
        try:
            self.settings.ensure_lock()
            written = await self.store.write_token(
                change.secret,
                token=generated.token,
                reference_number=generated.reference_number,
                context=str(change.context),
                permissions=sorted(change.permissions),
                environment=self.settings.environment,
                created_at=self.settings.clock(),
                owner=change.owner,
                token_name=change.token,
                cas=cas,
                extra_metadata=(
                    {"adoptedFrom": change.reference_number}
                    if change.action is Action.ADOPT and change.reference_number
                    else None
                ),
            )
        except PartialWrite as error:
            # The value is in Vault; only its bookkeeping is missing. Keep the token.
            log.warning("%s/%s: %s", change.context, change.token, error)
            written = error.version
        except KsefctlError as error:
            # Principle 3: a token whose secret cannot be stored is revoked at once.
            await self._revoke_quietly(generated.reference_number)
            raise KsefctlError(
                f"could not store the new token in Vault ({error}); "
                f"revoked it ({generated.reference_number})"
            ) from None
        reference = generated.reference_number
        del generated  # the value lives in Vault now, and only there
        info = await self.session.wait_for_status(
            reference, {TokenStatus.ACTIVE, TokenStatus.FAILED}, self.settings.activation_timeout_s
        )
        if info.status != TokenStatus.ACTIVE:
            restored = await self._restore_predecessor(change, state, written)
            return Outcome(
                change,
                False,
                f"token {reference} ended {info.status}; {restored}the next apply replaces it",
                reference,
            )
        self.settings.ensure_lock()
        await self.store.update_metadata(change.secret, _active(self.settings.clock()))
        if change.reference_number and change.keep_until is None:
            self.settings.ensure_lock()
            await self.session.revoke_token(change.reference_number)
        return Outcome(change, True, _done(change), reference)

    async def _restore_predecessor(
        self, change: Change, state: ObservedSecret | None, written: int
    ) -> str:
        """Put the still-Active predecessor back as the current secret after a Failed successor.

        Consumers read the current version; without this they would be handed
        a token that can never log in until the next run replaces it.
        """
        predecessor_active = any(
            t.reference_number == change.reference_number and t.status == TokenStatus.ACTIVE
            for t in self.observed.tokens
        )
        held = (
            predecessor_active
            and state is not None
            and state.exists
            and state.reference_number == change.reference_number
        )
        if not held or change.secret is None or state is None:
            return ""
        try:
            self.settings.ensure_lock()
            await self.store.restore_version(
                change.secret,
                state.version,
                cas=written,
                reason=f"successor {change.action.name.lower()} failed",
            )
            await self.store.update_metadata(change.secret, _active(self.settings.clock()))
        except KsefctlError as error:
            log.warning(
                "%s/%s: could not restore the previous secret: %s",
                change.context,
                change.token,
                error,
            )
            return ""
        return f"Vault holds {change.reference_number} again; "

    async def _wait_pending(self, note: Note) -> Outcome:
        try:
            info = await self.session.wait_for_status(
                note.reference_number,
                {TokenStatus.ACTIVE, TokenStatus.FAILED},
                self.settings.activation_timeout_s,
            )
        except KsefctlError as error:
            return Outcome(None, False, f"{note.token}: {error}", note.reference_number)
        ok = info.status == TokenStatus.ACTIVE
        return Outcome(None, ok, f"{note.token}: {info.status}", note.reference_number)

    async def _revoke(self, change: Change) -> Outcome:
        delete = change.delete_secret and change.secret is not None
        if change.reference_number is None:  # the token is gone already: only its secret
            if not delete:  # admission refuses it; keeps the type checker honest
                raise Refused(f"{change.token}: a revocation names no token")
            await self._delete_secret(change)
            return Outcome(change, True, "secret deleted (its token was already gone)")
        if change.policy_digest:
            await self._still_unused(change, change.reference_number)
        if delete and not change.policy_digest:
            await self._delete_secret(change)
        self.settings.ensure_lock()
        await self.session.revoke_token(change.reference_number)
        if delete and change.policy_digest:
            await self._delete_secret(change)
        return Outcome(change, True, _done(change))

    async def _still_unused(self, change: Change, reference: str) -> None:
        """A disuse decision holds at the moment of apply, not only when it was planned.

        A saved plan may be applied days after review; a token used since then
        is no longer unused, whatever the plan says.
        """
        declared = self.scope.declared_token(change.token)
        limit = declared.revoke_if_unused_for if declared is not None else None
        if limit is None:
            raise Refused(f"{change.token}: no revokeIfUnusedFor declared; not revoked for disuse")
        info = await self.session.get_token(reference)
        last = info.last_used or info.created
        if self.settings.clock() - last < limit:
            raise KsefctlError(
                f"{change.token}: token {reference} was used at {_rfc3339(last)}, after the plan "
                "was made; not revoked (run plan again)"
            )

    async def _delete_secret(self, change: Change) -> None:
        if change.secret is None:
            raise Refused(f"{change.token}: no secret named to delete")
        self.settings.ensure_lock()
        state = self.observed.secrets.get(change.token)
        await self.store.soft_delete(
            change.secret,
            reason=change.reason or "revoked",
            expected_version=state.version if state else None,
            # The planner's memory that this token was retired on purpose.
            extra_metadata=(
                {"revokedPolicy": change.policy_digest} if change.policy_digest else None
            ),
        )

    async def _revoke_quietly(self, reference: str) -> None:
        try:
            await self.session.revoke_token(reference)
        except KsefctlError as error:
            log.warning("could not revoke %s after a failed Vault write: %s", reference, error)


def _done(change: Change) -> str:
    verbs = {
        Action.CREATE: "created",
        Action.REPLACE: "replaced",
        Action.REVOKE: "revoked",
        Action.ADOPT: "adopted",
    }
    return f"{change.token}: {verbs[change.action]}"


def _active(moment: datetime) -> dict[str, str]:
    """The metadata that tells consumers the current version's token logs in."""
    return {"status": "Active", "activatedAt": _rfc3339(moment)}


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class RevokeTarget:
    reference_number: str
    token: str | None  # managed name, when known
    secret: SecretRef | None  # soft-deleted after the revocation, when ours
    secret_version: int | None = None  # the version observed, so a newer write is never deleted


async def break_glass(
    session: Session,
    store: VaultStore,
    targets: Sequence[RevokeTarget],
    reason: str,
    wait_s: float = 60.0,
) -> list[Outcome]:
    """Revoke many tokens of one context at once and report each final status.

    All revocations are sent concurrently; the session's rate limiter keeps
    them inside the context's limits, so a whole company is done without a
    single 429.  Final statuses come from re-listing the context's live tokens
    (one request per 100 tokens) rather than one poll per token, which would
    spend the 30-a-minute budget of the ``/tokens`` endpoints many times over.
    """
    started: dict[str, RevokeTarget] = {}
    failed: dict[str, Outcome] = {}

    async def one(target: RevokeTarget) -> None:
        label = target.token or target.reference_number
        try:
            await session.revoke_token(target.reference_number)
        except PermissionDenied as error:
            failed[target.reference_number] = Outcome(
                None,
                False,
                f"{label}: {error} (revoking a token someone else generated needs "
                f"CredentialsManage in {session.context})",
                target.reference_number,
            )
            return
        except KsefctlError as error:
            failed[target.reference_number] = Outcome(
                None, False, f"{label}: {error}", target.reference_number
            )
            return
        started[target.reference_number] = target
        if target.secret is not None:
            try:
                await store.soft_delete(
                    target.secret,
                    reason=f"break-glass: {reason}",
                    expected_version=target.secret_version,
                )
            except KsefctlError as error:
                # The token is revoked all the same; its dead value may stay readable.
                failed[target.reference_number] = Outcome(
                    None,
                    False,
                    f"{label}: revoked, but its Vault secret {target.secret} was not "
                    f"deleted: {error}",
                    target.reference_number,
                )

    await asyncio.gather(*(one(t) for t in targets))
    final = await _settle(session, set(started), wait_s) if started else {}
    outcomes: list[Outcome] = []
    for target in targets:
        reference = target.reference_number
        label = target.token or reference
        if reference in failed:
            outcomes.append(failed[reference])
            continue
        status = final.get(reference, TokenStatus.REVOKING)
        outcomes.append(
            Outcome(None, status == TokenStatus.REVOKED, f"{label}: {status}", reference)
        )
    return outcomes


async def _settle(session: Session, references: set[str], wait_s: float) -> dict[str, str]:
    """Each token's status once all are Revoked (or what they are at the deadline).

    KSeF lists only live tokens under these filters; a token that left the
    list after its DELETE was answered 204 has become Revoked.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    delay = 0.2
    while True:
        live = {
            t.reference_number: t.status
            for t in await session.list_tokens(statuses=NOT_REVOKED)
            if t.reference_number in references
        }
        statuses = {reference: live.get(reference, TokenStatus.REVOKED) for reference in references}
        if set(statuses.values()) == {TokenStatus.REVOKED} or loop.time() + delay > deadline:
            return statuses
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 5.0)
