"""Printing a plan: Terraform-like text for people, versioned JSON for machines.

The JSON shape is a public contract (``schemas/plan.v1.json``,
``docs/plan-json.md``): fields are only ever added within one
``format_version``; renaming or removing one means version "2".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ksefctl.manifest.model import PERMISSIONS, ContextId
from ksefctl.reconcile.kinds import kind_named
from ksefctl.reconcile.model import Action, Change, KindChange, KindNote, Note, NoteKind, Plan

FORMAT_VERSION = "1"

# The verb column is padded so that token names line up, as in Terraform.
_VERBS = {
    Action.CREATE: "create ",
    Action.REPLACE: "replace",
    Action.REVOKE: "revoke ",
    Action.ADOPT: "adopt  ",
    Action.MOVE: "move   ",
}
_COLOURS = {
    Action.CREATE: "\x1b[32m",  # green
    Action.REPLACE: "\x1b[33m",  # yellow
    Action.REVOKE: "\x1b[31m",  # red
    Action.ADOPT: "\x1b[35m",  # magenta
    Action.MOVE: "\x1b[36m",  # cyan
}
_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"
NO_CHANGES = "No changes. KSeF tokens and Vault match the manifest."


# Company names from the manifests (``contexts[].name``), by owner and context.
Names = Mapping[tuple[str, ContextId], str]


def context_label(owner: str, context: ContextId, names: Names | None = None) -> str:
    """``Nip:5265877635 (owner acme)``, with the company's name when the manifest gives one."""
    name = (names or {}).get((owner, context))
    return f"{context} ({name}; owner {owner})" if name else f"{context} (owner {owner})"


def render_text(
    plan: Plan,
    *,
    color: bool = False,
    show_notes: bool = True,
    failed: int = 0,
    names: Names | None = None,
) -> str:
    """The plan as a person reads it, ending with a one-line summary.

    ``failed`` counts contexts that could not be observed; the summary then
    says so instead of claiming there is nothing to do.
    """

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    lines: list[str] = []
    notes = plan.notes if show_notes else ()
    others = _kind_lines(plan, show_notes)
    groups = _groups(plan.changes, notes)
    for key in others:
        if all(key != k for k, _, _ in groups):
            groups.append((key, [], []))
    for (owner, context), changes, context_notes in sorted(groups, key=lambda g: g[0]):
        lines.append(paint(_BOLD, context_label(owner, context, names)))
        for kind_change, text in others.get((owner, context), []):
            if kind_change is None:
                lines.append(paint(_DIM, f"    {text}"))
                continue
            symbol = f"{kind_change.action.value} {_VERBS[kind_change.action]}"
            lines.append(f"  {paint(_COLOURS[kind_change.action], symbol)} {text}")
        for change in changes:
            symbol = f"{change.action.value} {_VERBS[change.action]}"
            lines.append(f"  {paint(_COLOURS[change.action], symbol)} {_change_text(change)}")
        for note in context_notes:
            lines.append(paint(_DIM, f"    {_note_text(note)}"))
        lines.append("")
    lines.append(summary_line(plan, failed))
    return "\n".join(lines) + "\n"


def render_compact(plan: Plan, *, failed: int = 0, names: Names | None = None) -> str:
    """One line per context with changes — counts only — for estates of hundreds of companies."""
    lines: list[str] = []
    for (owner, context), changes, _ in _groups(plan.changes, ()):
        counts = " ".join(
            f"{action.value}{sum(c.action is action for c in changes)}"
            for action in (Action.CREATE, Action.REPLACE, Action.REVOKE)
        )
        adopt = sum(c.action is Action.ADOPT for c in changes)
        if adopt:
            counts += f" {Action.ADOPT.value}{adopt}"
        lines.append(f"{counts}  {context_label(owner, context, names)}")
    if lines:
        lines.append("")
    lines.append(summary_line(plan, failed))
    return "\n".join(lines) + "\n"


