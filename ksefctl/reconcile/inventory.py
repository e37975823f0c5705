"""The inventory behind ``ksefctl status``: every token per context, with flags.

Pure, like the planner: ``(desired, observed, now) -> Inventory``.  It shows
what the planner hides — hand-made tokens and other owners' tokens — so
people can see everything that can log into a company's invoices.

Flags (stable strings, also in ``status --json``):

* ``rotation-due``: a managed Active token older than its ``rotateEvery``;
* ``never-used``: an Active token KSeF reports no ``lastUseDate`` for;
* ``unused``: an Active token not used (or, never used, not created) for at
  least ``--unused-for``;
* ``secret-missing``: a live managed token Vault holds no value of, and no
  other live token of that name is held either (nobody can be using it);
* ``superseded``: a managed token whose successor Vault now holds — kept for
  the overlap, revoked by a later apply;
* ``adopting``: a hand-made token a managed one is replacing (``apply --adopt``);
* ``not-declared``: a managed token whose name the manifest no longer has;
* ``pending`` / ``failed``: KSeF's own statuses that need attention.

``never-used`` is information, not a warning: every token is never-used
between the apply that made it and its consumer's first login, so it is
listed in ``flags`` but does not make a token *flagged* (``flagged`` counts,
the alert recipe in docs/status-json.md).  Every other flag does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ksefctl.manifest import marker as marker_text
from ksefctl.manifest.model import ContextId, Desired, DesiredToken
from ksefctl.reconcile.model import Observed, ObservedContext, ObservedToken
from ksefctl.vocabulary import USABLE, TokenStatus

STATUS_FORMAT_VERSION = "1"
LIVE = USABLE
# Flags that describe a token without asking anyone to act on it.
INFORMATIONAL_FLAGS = frozenset({"never-used"})


@dataclass(frozen=True)
class TokenRow:
    owner: str  # the manifest owner that observed this context
    context: ContextId
    reference_number: str
    ownership: str  # "managed" | "other-owner" | "unmanaged"
    managed_by: str | None  # marker owner, when any
    name: str | None  # marker token name, when any
    status: str
    permissions: tuple[str, ...]
    description: str  # the user's text, without the ownership marker
    author: str
    created: datetime
    age_days: int
    last_used: datetime | None
    unused_days: int | None  # days since last use (or creation), for Active tokens
    secret_in_vault: bool | None  # None: not this owner's token, Vault is not consulted
    rotation_due_at: datetime | None
    flags: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        """Whether any flag asks for attention (``never-used`` alone does not)."""
        return any(flag not in INFORMATIONAL_FLAGS for flag in self.flags)


@dataclass(frozen=True)
class ContextSummary:
    owner: str
    context: ContextId
    total: int
    managed: int
    unmanaged: int
    other_owners: int
    flagged: int
    absent: tuple[str, ...]  # declared token names with no live managed token
    name: str | None = None  # contexts[].name from the manifest, for people


@dataclass(frozen=True)
class Inventory:
    rows: tuple[TokenRow, ...]
    contexts: tuple[ContextSummary, ...]
    generated_at: datetime

    def rows_of(self, summary: ContextSummary) -> list[TokenRow]:
        return [r for r in self.rows if (r.owner, r.context) == (summary.owner, summary.context)]


def inventory(
    desired: Desired,
    observed: Observed,
    now: datetime,
    unused_for: timedelta | None = None,
) -> Inventory:
    rows: list[TokenRow] = []
    summaries: list[ContextSummary] = []
    for policy in desired.policies:
        for context in policy.contexts:
            seen = observed.contexts.get((policy.owner, context.context))
            if seen is None:
                continue  # not observed (its failure is reported separately)
            declared = {t.name: t for t in context.tokens}
            these = [_row(seen, token, declared, now, unused_for) for token in seen.tokens]
            these.sort(key=_order)
            rows.extend(these)
            live_names = {r.name for r in these if r.ownership == "managed" and r.status in LIVE}
            summaries.append(
                ContextSummary(
                    owner=policy.owner,
                    context=context.context,
                    total=len(these),
                    managed=sum(r.ownership == "managed" for r in these),
                    unmanaged=sum(r.ownership == "unmanaged" for r in these),
                    other_owners=sum(r.ownership == "other-owner" for r in these),
                    flagged=sum(r.flagged for r in these),
                    absent=tuple(sorted(set(declared) - live_names)),
                    name=context.name,
                )
            )
    return Inventory(rows=tuple(rows), contexts=tuple(summaries), generated_at=now)


def _order(row: TokenRow) -> tuple[int, str, str, datetime, str]:
    rank = {"managed": 0, "other-owner": 1, "unmanaged": 2}[row.ownership]
    return (rank, row.managed_by or "", row.name or "", row.created, row.reference_number)


def _row(
    seen: ObservedContext,
    token: ObservedToken,
    declared: dict[str, DesiredToken],
    now: datetime,
    unused_for: timedelta | None,
) -> TokenRow:
    flags: list[str] = []
    marker = token.marker
    if marker is None:
        ownership, name = "unmanaged", None
    elif marker.owner != seen.owner:
        ownership, name = "other-owner", marker.token
    else:
        ownership, name = "managed", marker.token
    live = token.status in LIVE
    secret_in_vault: bool | None = None
    rotation_due_at: datetime | None = None
    if ownership == "managed" and name is not None:
        state = seen.secrets.get(name)
        held = state.reference_number if state is not None and state.exists else None
        secret_in_vault = held == token.reference_number
        if not secret_in_vault and live:
            # The value of a superseded predecessor left Vault on purpose when its
            # successor was stored; only a token no-one can reach is "missing".
            successor = any(t.reference_number == held and t.status in LIVE for t in seen.tokens)
            flags.append("superseded" if successor else "secret-missing")
        want = declared.get(name)
        if want is None:
            flags.append("not-declared")
        elif want.rotate_every is not None and secret_in_vault:
            rotation_due_at = token.created + want.rotate_every
            if rotation_due_at <= now and token.status == TokenStatus.ACTIVE:
                flags.append("rotation-due")
    adopting = any(s.adopted_from == token.reference_number for s in seen.secrets.values())
    if ownership == "unmanaged" and live and adopting:
        flags.append("adopting")
    if token.status == TokenStatus.PENDING:
        flags.append("pending")
    if token.status == TokenStatus.FAILED:
        flags.append("failed")
    unused_days: int | None = None
    if token.status == TokenStatus.ACTIVE:
        idle = now - (token.last_used or token.created)
        unused_days = max(0, idle.days)
        if token.last_used is None:
            flags.append("never-used")
        if unused_for is not None and idle >= unused_for:
            flags.append("unused")
    return TokenRow(
        owner=seen.owner,
        context=seen.context,
        reference_number=token.reference_number,
        ownership=ownership,
        managed_by=marker.owner if marker else None,
        name=name,
        status=token.status,
        permissions=tuple(sorted(token.permissions)),
        description=marker_text.user_text(token.description).strip(),
        author=token.author,
        created=token.created,
        age_days=max(0, (now - token.created).days),
        last_used=token.last_used,
        unused_days=unused_days,
        secret_in_vault=secret_in_vault,
        rotation_due_at=rotation_due_at,
        flags=tuple(flags),
    )


def _time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def inventory_json(inv: Inventory) -> dict[str, Any]:
    """The documented ``status --json`` document (schemas/status.v1.json)."""
    return {
        "format_version": STATUS_FORMAT_VERSION,
        "generated_at": _time(inv.generated_at),
        "summary": {
            "contexts": len(inv.contexts),
            "tokens": len(inv.rows),
            "managed": sum(c.managed for c in inv.contexts),
            "unmanaged": sum(c.unmanaged for c in inv.contexts),
            "other_owners": sum(c.other_owners for c in inv.contexts),
            "flagged": sum(c.flagged for c in inv.contexts),
            "absent": sum(len(c.absent) for c in inv.contexts),
        },
        "contexts": [
            {
                "owner": c.owner,
                "context": str(c.context),
                **({"name": c.name} if c.name else {}),
                "total": c.total,
                "managed": c.managed,
                "unmanaged": c.unmanaged,
                "other_owners": c.other_owners,
                "flagged": c.flagged,
                "absent": list(c.absent),
                "tokens": [_row_json(r) for r in inv.rows_of(c)],
            }
            for c in inv.contexts
        ],
    }


def _row_json(row: TokenRow) -> dict[str, Any]:
    return {
        "reference_number": row.reference_number,
        "ownership": row.ownership,
        "managed_by": row.managed_by,
        "name": row.name,
        "status": row.status,
        "permissions": list(row.permissions),
        "description": row.description,
        "author": row.author,
        "created": _time(row.created),
        "age_days": row.age_days,
        "last_used": _time(row.last_used),
        "unused_days": row.unused_days,
        "secret_in_vault": row.secret_in_vault,
        "rotation_due_at": _time(row.rotation_due_at),
        "flags": list(row.flags),
    }
