"""Permission grants: the one record of who may do what in which context.

Every way a permission comes into being ends here — the /v2/permissions
grant endpoints, the TEST seeding endpoint /testdata/permissions — and every
question about permissions is answered from here: what an identity may do
after logging into a context, what the query endpoints list, whether a KSeF
token is still backed by its author's permissions.

Rules, as the documentation (uprawnienia.md, open-api.json) and the official
clients' end-to-end tests show KSeF behaving:

- One record per permission: a grant of [InvoiceRead, InvoiceWrite] is two
  records with two ``permissionId``s, each listed and revoked on its own.
- Granting and revoking are asynchronous operations (100 → 200 or a refusal
  code); their effect starts when the operation completes, and the operation
  can be read for 30 days, then 410 Gone.
- A duplicate (same kind, context, subject, permission and target) is
  ignored: the operation succeeds and the existing record, with its id and
  start date, stays the only one.  The docs allow "an error or the duplicate
  ignored"; ignoring it makes a repeated grant harmless.
- Who may do what in a context (the owner holds everything):
  person grants in the context, subunit-administrator grants (CredentialsManage
  in the subunit), entity grants to the NIP the identity owns, and indirect
  grants whose target is the context (or AllPartners) while the target has
  given the intermediary that same permission with ``canDelegate``; an
  indirect grant without that chain is listed ``Inactive`` and gives nothing.
- Entity authorizations (SelfInvoicing, RRInvoicing, TaxRepresentative,
  PefInvoicing) are relations between companies checked when invoices are
  validated; they give no login permissions.
- A KSeF token whose author no longer holds every permission it was made
  with is revoked (uwierzytelnianie.md: "tokens are invalidated automatically
  when permissions are lost"): it is listed ``Revoked`` with a reason, its
  logins end 450, and getting the permission back does not revive it — a new
  token has to be generated.
"""

from __future__ import annotations

import dataclasses
import heapq
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ksefctl.sim.model import Context, Identity

if TYPE_CHECKING:
    from ksefctl.sim.service import Simulator
    from ksefctl.sim.store import Persistence

PERSON, ENTITY, AUTHORIZATION, INDIRECT, SUBUNIT = (
    "person",
    "entity",
    "authorization",
    "indirect",
    "subunit",
)
SYSTEM: Identity = ("System", "")  # the author of grants made by /testdata/permissions
ALL_PARTNERS: Identity = ("AllPartners", "")
OPERATION_TTL_S = 30 * 24 * 3600.0  # "Status operacji jest dostępny przez 30 dni."

STATUS_TEXT = {
    100: "Operacja przyjęta do realizacji",
    200: "Operacja zakończona sukcesem",
    400: "Operacja zakończona niepowodzeniem",
    410: "Podane identyfikatory są niezgodne lub pozostają w niewłaściwej relacji",
    420: "Użyte poświadczenia nie mają uprawnień do wykonania tej operacji",
    430: "Kontekst identyfikatora nie odpowiada wymaganej roli lub uprawnieniom",
    440: "Operacja niedozwolona dla wskazanych powiązań identyfikatorów",
    450: "Operacja niedozwolona dla wskazanego identyfikatora lub jego typu",
    500: "Nieznany błąd",
}
INVALIDATED = "Token unieważniony z powodu utraty uprawnień przez jego autora."


