"""The grants audit (``ksefctl status --grants``): who holds what in each context, and since when.

Every record KSeF lists in a context — managed by this owner, by another
owner, or made by hand — as one row, in the JSON documented in
docs/status-json.md and as a table per context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date

from ksefctl.manifest.grants import user_text
from ksefctl.manifest.model import DesiredContext
from ksefctl.reconcile.grants.model import ObservedGrants
from ksefctl.vocabulary import ContextId

GRANTS_HEADERS = ("GRANTEE", "HOLDER", "PERMISSION", "SINCE", "EXPIRES", "MANAGED", "AUTHOR")


@dataclass(frozen=True)
class GrantRow:
    owner: str
    context: ContextId
    kind: str
    subject: str  # "Pesel:…"
    holder: str
    permission: str
    state: str
    can_delegate: bool
    managed_by: str | None  # the marker's owner; None: hand-made
    owned: bool  # managed by the owner this run reads for
    description: str  # the user's text, without the marker
    author: str
    target: str
    since: str  # RFC 3339
    expires: date | None
    id: str

    def to_json(self) -> dict[str, object]:
        return {
            "owner": self.owner,
            "context": str(self.context),
            "kind": self.kind,
            "subject": self.subject,
            "holder": self.holder or None,
            "permission": self.permission,
            "state": self.state,
            "can_delegate": self.can_delegate,
            "managed": self.owned,
            "managed_by": self.managed_by,
            "description": self.description,
            "author": self.author or None,
            "target": self.target or None,
            "since": self.since,
            "expires": self.expires.isoformat() if self.expires else None,
            "id": self.id,
        }


def grant_rows(owner: str, context: DesiredContext, observed: ObservedGrants) -> list[GrantRow]:
    expiries: Mapping[tuple[str, str], date | None] = {
        (g.kind, f"{g.subject_type}:{g.subject}".upper()): g.expires for g in context.grants or ()
    }
    rows = []
    for g in observed.grants:
        subject = f"{g.subject_type}:{g.subject}"
        owned = g.owner == owner
        rows.append(
            GrantRow(
                owner=owner,
                context=context.context,
                kind=g.kind,
                subject=subject,
                holder=g.holder,
                permission=g.permission,
                state=g.state,
                can_delegate=g.can_delegate,
                managed_by=g.owner,
                owned=owned,
                description=user_text(g.description).strip(),
                author=g.author,
                target=g.target,
                since=g.started.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                expires=expiries.get((g.kind, subject.upper())) if owned else None,
                id=g.id,
            )
        )
    return rows


def render_grants(
    contexts: Sequence[tuple[str, str, list[GrantRow]]],
) -> str:
    """``contexts``: (label, owner, rows) per context."""
    lines: list[str] = []
    total = managed = 0
    for label, _, rows in contexts:
        lines.append(label)
        table = [GRANTS_HEADERS] + [_cells(r) for r in rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(GRANTS_HEADERS))]
        if rows:
            for cells in table:
                lines.append(
                    "  "
                    + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
                )
        mine = sum(r.owned for r in rows)
        lines.append(f"  {len(rows)} grants: {mine} managed, {len(rows) - mine} not.")
        lines.append("")
        total += len(rows)
        managed += mine
    lines.append(
        f"Grants: {total} in {len(contexts)} contexts ({managed} managed, {total - managed} not)."
    )
    return "\n".join(lines) + "\n"


def _cells(row: GrantRow) -> tuple[str, ...]:
    who = "yes" if row.owned else (f"owner {row.managed_by}" if row.managed_by else "hand-made")
    permission = row.permission + (" (canDelegate)" if row.can_delegate else "")
    if row.state != "Active":
        permission += f" ({row.state})"
    return (
        f"{row.kind} {row.subject}",
        row.holder or "-",
        permission,
        row.since[:10],
        row.expires.isoformat() if row.expires else "-",
        who,
        row.author or "-",
    )
