"""The inventory behind ``ksefctl status``: every token per context, with flags.

Pure, like the planner: ``(desired, observed, now) -> Inventory``.  It shows
what the planner hides — hand-made tokens and other owners' tokens — so
people can see everything that can log into a company's invoices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ksefctl.manifest.model import ContextId, Desired, DesiredToken
from ksefctl.reconcile.model import Observed, ObservedContext, ObservedToken

STATUS_FORMAT_VERSION = "1"


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
    author: str
    created: datetime
    age_days: int
    last_used: datetime | None
    secret_in_vault: bool | None  # None: not ours, Vault is not consulted
    rotation_due_at: datetime | None
    flags: tuple[str, ...]


@dataclass(frozen=True)
class ContextSummary:
    owner: str
    context: ContextId
    total: int
    managed: int
    unmanaged: int
    other_owners: int
    flagged: int


@dataclass(frozen=True)
class Inventory:
    rows: tuple[TokenRow, ...]
    contexts: tuple[ContextSummary, ...]
    generated_at: datetime


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
                continue
            declared = {t.name: t for t in context.tokens}
            these = [_row(seen, token, declared, now, unused_for) for token in seen.tokens]
            these.sort(key=lambda r: (r.ownership != "managed", r.name or "", r.created))
            rows.extend(these)
            summaries.append(
                ContextSummary(
                    owner=policy.owner,
                    context=context.context,
                    total=len(these),
                    managed=sum(r.ownership == "managed" for r in these),
                    unmanaged=sum(r.ownership == "unmanaged" for r in these),
                    other_owners=sum(r.ownership == "other-owner" for r in these),
                    flagged=sum(bool(r.flags) for r in these),
                )
            )
    return Inventory(rows=tuple(rows), contexts=tuple(summaries), generated_at=now)


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
    secret_in_vault: bool | None = None
    rotation_due_at: datetime | None = None
    if ownership == "managed" and name is not None:
        state = seen.secrets.get(name)
        secret_in_vault = bool(
            state and state.exists and state.reference_number == token.reference_number
        )
        if not secret_in_vault and token.status in ("Active", "Pending"):
            flags.append("secret-missing")
        want = declared.get(name)
        if want is None:
            flags.append("not-declared")
        elif want.rotate_every is not None:
            rotation_due_at = token.created + want.rotate_every
            if rotation_due_at <= now:
                flags.append("rotation-due")
    if token.status == "Pending":
        flags.append("pending")
    if token.status == "Failed":
        flags.append("failed")
    if token.last_used is None and token.status == "Active":
        flags.append("never-used")
    if unused_for is not None and token.status == "Active":
        last = token.last_used or token.created
        if now - last >= unused_for:
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
        author=token.author,
        created=token.created,
        age_days=max(0, (now - token.created).days),
        last_used=token.last_used,
        secret_in_vault=secret_in_vault,
        rotation_due_at=rotation_due_at,
        flags=tuple(flags),
    )


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def inventory_json(inv: Inventory) -> dict[str, Any]:
    """The documented ``status --json`` document (schemas/status.v1.json)."""
    by_context: dict[tuple[str, ContextId], list[dict[str, Any]]] = {}
    for row in inv.rows:
        by_context.setdefault((row.owner, row.context), []).append(_row_json(row))
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
        },
        "contexts": [
            {
                "owner": c.owner,
                "context": str(c.context),
                "total": c.total,
                "managed": c.managed,
                "unmanaged": c.unmanaged,
                "other_owners": c.other_owners,
                "flagged": c.flagged,
                "tokens": by_context.get((c.owner, c.context), []),
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
        "author": row.author,
        "created": _time(row.created),
        "age_days": row.age_days,
        "last_used": _time(row.last_used),
        "secret_in_vault": row.secret_in_vault,
        "rotation_due_at": _time(row.rotation_due_at),
        "flags": list(row.flags),
    }
