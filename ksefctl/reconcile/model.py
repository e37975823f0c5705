"""Observed state, actions, changes and plans: plain immutable data.

The planner turns ``(Desired, Observed, now)`` into a :class:`Plan`; the
executor performs it; the renderer prints it.  Nothing here talks to KSeF or
Vault.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from ksefctl.manifest.model import ContextId, Marker, SecretRef
from ksefctl.vocabulary import TokenStatus

TOKEN_STATUSES = tuple(TokenStatus)


@dataclass(frozen=True)
class ObservedToken:
    """One token as KSeF lists it (never its secret: KSeF shows that only once)."""

    reference_number: str
    status: str  # one of TOKEN_STATUSES
    permissions: frozenset[str]
    description: str
    created: datetime
    last_used: datetime | None = None
    author: str = ""  # "Nip:5265877635", "Pesel:…", "Fingerprint:…"
    marker: Marker | None = None  # decoded from description; None = unmanaged


@dataclass(frozen=True)
class ObservedSecret:
    """What Vault holds at one token's path (metadata only; the value stays in Vault)."""

    secret: SecretRef
    exists: bool  # a current, non-deleted version with a token in it
    version: int  # current version number, 0 when the path was never written (for CAS)
    reference_number: str | None = None  # the token whose value the current version holds
    created: datetime | None = None
    # custom_metadata the executor leaves behind (the planner's only memory, SPEC principle 1):
    revoked_reason: str | None = None  # deletedReason: why it was soft-deleted ("unused 74 days")
    revoked_policy: str | None = None  # revokedPolicy: Change.policy_digest of a disuse revocation
    adopted_from: str | None = None  # adoptedFrom: the hand-made token an ADOPT superseded
    # The owner named in the metadata of a path ksefctl wrote (None: never written, or
    # not by ksefctl — ``version`` tells which). Nobody writes over another's path.
    owner: str | None = None
    # rotationOf / rotationNoOverlap: a forced rotation (``rotate``) in progress, recorded
    # before it starts so an interrupted one is finished as it was asked for.
    rotation_of: str | None = None
    rotation_no_overlap: bool = False


@dataclass(frozen=True)
class ObservedContext:
    owner: str
    context: ContextId
    tokens: tuple[ObservedToken, ...]  # every token KSeF shows, except Revoked
    secrets: Mapping[str, ObservedSecret]  # by token name: declared names and marker names
    # By declared token name: its secret at a spec.vault.movedFrom path, read only when
    # nothing was ever written at its path (the path changed).
    moved: Mapping[str, ObservedSecret] = field(default_factory=dict)
    # What the other kinds (ksefctl.reconcile.kind) observed here, by kind name.
    kinds: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Observed:
    contexts: Mapping[tuple[str, ContextId], ObservedContext]  # by (owner, context)


class Action(enum.Enum):
    """What a change does; the value is the symbol the plan prints."""

    CREATE = "+"
    REPLACE = "~"
    REVOKE = "-"
    ADOPT = "!"
    MOVE = ">"  # the secret moves to another path; the token stays

    @property
    def creates_token(self) -> bool:
        return self in (Action.CREATE, Action.REPLACE, Action.ADOPT)


@dataclass(frozen=True)
class Change:
    """One step of a plan in one context.

    For CREATE / REPLACE / ADOPT a new token with ``permissions`` is generated
    and stored at ``secret``; ``reference_number`` (REPLACE / ADOPT) names the
    token it supersedes, revoked once the new one is Active and stored, unless
    ``keep_until`` says an overlap keeps it for now.  For REVOKE,
    ``reference_number`` is the token to revoke; ``delete_secret`` soft-deletes
    the secret at ``secret`` as well.
    """

    action: Action
    owner: str
    context: ContextId
    token: str
    reason: str = ""  # "permissions", "rotation due", "secret missing", …
    reference_number: str | None = None
    permissions: frozenset[str] = frozenset()
    description: str = ""
    secret: SecretRef | None = None
    delete_secret: bool = False
    keep_until: datetime | None = None
    # REVOKE for disuse: recorded as the secret's ``revokedPolicy`` so that the
    # token stays revoked until the user changes its definition.
    policy_digest: str = ""
    # MOVE: the secret at ``moved_from`` (holding ``reference_number``) is written at
    # ``secret``, then soft-deleted; the token is not touched.
    moved_from: SecretRef | None = None


class NoteKind(enum.Enum):
    WAITING = "waiting"  # a Pending token that Vault holds: wait for it to activate
    OVERLAP = "overlap"  # a predecessor kept until its overlap ends
    UNMANAGED = "unmanaged"  # a hand-made or other owner's token (shown with --adopt/status)
    DORMANT = "dormant"  # revoked for disuse; recreated only once its definition changes


@dataclass(frozen=True)
class Note:
    """Something the plan shows but does not change."""

    kind: NoteKind
    owner: str
    context: ContextId
    token: str
    reference_number: str
    until: datetime | None = None


@dataclass(frozen=True)
class KindChange:
    """One change of a kind other than tokens; each kind subclasses it (a frozen dataclass).

    Equality is field by field: a saved plan's change must equal the fresh
    plan's in every field to be carried out.
    """

    kind: ClassVar[str] = ""
    action: Action
    owner: str
    context: ContextId
    name: str  # what the plan calls the thing changed (a certificate name, a grantee)
    reason: str = ""


@dataclass(frozen=True)
class KindNote:
    """Something another kind's plan shows but does not change (an unmanaged grant …)."""

    kind: str
    owner: str
    context: ContextId
    name: str
    text: str


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]  # token changes
    notes: tuple[Note, ...] = ()
    fingerprint: str = ""  # of the Observed the plan was computed from
    created_at: datetime | None = field(default=None, compare=False)
    kind_changes: tuple[KindChange, ...] = ()  # the other kinds' changes
    kind_notes: tuple[KindNote, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes and not self.kind_changes

    def count(self, action: Action) -> int:
        """Token changes of ``action``."""
        return sum(1 for c in self.changes if c.action is action)

    @property
    def contexts(self) -> set[tuple[str, ContextId]]:
        """Every (owner, context) some change of any kind is for."""
        tokens = {(c.owner, c.context) for c in self.changes}
        return tokens | {(c.owner, c.context) for c in self.kind_changes}


@dataclass(frozen=True)
class PlanOptions:
    adopt: bool = False
    prune: bool = False
    force_rotate: frozenset[tuple[str, ContextId, str]] = frozenset()  # (owner, context, token)
    no_overlap: bool = False
    # adopt: declared token name -> substring of a hand-made token's description that
    # marks it as that token's predecessor, whatever its permissions (``--match``).
    adopt_match: tuple[tuple[str, str], ...] = ()
    # Carry out grant changes that could lock ksefctl out of a context (SPEC principle 8).
    allow_lockout: bool = False


ZERO = timedelta(0)
