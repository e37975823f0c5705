"""The planner: ``(desired, observed, now) -> Plan``, a pure function.

No I/O, no clock, no randomness: the same inputs give the same plan, in the
same order (owner, context, token name, action, reference number), however
KSeF listed the tokens or Vault ordered the secrets.

The rules, for each declared token of each owner's context (only tokens whose
ownership marker names this owner are *managed*; Revoking ones are ignored, as
they are already going; the *held* token is the managed one whose reference
number the current Vault secret holds):

* no held token and no managed token of that name → CREATE (or ADOPT, below);
* no held token but managed tokens of that name → REPLACE ("secret missing")
  of the newest one, revoking it right after its successor is Active (its
  value is unknowable, so no overlap); any others → REVOKE ("orphan");
* held Pending → Note WAITING, nothing else in that name changes until it is
  Active; held Failed → REPLACE ("activation failed");
* held Active, unused (``last_used`` or else ``created``) for at least
  ``revoke_if_unused_for`` → REVOKE ("unused N days") with the secret deleted;
* held Active with other permissions / forced / older than ``rotate_every``
  → REPLACE ("permissions" / "forced rotation" / "rotation due");
* other managed tokens of that name: predecessors (Active and not newer than
  the held token) inside the overlap window ``held.created + overlap > now``
  → Note OVERLAP; outside it → REVOKE ("overlap ended", or "duplicate" when
  the token has no overlap); newer or not Active → REVOKE ("orphan");
* managed tokens whose name is no longer declared → REVOKE ("no longer
  declared") with their secret deleted; with ``prune``, every managed token
  in an observed context the owner no longer declares → REVOKE ("pruned"),
  and, with ``prune``, every live secret of an undeclared name (in any observed
  context) with no token left to revoke (gone, or Failed) → REVOKE ("token
  gone") with no reference number: only the secret is deleted.

Forced rotation: ``options.force_rotate`` (``ksefctl rotate``), or a rotation
that one recorded in Vault (``rotationOf`` = the held token) and an interrupted
run did not finish; with ``rotationNoOverlap`` the rotated token gets no
overlap, and once it is a predecessor it is revoked ("forced rotation without
overlap") instead of being kept for the token's overlap.

Overlap: a REPLACE for permissions, rotation or force carries
``keep_until = now + overlap`` when the token has an overlap (and
``no_overlap`` is off).  The executor then leaves the predecessor alone; a
later run revokes it once the window has elapsed.  ``keep_until = None``
means "revoke the predecessor right after the new token is Active".

Disuse: a token revoked for disuse stays revoked (Note DORMANT, no CREATE)
while its soft-deleted secret records ``deletedReason: unused …`` and a
``revokedPolicy`` equal to :func:`token_policy_digest` of its current
definition.  Changing anything in the definition (permissions, description,
rotateEvery, overlap, revokeIfUnusedFor, path) or forcing a rotation creates
it again.  Without ``revokedPolicy`` (an older executor) it stays revoked while
``revokeIfUnusedFor`` is set.  A secret with a current version is never
dormant: whatever wrote it made the token live again.

Moves: a declared token whose path was never written, but whose secret is at
a ``spec.vault.movedFrom`` path of this owner, holding a live managed token of
that name → MOVE ("path changed"): the value is written at the new path and
the old one soft-deleted; no token changes.

Adoption (``adopt``): a declared token with no managed token at all takes the
oldest Active hand-made token (no marker) with exactly its permissions (or,
when ``adopt_match`` maps its name, whose description contains that text) →
ADOPT, at most one per hand-made token per context.  The executor records the
hand-made token as the new secret's ``adoptedFrom``; once the new token is
Active and the overlap over, a later run revokes the hand-made one ("adoption
complete") even without ``adopt``, the user having consented already.
Tokens of other owners are never touched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ksefctl.manifest.model import ContextId, Desired, DesiredToken, Policy, SecretRef
from ksefctl.reconcile.model import (
    ZERO,
    Action,
    Change,
    Note,
    NoteKind,
    Observed,
    ObservedContext,
    ObservedSecret,
    ObservedToken,
    Plan,
    PlanOptions,
)
from ksefctl.vocabulary import TokenStatus

UNUSED = "unused"
ACTION_ORDER = {
    Action.MOVE: 0,
    Action.CREATE: 1,
    Action.ADOPT: 2,
    Action.REPLACE: 3,
    Action.REVOKE: 4,
}
NOTE_ORDER = {kind: index for index, kind in enumerate(NoteKind)}


def plan(
    desired: Desired,
    observed: Observed,
    now: datetime,
    options: PlanOptions = PlanOptions(),  # noqa: B008 - frozen, so sharing the default is safe
) -> Plan:
    """What must change so that KSeF and Vault match ``desired``."""
    if now.tzinfo is None:
        raise ValueError("plan() needs a timezone-aware 'now'")
    builder = _Builder(now, options)
    for policy in desired.policies:
        for context in policy.contexts:
            if not context.token_policy:
                continue  # declared by other kinds only: no token of it is planned
            seen = observed.contexts.get((policy.owner, context.context))
            if seen is None:
                seen = ObservedContext(policy.owner, context.context, (), {})
            builder.context(policy, context.tokens, seen)
        if options.prune:
            declared = {c.context for c in policy.contexts}
            for (owner, context_id), seen in observed.contexts.items():
                if owner == policy.owner and context_id not in declared:
                    builder.prune(policy, seen)
    return builder.build(fingerprint(observed))


def fingerprint(observed: Observed) -> str:
    """A SHA-256 over what was observed, to refuse a saved plan once the world moved.

    ``last_used`` and ``created`` are left out on purpose: a token being used
    must not make every saved plan stale.
    """
    contexts = []
    for (owner, context), seen in observed.contexts.items():
        tokens = sorted(
            (
                {
                    "referenceNumber": t.reference_number,
                    "status": t.status,
                    "permissions": sorted(t.permissions),
                    "description": t.description,
                }
                for t in seen.tokens
            ),
            key=lambda t: json.dumps(t, sort_keys=True),
        )
        secrets = [
            {
                "name": name,
                "secret": str(s.secret),
                "exists": s.exists,
                "version": s.version,
                "referenceNumber": s.reference_number,
                "revokedReason": s.revoked_reason,
                "revokedPolicy": s.revoked_policy,
                "adoptedFrom": s.adopted_from,
                "rotationOf": s.rotation_of,
                "rotationNoOverlap": s.rotation_no_overlap,
                "owner": s.owner,
            }
            for name, s in sorted(seen.secrets.items())
        ]
        moved = [
            {"name": name, "secret": str(s.secret), "referenceNumber": s.reference_number}
            for name, s in sorted(seen.moved.items())
        ]
        entry: dict[str, object] = {
            "owner": owner,
            "context": str(context),
            "tokens": tokens,
            "secrets": secrets,
        }
        if moved:  # only then, so plans saved before moves existed keep their fingerprint
            entry["moved"] = moved
        contexts.append(entry)
    contexts.sort(key=lambda c: (str(c["owner"]), str(c["context"])))
    canonical = json.dumps(contexts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def token_policy_digest(token: DesiredToken) -> str:
    """A digest of one declared token's definition (see "Disuse" above)."""

    def seconds(value: timedelta | None) -> float | None:
        return None if value is None else value.total_seconds()

    definition = {
        "permissions": sorted(token.permissions),
        "description": token.description,
        "secret": str(token.secret),
        "rotateEvery": seconds(token.rotate_every),
        "overlap": seconds(token.overlap),
        "revokeIfUnusedFor": seconds(token.revoke_if_unused_for),
    }
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _by_age(tokens: Iterable[ObservedToken]) -> list[ObservedToken]:
    return sorted(tokens, key=lambda t: (t.created, t.reference_number))