def render_markdown(
    plan: Plan,
    *,
    failed: int = 0,
    names: Names | None = None,
    failures: Iterable[str] = (),
    title: str = "ksefctl plan",
) -> str:
    """The plan for a pull-request comment: summary, a table per context, the full plan folded."""
    lines = [f"### {title}", "", f"**{summary_line(plan, failed)}**", ""]
    groups = _groups(plan.changes, ())
    if groups:
        lines += ["| context | company | owner | + | ~ | - | ! |", "|---|---|---|--:|--:|--:|--:|"]
        for (owner, context), changes, _ in groups:
            count = {a: sum(c.action is a for c in changes) for a in Action}
            name = (names or {}).get((owner, context), "")
            lines.append(
                f"| `{context}` | {_cell(name)} | {_cell(owner)} | {count[Action.CREATE]} | "
                f"{count[Action.REPLACE]} | {count[Action.REVOKE]} | {count[Action.ADOPT]} |"
            )
        lines.append("")
    problems = list(failures)
    if problems:
        lines += ["**Errors**", "", "```text", *problems, "```", ""]
    if groups or plan.notes:
        body = render_text(plan, names=names, failed=failed).rstrip("\n")
        # A diff block colours + and - lines on GitHub and GitLab; fences inside cannot occur
        # (no field of a plan holds a backtick run), but are defused anyway.
        lines += [
            "<details><summary>Full plan</summary>",
            "",
            "```diff",
            body.replace("```", "ʼʼʼ"),
            "```",
            "</details>",
            "",
        ]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (no column breaks, no HTML)."""
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", " ")
    )


def _kind_lines(
    plan: Plan, show_notes: bool
) -> dict[tuple[str, ContextId], list[tuple[KindChange | None, str]]]:
    """Other kinds' changes (and notes, as ``None``) per context, in the plan's order."""
    found: dict[tuple[str, ContextId], list[tuple[KindChange | None, str]]] = {}
    for change in plan.kind_changes:
        kind = kind_named(change.kind)
        text = kind.text(change) if kind is not None else change.name
        found.setdefault((change.owner, change.context), []).append((change, text))
    if show_notes:
        for note in plan.kind_notes:
            found.setdefault((note.owner, note.context), []).append((None, note.text))
    return found


def kind_change_json(change: KindChange) -> dict[str, Any]:
    """One change of another kind: the shared fields, then the kind's own."""
    kind = kind_named(change.kind)
    document: dict[str, Any] = {
        "kind": change.kind,
        "action": change.action.name.lower(),
        "owner": change.owner,
        "context": str(change.context),
        "name": change.name,
        "reason": change.reason,
    }
    if kind is not None:
        document.update(kind.to_json(change))
    return document


def _kind_note_json(note: KindNote) -> dict[str, Any]:
    return {
        "kind": note.kind,
        "owner": note.owner,
        "context": str(note.context),
        "name": note.name,
        "text": note.text,
    }


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
    line = f"{line}, {adopt} to adopt" if adopt else line
    moved = plan.count(Action.MOVE)
    line = f"{line}, {moved} to move" if moved else line
    kinds: dict[str, int] = {}
    for change in plan.kind_changes:
        kinds[change.kind] = kinds.get(change.kind, 0) + 1
    for kind, count in sorted(kinds.items()):
        line += f"; {count} {kind} change{'s' if count != 1 else ''}"
    return line


def render_json(plan: Plan, names: Names | None = None) -> dict[str, Any]:
    """The plan as ``schemas/plan.v1.json`` describes it (JSON-ready values only).

    With ``names``, changes and notes of a named context carry ``context_name``.
    """
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "fingerprint": plan.fingerprint,
        "created_at": _time(plan.created_at),
        "summary": {
            "create": plan.count(Action.CREATE),
            "replace": plan.count(Action.REPLACE),
            "revoke": plan.count(Action.REVOKE),
            "adopt": plan.count(Action.ADOPT),
            "move": plan.count(Action.MOVE),
            "empty": plan.empty,
        },
        "changes": [_change_json(c) for c in plan.changes],
        "notes": [_note_json(n) for n in plan.notes],
        "kind_changes": [kind_change_json(c) for c in plan.kind_changes],
        "kind_notes": [_kind_note_json(n) for n in plan.kind_notes],
    }
    if names:
        by_text = {(owner, str(context)): name for (owner, context), name in names.items()}
        for item in (
            *document["changes"],
            *document["notes"],
            *document["kind_changes"],
            *document["kind_notes"],
        ):
            name = by_text.get((item["owner"], item["context"]))
            if name is not None:
                item["context_name"] = name
    return document


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
    if change.action is Action.MOVE:
        return f"{change.token}  ({change.reason})  {change.moved_from} -> {change.secret}"
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
        "moved_from": (
            {"mount": change.moved_from.mount, "path": change.moved_from.path}
            if change.moved_from
            else None
        ),
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
