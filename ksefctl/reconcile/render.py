"""Printing a plan: Terraform-like text for people, versioned JSON for machines.

The JSON shape is a public contract (``schemas/plan.v1.json``,
``docs/plan-json.md``): fields are only ever added within one
``format_version``; renaming or removing one means version "2".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ksefctl.manifest.model import PERMISSIONS, ContextId
from ksefctl.reconcile.model import Action, Change, Note, NoteKind, Plan

FORMAT_VERSION = "1"

# The verb column is padded so that token names line up, as in Terraform.
_VERBS = {
    Action.CREATE: "create ",
    Action.REPLACE: "replace",
    Action.REVOKE: "revoke ",
    Action.ADOPT: "adopt  ",
}
_COLOURS = {
    Action.CREATE: "\x1b[32m",  # green
    Action.REPLACE: "\x1b[33m",  # yellow
    Action.REVOKE: "\x1b[31m",  # red
    Action.ADOPT: "\x1b[35m",  # magenta
}
_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"
NO_CHANGES = "No changes. KSeF tokens and Vault match the manifest."


def render_text(
    plan: Plan, *, color: bool = False, show_notes: bool = True, failed: int = 0
) -> str:
    """The plan as a person reads it, ending with a one-line summary.

    ``failed`` counts contexts that could not be observed; the summary then
    says so instead of claiming there is nothing to do.
    """

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    lines: list[str] = []
    notes = plan.notes if show_notes else ()
    for (owner, context), changes, context_notes in _groups(plan.changes, notes):
        lines.append(paint(_BOLD, f"{context} (owner {owner})"))
        for change in changes:
            symbol = f"{change.action.value} {_VERBS[change.action]}"
            lines.append(f"  {paint(_COLOURS[change.action], symbol)} {_change_text(change)}")
        for note in context_notes:
            lines.append(paint(_DIM, f"    {_note_text(note)}"))
        lines.append("")
    lines.append(summary_line(plan, failed))
    return "\n".join(lines) + "\n"


def summary_line(plan: Plan, failed: int = 0) -> str:
    if failed:
        # Never "No changes" next to failures: CI summaries often show this line alone.
        contexts = "context" if failed == 1 else "contexts"
        return (
            f"{_counts(plan)}; {failed} {contexts} failed and could not be planned "
            "(errors on stderr)."
        )
    if plan.empty:
        return NO_CHANGES
    return f"{_counts(plan)}."


def _counts(plan: Plan) -> str:
    line = (
        f"Plan: {plan.count(Action.CREATE)} to create, {plan.count(Action.REPLACE)} to replace, "
        f"{plan.count(Action.REVOKE)} to revoke"
    )
    adopt = plan.count(Action.ADOPT)
    return f"{line}, {adopt} to adopt" if adopt else line


def render_json(plan: Plan) -> dict[str, Any]:
    """The plan as ``schemas/plan.v1.json`` describes it (JSON-ready values only)."""
    return {
        "format_version": FORMAT_VERSION,
        "fingerprint": plan.fingerprint,
        "created_at": _time(plan.created_at),
        "summary": {
            "create": plan.count(Action.CREATE),
            "replace": plan.count(Action.REPLACE),
            "revoke": plan.count(Action.REVOKE),
            "adopt": plan.count(Action.ADOPT),
            "empty": plan.empty,
        },
        "changes": [_change_json(c) for c in plan.changes],
        "notes": [_note_json(n) for n in plan.notes],
    }


def permission_list(permissions: Iterable[str]) -> list[str]:
    """Permissions in the order the KSeF web application lists them."""
    known = {p: i for i, p in enumerate(PERMISSIONS)}
    return sorted(permissions, key=lambda p: (known.get(p, len(known)), p))


def _groups(
    changes: Iterable[Change], notes: Iterable[Note]
) -> list[tuple[tuple[str, ContextId], list[Change], list[Note]]]:
    by_change: dict[tuple[str, ContextId], list[Change]] = {}
    for change in changes:
        by_change.setdefault((change.owner, change.context), []).append(change)
    by_note: dict[tuple[str, ContextId], list[Note]] = {}
    for note in notes:
        by_note.setdefault((note.owner, note.context), []).append(note)
    keys = sorted(set(by_change) | set(by_note))
    return [(k, by_change.get(k, []), by_note.get(k, [])) for k in keys]


def _change_text(change: Change) -> str:
    permissions = f"[{', '.join(permission_list(change.permissions))}]"
    if change.action is Action.CREATE:
        return f"{change.token}  {permissions}"
    if change.action is Action.ADOPT:
        kept = f"  kept until {_short(change.keep_until)}" if change.keep_until else ""
        return f"{change.token}  (hand-made {change.reference_number})  {permissions}{kept}"
    if change.reference_number is None and change.secret is not None:
        return f"{change.token}  ({change.reason})  delete {change.secret} only"
    text = f"{change.token}  ({change.reason})  {change.reference_number}"
    if change.action is Action.REPLACE:
        if change.reason == "permissions":
            text += f"  → {permissions}"
        if change.keep_until:
            text += f"  kept until {_short(change.keep_until)}"
    elif change.delete_secret and change.secret is not None:
        text += f"  and delete {change.secret}"
    return text


def _note_text(note: Note) -> str:
    if note.kind is NoteKind.WAITING:
        return f"waiting for {note.token} to become Active ({note.reference_number})"
    if note.kind is NoteKind.OVERLAP:
        return f"keeping {note.reference_number} until {_short(note.until)} (overlap)"
    if note.kind is NoteKind.DORMANT:
        return f"{note.token} stays revoked for disuse until its definition changes"
    return f"not managed: {note.reference_number}"


def _short(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return _utc(moment).strftime("%Y-%m-%dT%H:%MZ")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return _utc(moment).isoformat().replace("+00:00", "Z")


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "action": change.action.name.lower(),
        "symbol": change.action.value,
        "owner": change.owner,
        "context": str(change.context),
        "token": change.token,
        "reason": change.reason,
        "reference_number": change.reference_number,
        "permissions": permission_list(change.permissions),
        "description": change.description,
        "secret": (
            {"mount": change.secret.mount, "path": change.secret.path} if change.secret else None
        ),
        "delete_secret": change.delete_secret,
        "keep_until": _time(change.keep_until),
        "policy_digest": change.policy_digest,
    }


def _note_json(note: Note) -> dict[str, Any]:
    return {
        "kind": note.kind.value,
        "owner": note.owner,
        "context": str(note.context),
        "token": note.token,
        "reference_number": note.reference_number,
        "until": _time(note.until),
    }