def _days(span: timedelta) -> str:
    days = span.days
    return f"{days} day" if days == 1 else f"{days} days"


@dataclass
class _Builder:
    now: datetime
    options: PlanOptions
    changes: list[Change] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    # Hand-made tokens adopted in this plan, across owners: one adoption each.
    adopted: set[tuple[ContextId, str]] = field(default_factory=set)

    def build(self, digest: str) -> Plan:
        changes = sorted(
            self.changes,
            key=lambda c: (
                c.owner,
                c.context,
                c.token,
                ACTION_ORDER[c.action],
                c.reference_number or "",
            ),
        )
        notes = sorted(
            self.notes,
            key=lambda n: (n.owner, n.context, n.token, NOTE_ORDER[n.kind], n.reference_number),
        )
        return Plan(tuple(changes), tuple(notes), fingerprint=digest, created_at=self.now)

    # -- one context ----------------------------------------------------------
    def context(
        self, policy: Policy, tokens: Iterable[DesiredToken], seen: ObservedContext
    ) -> None:
        managed = self._managed(policy.owner, seen)
        declared = set()
        for token in tokens:
            declared.add(token.name)
            self.token(token, managed.get(token.name, []), seen)
        for name, stale in sorted(managed.items()):
            if name not in declared:
                secret = policy.secret_for(seen.context, name)
                for old in _revocable(stale):
                    self._revoke(seen, name, old, "no longer declared", secret=secret)
        if self.options.prune:
            self._secrets_without_tokens(seen, managed, declared)
        if self.options.adopt:
            for t in _by_age(seen.tokens):
                taken = (seen.context, t.reference_number) in self.adopted
                if t.marker is None and t.status != TokenStatus.REVOKING and not taken:
                    self._note(NoteKind.UNMANAGED, seen, "", t.reference_number)

    def prune(self, policy: Policy, seen: ObservedContext) -> None:
        managed = self._managed(policy.owner, seen)
        for name, stale in sorted(managed.items()):
            secret = policy.secret_for(seen.context, name)
            for old in _revocable(stale):
                self._revoke(seen, name, old, "pruned", secret=secret)
        self._secrets_without_tokens(seen, managed, set())

    def _secrets_without_tokens(
        self, seen: ObservedContext, managed: dict[str, list[ObservedToken]], declared: set[str]
    ) -> None:
        # A live secret of an undeclared name with no token left to revoke (revoked by
        # hand, a run stopped between revoking and deleting, or a Failed token that never
        # worked): the secret must go, or consumers keep a dead token and, in a vanished
        # context, every --prune logs in again.
        for name, held in sorted(seen.secrets.items()):
            if name not in declared and held.exists and not _revocable(managed.get(name, [])):
                self._revoke(seen, name, None, "token gone", secret=held.secret)

    @staticmethod
    def _managed(owner: str, seen: ObservedContext) -> dict[str, list[ObservedToken]]:
        managed: dict[str, list[ObservedToken]] = {}
        for t in seen.tokens:
            live = t.status not in (TokenStatus.REVOKING, TokenStatus.REVOKED)
            if t.marker is not None and t.marker.owner == owner and live:
                managed.setdefault(t.marker.token, []).append(t)
        return {name: _by_age(group) for name, group in managed.items()}

    # -- one declared token ---------------------------------------------------
    def token(self, token: DesiredToken, mine: list[ObservedToken], seen: ObservedContext) -> None:
        secret = seen.secrets.get(token.name)
        held = None
        if secret is not None and secret.exists:
            held = next((t for t in mine if t.reference_number == secret.reference_number), None)
        # KSeF cannot revoke a Failed token (it stays Failed) and it never works: only the
        # held one matters (it gets replaced); revoking the others would repeat every run.
        mine = [t for t in mine if t.status != TokenStatus.FAILED or t is held]
        forced = (token.owner, token.context, token.name) in self.options.force_rotate
        # A forced rotation recorded in Vault and not finished (a run interrupted).
        pending_rotation = secret.rotation_of if secret is not None else None
        if held is None:
            self._unheld(token, mine, secret, seen, forced)
            return
        if held.reference_number == pending_rotation:
            forced = True
        no_overlap = secret is not None and secret.rotation_no_overlap and bool(pending_rotation)
        others = [t for t in mine if t is not held]
        if held.status == TokenStatus.PENDING:
            self._note(NoteKind.WAITING, seen, token.name, held.reference_number)
            return
        if held.status == TokenStatus.FAILED:
            self._replace(token, held, "activation failed", keep=False)
            for t in others:
                # Active predecessors may still serve consumers: the next run decides.
                if t.status != TokenStatus.ACTIVE:
                    self._revoke(seen, token.name, t, "orphan")
            return
        unused = self.now - (held.last_used or held.created)
        limit = token.revoke_if_unused_for
        if limit is not None and unused >= limit and not forced:
            self._revoke(
                seen,
                token.name,
                held,
                f"{UNUSED} {_days(unused)}",
                secret=token.secret,
                policy_digest=token_policy_digest(token),
            )
            for t in others:
                self._revoke(seen, token.name, t, "orphan")
            return
        reason = self._replace_reason(token, held, forced)
        if reason:
            keep = not (no_overlap and held.reference_number == pending_rotation)
            self._replace(token, held, reason, keep=keep)
        overlap = self._overlap(token)
        window_end = held.created + overlap
        in_window = overlap > ZERO and window_end > self.now
        for t in others:
            predecessor = t.status == TokenStatus.ACTIVE and t.created <= held.created
            if no_overlap and t.reference_number == pending_rotation:
                self._revoke(seen, token.name, t, "forced rotation without overlap")
            elif predecessor and in_window:
                self._note(NoteKind.OVERLAP, seen, token.name, t.reference_number, window_end)
            elif predecessor:
                why = "overlap ended" if overlap > ZERO else "duplicate"
                self._revoke(seen, token.name, t, why)
            else:
                self._revoke(seen, token.name, t, "orphan")
        self._finish_adoption(token, secret, seen, in_window, window_end)

    def _unheld(
        self,
        token: DesiredToken,
        mine: list[ObservedToken],
        secret: ObservedSecret | None,
        seen: ObservedContext,
        forced: bool,
    ) -> None:
        moved = seen.moved.get(token.name)
        live = [t for t in mine if t.status in (TokenStatus.ACTIVE, TokenStatus.PENDING)]
        if moved is not None and any(t.reference_number == moved.reference_number for t in live):
            # spec.vault.path changed: the token stays, its secret moves (the next run
            # judges the token at its new path, as always).
            self.changes.append(
                Change(
                    action=Action.MOVE,
                    owner=token.owner,
                    context=token.context,
                    token=token.name,
                    reason="path changed",
                    reference_number=moved.reference_number,
                    secret=token.secret,
                    moved_from=moved.secret,
                )
            )
            return
        if not mine:
            if not forced and _dormant(token, secret):
                reference = secret.reference_number if secret else None
                self._note(NoteKind.DORMANT, seen, token.name, reference or "")
                return
            handmade = self._adoptable(token, seen) if self.options.adopt else None
            if handmade is not None:
                self.adopted.add((seen.context, handmade.reference_number))
                self.changes.append(
                    self._creating(Action.ADOPT, token, "hand-made", handmade, keep=True)
                )
            else:
                self.changes.append(self._creating(Action.CREATE, token, "", None, keep=False))
            return
        # Vault does not hold the value of any of them: nobody can be using them through
        # Vault, so the newest is replaced at once and the rest are revoked now.
        *orphans, newest = mine
        self._replace(token, newest, "secret missing", keep=False)
        for t in orphans:
            self._revoke(seen, token.name, t, "orphan")

    def _replace_reason(self, token: DesiredToken, held: ObservedToken, forced: bool) -> str:
        if held.permissions != token.permissions:
            return "permissions"
        if forced:
            return "forced rotation"
        if token.rotate_every is not None and held.created + token.rotate_every <= self.now:
            return "rotation due"
        return ""

    def _adoptable(self, token: DesiredToken, seen: ObservedContext) -> ObservedToken | None:
        # A hand-made token already being adopted by one of this owner's secrets is taken.
        taken = {s.adopted_from for s in seen.secrets.values() if s.adopted_from}
        wanted = [text.casefold() for name, text in self.options.adopt_match if name == token.name]
        for t in _by_age(seen.tokens):
            # A --match mapping names the predecessor by its description instead.
            matches = (
                any(text in t.description.casefold() for text in wanted)
                if wanted
                else t.permissions == token.permissions
            )
            if (
                t.marker is None
                and t.status == TokenStatus.ACTIVE
                and matches
                and t.reference_number not in taken
                and (seen.context, t.reference_number) not in self.adopted
            ):
                return t
        return None

    def _finish_adoption(
        self,
        token: DesiredToken,
        secret: ObservedSecret | None,
        seen: ObservedContext,
        in_window: bool,
        window_end: datetime,
    ) -> None:
        if secret is None or not secret.adopted_from:
            return
        handmade = next(
            (
                t
                for t in seen.tokens
                if t.reference_number == secret.adopted_from
                and t.marker is None
                and t.status not in (TokenStatus.REVOKING, TokenStatus.REVOKED)
            ),
            None,
        )
        if handmade is None:
            return
        if in_window:
            self._note(NoteKind.OVERLAP, seen, token.name, handmade.reference_number, window_end)
        else:
            self._revoke(seen, token.name, handmade, "adoption complete")

    # -- records --------------------------------------------------------------
    def _overlap(self, token: DesiredToken) -> timedelta:
        return ZERO if self.options.no_overlap else token.overlap

    def _creating(
        self,
        action: Action,
        token: DesiredToken,
        reason: str,
        superseded: ObservedToken | None,
        *,
        keep: bool,
    ) -> Change:
        overlap = self._overlap(token)
        return Change(
            action=action,
            owner=token.owner,
            context=token.context,
            token=token.name,
            reason=reason,
            reference_number=superseded.reference_number if superseded else None,
            permissions=token.permissions,
            description=token.description,
            secret=token.secret,
            keep_until=self.now + overlap if keep and overlap > ZERO and superseded else None,
        )

    def _replace(self, token: DesiredToken, old: ObservedToken, reason: str, *, keep: bool) -> None:
        self.changes.append(self._creating(Action.REPLACE, token, reason, old, keep=keep))

    def _revoke(
        self,
        seen: ObservedContext,
        name: str,
        old: ObservedToken | None,
        reason: str,
        *,
        secret: SecretRef | None = None,
        policy_digest: str = "",
    ) -> None:
        # ``old`` None: the token is already gone and only its secret is deleted.
        self.changes.append(
            Change(
                action=Action.REVOKE,
                owner=seen.owner,
                context=seen.context,
                token=name,
                reason=reason,
                reference_number=old.reference_number if old else None,
                secret=secret,
                delete_secret=secret is not None,
                policy_digest=policy_digest,
            )
        )

    def _note(
        self,
        kind: NoteKind,
        seen: ObservedContext,
        name: str,
        reference_number: str,
        until: datetime | None = None,
    ) -> None:
        self.notes.append(Note(kind, seen.owner, seen.context, name, reference_number, until))


def _dormant(token: DesiredToken, secret: ObservedSecret | None) -> bool:
    if secret is None or secret.exists or not secret.revoked_reason:
        return False
    if not secret.revoked_reason.startswith(UNUSED):
        return False
    if secret.revoked_policy is not None:
        return secret.revoked_policy == token_policy_digest(token)
    return token.revoke_if_unused_for is not None


def _revocable(tokens: list[ObservedToken]) -> list[ObservedToken]:
    """Tokens a revocation can still end: a Failed one never worked and stays Failed."""
    return [t for t in tokens if t.status != TokenStatus.FAILED]