@dataclass
class Grant:
    id: str
    kind: str  # PERSON | ENTITY | AUTHORIZATION | INDIRECT | SUBUNIT
    context: Context  # where it was granted (for SUBUNIT: the subunit it administers)
    subject: Identity  # who receives it
    permission: str
    description: str
    author: Identity
    started: float
    can_delegate: bool = False
    target: Identity | None = None  # INDIRECT: ("Nip", client) or ALL_PARTNERS
    granted_from: Context | None = None  # SUBUNIT: the parent context that appointed it
    subunit_name: str | None = None
    subject_details: dict[str, Any] | None = None

    def same_as(self, other: Grant) -> bool:
        return (self.kind, self.context, self.subject, self.permission, self.target) == (
            other.kind,
            other.context,
            other.subject,
            other.permission,
            other.target,
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grant:
        data = dict(data)
        for name in ("context", "subject", "author", "target", "granted_from"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)


def new_grant_id() -> str:
    return str(uuid.uuid4())


@dataclass
class PermissionOperation:
    """One POST …/grants or DELETE …/grants/{id}: its outcome is decided when it is
    accepted and takes effect at ``ready_at`` (GET answers 100 until then)."""

    reference_number: str
    context: Context
    started: float
    ready_at: float
    code: int
    details: list[str] = field(default_factory=list)
    add: list[Grant] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    applied: bool = False

    def status(self, now: float) -> dict[str, Any]:
        code = 100 if now < self.ready_at else self.code
        status: dict[str, Any] = {"code": code, "description": STATUS_TEXT[code]}
        if code != 100 and self.details:
            status["details"] = list(self.details)
        return status

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PermissionOperation:
        data = dict(data)
        data["context"] = tuple(data["context"])
        data["add"] = [Grant.from_json(g) for g in data.get("add", [])]
        return cls(**data)


class GrantBook:
    """Grant records and permission operations, indexed for the questions asked of them."""

    def __init__(self, db: Persistence) -> None:
        self._db = db
        self.by_id: dict[str, Grant] = {}
        self._by_context: dict[Context, list[Grant]] = {}
        self._by_subject: dict[Identity, list[Grant]] = {}
        self.operations: dict[str, PermissionOperation] = {}
        self._pending: list[tuple[float, str]] = []  # heap of (ready_at, reference)
        # Contexts that lost a grant since the last look: their tokens need checking.
        self.lost: set[Context] = set()

    def load(self) -> None:
        for _, data in self._db.load("permission"):
            self._index(Grant.from_json(data))
        for _, data in self._db.load("permission-op"):
            op = PermissionOperation.from_json(data)
            self.operations[op.reference_number] = op
            if not op.applied:
                heapq.heappush(self._pending, (op.ready_at, op.reference_number))

    # records
    def _index(self, grant: Grant) -> None:
        self.by_id[grant.id] = grant
        self._by_context.setdefault(grant.context, []).append(grant)
        self._by_subject.setdefault(grant.subject, []).append(grant)

    def add(self, grant: Grant) -> Grant:
        """Store ``grant`` unless an identical one exists; returns the one that stays."""
        for existing in self._by_context.get(grant.context, []):
            if existing.same_as(grant):
                return existing
        self._index(grant)
        self._db.put("permission", grant.id, grant.to_json())
        return grant

    def remove(self, grant_id: str) -> Grant | None:
        grant = self.by_id.pop(grant_id, None)
        if grant is None:
            return None
        self._by_context[grant.context].remove(grant)
        self._by_subject[grant.subject].remove(grant)
        self._db.delete("permission", grant.id)
        self.lost.add(effective_context(grant))
        return grant

    def in_context(self, context: Context) -> list[Grant]:
        return list(self._by_context.get(context, []))

    def of_subject(self, subject: Identity) -> list[Grant]:
        return list(self._by_subject.get(subject, []))

    def all(self) -> Iterator[Grant]:
        return iter(list(self.by_id.values()))

    # operations
    def submit(self, op: PermissionOperation) -> None:
        self.operations[op.reference_number] = op
        heapq.heappush(self._pending, (op.ready_at, op.reference_number))
        self._db.put("permission-op", op.reference_number, op.to_json())

    def settle(self, now: float) -> None:
        """Carry out every operation that is due."""
        while self._pending and self._pending[0][0] <= now:
            _, reference = heapq.heappop(self._pending)
            op = self.operations[reference]
            if op.applied:
                continue
            if op.code == 200:
                for grant in op.add:
                    self.add(grant)
                for grant_id in op.remove:
                    self.remove(grant_id)
            op.applied = True
            self._db.put("permission-op", op.reference_number, op.to_json())

    # what a grant gives
    def indirect_active(self, grant: Grant, client: Context | None = None) -> bool:
        """An indirect grant works for ``client`` (default: its own target) only while
        that client has given the intermediary the same permission with canDelegate."""
        if client is None:
            if grant.target is None or grant.target == ALL_PARTNERS:
                return True  # a general grant: it works wherever a chain exists
            client = grant.target
        intermediary = ("Nip", grant.context[1][:10])
        return any(
            g.kind == ENTITY
            and g.context == client
            and g.permission == grant.permission
            and g.can_delegate
            for g in self._by_subject.get(intermediary, [])
        )

    def effective(self, identity: Identity, entity_nip: str | None, context: Context) -> set[str]:
        """Permissions ``identity`` (owning ``entity_nip``, if any) holds in ``context`` by grant."""
        held: set[str] = set()
        for grant in self._by_subject.get(identity, []):
            direct = grant.kind in (PERSON, SUBUNIT) and grant.context == context
            indirect = (
                grant.kind == INDIRECT
                and context[0] == "Nip"
                and grant.target in (context, ALL_PARTNERS)
                and self.indirect_active(grant, context)
            )
            if direct or indirect:
                held.add(grant.permission)
        if entity_nip is not None:
            for grant in self._by_subject.get(("Nip", entity_nip), []):
                if grant.kind == ENTITY and grant.context == context:
                    held.add(grant.permission)
        return held


def effective_context(grant: Grant) -> Context:
    if grant.kind == INDIRECT and grant.target not in (None, ALL_PARTNERS):
        assert grant.target is not None
        return grant.target
    return grant.context


def invalidate_unbacked_tokens(sim: Simulator, contexts: Iterable[Context]) -> None:
    """Revoke live tokens whose author no longer holds what they were made with."""
    now = sim.now()
    for context in contexts:
        for token in sim.store.tokens_by_context.get(context, []):
            sim.store.settle(token, now)
            if token.status not in ("Pending", "Active"):
                continue
            held = sim.identity_permissions(token.author, context)
            if set(token.permissions) <= held:
                continue
            token.status, token.due, token.outcome = "Revoked", None, None
            token.status_details = [INVALIDATED]
            sim.store.save_token(token)
