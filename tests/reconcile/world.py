"""A small pure model of KSeF + Vault, and of what the executor does to them.

The property tests (and the chaos suite) plan against it, apply the plan the
way ``ksefctl.reconcile.executor`` does, and plan again: a correct planner
converges.  Builders for desired state live here too, so that tests read like
the manifest they stand for.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from ksefctl.manifest.model import (
    AuthSpec,
    ContextId,
    Desired,
    DesiredContext,
    DesiredToken,
    Marker,
    Policy,
    SecretRef,
)
from ksefctl.reconcile.model import (
    Action,
    Change,
    NoteKind,
    Observed,
    ObservedContext,
    ObservedSecret,
    ObservedToken,
    Plan,
)

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
PATH = "ksef/{environment}/{owner}/{context}/{token}"  # {nip} would merge InternalId contexts
NIP_A = ContextId("Nip", "5265877635")
NIP_B = ContextId("Nip", "7762811692")


@dataclass(frozen=True)
class Spec:
    """One declared token, as a manifest would write it."""

    name: str
    permissions: Iterable[str] = ("InvoiceRead", "InvoiceWrite")
    description: str = ""
    rotate_every: timedelta | None = None
    overlap: timedelta = timedelta(0)
    revoke_if_unused_for: timedelta | None = None


def policy(owner: str, contexts: Mapping[ContextId, Iterable[Spec]]) -> Policy:
    shell = Policy(owner, "test", "http://sim/v2", "secret", PATH, ())
    built = []
    for context, specs in sorted(contexts.items()):
        tokens = tuple(
            DesiredToken(
                owner=owner,
                context=context,
                name=s.name,
                permissions=frozenset(s.permissions),
                description=s.description,
                secret=shell.secret_for(context, s.name),
                rotate_every=s.rotate_every,
                overlap=s.overlap,
                revoke_if_unused_for=s.revoke_if_unused_for,
            )
            for s in sorted(specs, key=lambda s: s.name)
        )
        auth = AuthSpec("certificate", SecretRef("secret", f"ksef-admin/{context.nip}"))
        built.append(DesiredContext(owner, context, "test", "http://sim/v2", auth, tokens))
    return replace(shell, contexts=tuple(built))


def desired(*policies: Policy) -> Desired:
    return Desired(tuple(sorted(policies, key=lambda p: p.owner)))


@dataclass
class World:
    """KSeF's tokens per context and Vault's secrets per path, mutable between rounds."""

    tokens: dict[ContextId, list[ObservedToken]] = field(default_factory=dict)
    secrets: dict[SecretRef, ObservedSecret] = field(default_factory=dict)
    serial: int = 0

    # -- building -------------------------------------------------------------
    def new_reference(self, when: datetime) -> str:
        self.serial += 1
        return f"{when:%Y%m%d}-EC-{self.serial:010X}-0000000000-00"

    def add_token(
        self,
        context: ContextId,
        *,
        owner: str | None,
        name: str = "erp",
        status: str = "Active",
        permissions: Iterable[str] = ("InvoiceRead", "InvoiceWrite"),
        created: datetime = NOW - timedelta(days=10),
        last_used: datetime | None = None,
        reference_number: str | None = None,
    ) -> ObservedToken:
        """A token in KSeF: ``owner=None`` makes it hand-made (no marker)."""
        reference = reference_number or self.new_reference(created)
        marker = Marker(owner, name, f"n{self.serial}") if owner else None
        token = ObservedToken(
            reference_number=reference,
            status=status,
            permissions=frozenset(permissions),
            description=f"{name} [ksefctl]" if owner else "made by hand",
            created=created,
            last_used=last_used,
            author="Nip:5265877635",
            marker=marker,
        )
        self.tokens.setdefault(context, []).append(token)
        return token

    def store(self, ref: SecretRef, token: ObservedToken | str | None, **extra: object) -> None:
        """Vault holds ``token`` at ``ref`` (``None``: a soft-deleted secret)."""
        previous = self.secrets.get(ref)
        reference = token.reference_number if isinstance(token, ObservedToken) else token
        self.secrets[ref] = ObservedSecret(
            secret=ref,
            exists=token is not None,
            version=(previous.version if previous else 0) + 1,
            reference_number=reference,
            created=NOW,
            owner=ref.path.split("/")[2],  # PATH puts the owner third, as ksefctl records it
            **extra,  # type: ignore[arg-type]
        )

    # -- observing ------------------------------------------------------------
    def observe(self, want: Desired) -> Observed:
        """What ``observe`` would return: declared contexts, plus every context where
        the owner's markers or secrets show up (what ``--prune`` needs)."""
        contexts: dict[tuple[str, ContextId], ObservedContext] = {}
        for p in want.policies:
            declared = {c.context: [t.name for t in c.tokens] for c in p.contexts}
            for context, tokens in self.tokens.items():
                if any(t.marker and t.marker.owner == p.owner for t in tokens):
                    declared.setdefault(context, [])
            # Vanished contexts are also found through the owner's live secrets, whose
            # names are then observed (ksefctl lists the owner's secrets in Vault).
            for ref, held in self.secrets.items():
                _, _, owner, value, name = ref.path.split("/")
                context = ContextId("InternalId" if "-" in value else "Nip", value)
                if (
                    held.exists
                    and owner == p.owner
                    and context not in {c.context for c in p.contexts}
                ):
                    declared.setdefault(context, []).append(name)
            for context, names in declared.items():
                live = tuple(t for t in self.tokens.get(context, []) if t.status != "Revoked")
                all_names = set(names) | {
                    t.marker.token for t in live if t.marker and t.marker.owner == p.owner
                }
                secrets = {}
                for name in sorted(all_names):
                    ref = p.secret_for(context, name)
                    secrets[name] = self.secrets.get(ref) or ObservedSecret(ref, False, 0)
                contexts[(p.owner, context)] = ObservedContext(p.owner, context, live, secrets)
        return Observed(contexts)

    def find(self, context: ContextId, reference: str | None) -> ObservedToken | None:
        return next(
            (t for t in self.tokens.get(context, []) if t.reference_number == reference), None
        )

    # -- acting like the executor -------------------------------------------------
    def apply(self, plan: Plan, now: datetime) -> None:
        """Carry out ``plan`` as ``ContextExecutor.run`` does, then let KSeF move on
        (Pending → Active, Revoking → Revoked)."""
        for change in plan.changes:
            if change.action.creates_token:
                self._create(change, now)
        for note in plan.notes:
            if note.kind is NoteKind.WAITING:
                self._set_status(note.context, note.reference_number, "Active")
        for change in plan.changes:
            if change.action is Action.REVOKE:
                self._revoke(change.context, change.reference_number)
                if change.delete_secret and change.secret is not None:
                    self._soft_delete(change)
        for context, tokens in self.tokens.items():
            self.tokens[context] = [
                replace(t, status="Active") if t.status == "Pending" else t
                for t in tokens
                if t.status != "Revoking"
            ]

    def _create(self, change: Change, now: datetime) -> None:
        assert change.secret is not None
        new = self.add_token(
            change.context,
            owner=change.owner,
            name=change.token,
            permissions=change.permissions,
            created=now,
        )
        adopted = change.reference_number if change.action is Action.ADOPT else None
        self.store(change.secret, new, adopted_from=adopted)
        if change.reference_number and change.keep_until is None:
            self._revoke(change.context, change.reference_number)

    def _set_status(self, context: ContextId, reference: str, status: str) -> None:
        self.tokens[context] = [
            replace(t, status=status) if t.reference_number == reference else t
            for t in self.tokens.get(context, [])
        ]

    def _revoke(self, context: ContextId, reference: str | None) -> None:
        self.tokens[context] = [
            t for t in self.tokens.get(context, []) if t.reference_number != reference
        ]

    def _soft_delete(self, change: Change) -> None:
        assert change.secret is not None
        previous = self.secrets.get(change.secret)
        if previous is None or not previous.exists:
            return  # like VaultStore.soft_delete: nothing live, nothing recorded
        self.secrets[change.secret] = replace(
            previous,
            exists=False,
            revoked_reason=change.reason,
            revoked_policy=change.policy_digest or None,
        )


def shuffled(observed: Observed, seed: int) -> Observed:
    """The same observation with tokens, secrets and contexts in another order."""
    rng = random.Random(seed)
    contexts = list(observed.contexts.items())
    rng.shuffle(contexts)
    out = {}
    for key, seen in contexts:
        tokens = list(seen.tokens)
        rng.shuffle(tokens)
        secrets = list(seen.secrets.items())
        rng.shuffle(secrets)
        out[key] = replace(seen, tokens=tuple(tokens), secrets=dict(secrets))
    return Observed(out)
