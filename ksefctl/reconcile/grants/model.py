"""What the grants kind observes and the changes it plans: plain immutable data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from ksefctl.reconcile.model import KindChange

# The kinds of record ksefctl manages; the others (indirect grants made here,
# subunit administrators) are only reported.
MANAGED_KINDS = ("person", "entity", "authorization")
CREDENTIALS_MANAGE = "CredentialsManage"


@dataclass(frozen=True)
class ObservedGrant:
    """One KSeF permission record in a context (KSeF keeps one per permission)."""

    id: str  # permissionId
    kind: str  # person | entity | authorization | indirect
    subject_type: str  # Pesel | Nip | Fingerprint | PeppolId
    subject: str
    permission: str
    description: str
    started: datetime
    can_delegate: bool = False
    state: str = "Active"
    author: str = ""  # "Pesel:…", "Nip:…", "System"
    target: str = ""  # indirect grants: "Nip:…" or "AllPartners"
    holder: str = ""  # the person's or company's name as KSeF records it
    owner: str | None = None  # the ownership marker's owner; None: hand-made

    @property
    def grantee(self) -> str:
        return f"{self.kind} {self.subject_type}:{self.subject}"


@dataclass(frozen=True)
class ObservedGrants:
    grants: tuple[ObservedGrant, ...]
    # Records that give the identity ksefctl logs in with CredentialsManage here.
    own_credentials: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GrantChange(KindChange):
    """Grant, revoke, regrant or adopt one grantee's permissions in one context.

    CREATE grants ``permissions``; REVOKE revokes the records ``revoke_ids``;
    REPLACE (``canDelegate`` changed) and ADOPT (a hand-made grant taken over)
    revoke ``revoke_ids`` first — KSeF ignores a grant that duplicates an
    existing record — then grant ``permissions`` with the ownership marker.
    ``lockout`` says why the change could lock ksefctl out of the context; the
    executor refuses such a change unless ``allow_lockout``.
    """

    kind: ClassVar[str] = "grants"
    grant_kind: str = ""  # person | entity | authorization
    subject_type: str = ""
    subject: str = ""
    permissions: tuple[str, ...] = ()  # to grant, sorted
    can_delegate: bool = False
    description: str = ""  # the user's text; the executor appends the marker
    first_name: str = ""
    last_name: str = ""
    person_identifier: tuple[str, str] | None = None
    entity_name: str = ""
    revoke_ids: tuple[str, ...] = ()  # sorted
    revoke_permissions: tuple[str, ...] = ()  # what the revoked records hold, for reading
    lockout: str = ""
    allow_lockout: bool = False
