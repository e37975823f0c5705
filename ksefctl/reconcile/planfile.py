"""Saved plans (``ksefctl plan --out PLAN``, ``ksefctl apply PLAN``).

A plan file is JSON: the plan exactly as ``--json`` prints it, plus what it
was computed from (the manifests' SHA-256 and the plan options).  It is a
claim, not an order (SPEC principle 7): ``apply`` refuses it when a manifest
or the observed world (``plan.fingerprint``) changed since, and carries out
its changes only if a fresh plan — the same manifests, options and selection,
planned as of the saved ``created_at`` — computes exactly the same ones
(:func:`first_difference`).  Plans hold no secret by construction: no field
of a :class:`~ksefctl.reconcile.model.Plan` can carry one; the file is
written 0600 all the same.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ksefctl.errors import KsefctlError
from ksefctl.manifest.model import SecretRef
from ksefctl.reconcile.fields import as_bool, as_list, as_optional_str, as_str, as_time
from ksefctl.reconcile.kinds import kind_named
from ksefctl.reconcile.model import (
    Action,
    Change,
    KindChange,
    KindNote,
    Note,
    NoteKind,
    Plan,
    PlanOptions,
)
from ksefctl.reconcile.render import FORMAT_VERSION, permission_list, render_json
from ksefctl.vocabulary import parse_context

KIND = "ksefctl-plan"


class PlanFileError(KsefctlError):
    """A saved plan cannot be read: missing, corrupt, foreign or from another format."""


@dataclass(frozen=True)
class SavedPlan:
    plan: Plan
    sources: Mapping[str, str]  # manifest file → SHA-256 (hex) of its bytes when planned
    options: PlanOptions
    # The contexts the plan covers: {"nip": [...], "shard": "K/N" | None}.
    selection: Mapping[str, Any] = field(default_factory=dict)


def save_plan(
    path: str | os.PathLike[str],
    plan: Plan,
    *,
    sources: Mapping[str, str],
    options: PlanOptions,
    selection: Mapping[str, Any] | None = None,
) -> None:
    """Write ``plan`` atomically: a reader never sees half a plan."""
    document = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "plan": render_json(plan),
        "sources": dict(sorted(sources.items())),
        "options": {
            "adopt": options.adopt,
            "prune": options.prune,
            "no_overlap": options.no_overlap,
            "force_rotate": [
                {"owner": owner, "context": str(context), "token": token}
                for owner, context, token in sorted(options.force_rotate)
            ],
            "adopt_match": [{"token": name, "text": text} for name, text in options.adopt_match],
            "allow_lockout": options.allow_lockout,
        },
        "selection": {
            "nip": list((selection or {}).get("nip") or []),
            "shard": (selection or {}).get("shard"),
        },
    }
    target = Path(path)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        # mkstemp creates the file 0600: a plan names tokens and paths, and stays private.
        handle, temporary = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, target)
    except OSError as error:
        raise PlanFileError(f"cannot write plan file {path}: {error.strerror or error}") from None


def load_plan(path: str | os.PathLike[str]) -> SavedPlan:
    """Read a plan saved by :func:`save_plan`; :class:`PlanFileError` on anything else."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PlanFileError(f"cannot read plan file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise PlanFileError(f"{path} is not a ksefctl plan file (not UTF-8 text)") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise PlanFileError(
            f"{path} is not a ksefctl plan file (invalid JSON at line {error.lineno})"
        ) from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise PlanFileError(f"{path} is not a ksefctl plan file")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"{path} has plan format {version!r}; this ksefctl reads format {FORMAT_VERSION!r}"
        )
    try:
        return SavedPlan(
            plan=_plan(document["plan"]),
            sources=_sources(document["sources"]),
            options=_options(document["options"]),
            selection=_selection(document.get("selection", {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise PlanFileError(f"{path} is a corrupt plan file ({_what(error)})") from None


def _selection(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError("selection must be an object")
    shard = data.get("shard")
    return {
        "nip": [as_str(n) for n in as_list(data.get("nip", []))],
        "shard": as_optional_str(shard),
    }


def _what(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _plan(data: Any) -> Plan:
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError("plan format_version does not match the file's")
    return Plan(
        changes=tuple(_change(c) for c in as_list(data["changes"])),
        notes=tuple(_note(n) for n in as_list(data["notes"])),
        fingerprint=as_str(data["fingerprint"]),
        created_at=as_time(data["created_at"]),
        kind_changes=tuple(_kind_change(c) for c in as_list(data.get("kind_changes", []))),
        kind_notes=tuple(_kind_note(n) for n in as_list(data.get("kind_notes", []))),
    )


def _kind_change(data: Any) -> KindChange:
    kind = kind_named(as_str(data["kind"]))
    if kind is None:
        raise ValueError(f"unknown kind of change {data['kind']!r}")
    return kind.from_json(
        Action[as_str(data["action"]).upper()],
        as_str(data["owner"]),
        parse_context(data["context"]),
        as_str(data["name"]),
        as_str(data["reason"]),
        data,
    )


def _kind_note(data: Any) -> KindNote:
    return KindNote(
        kind=as_str(data["kind"]),
        owner=as_str(data["owner"]),
        context=parse_context(data["context"]),
        name=as_str(data["name"]),
        text=as_str(data["text"]),
    )


def _change(data: Any) -> Change:
    secret = data["secret"]
    permissions = [as_str(p) for p in as_list(data["permissions"])]
    if permission_list(permissions) != permissions or len(set(permissions)) != len(permissions):
        raise ValueError("permissions are not a set in KSeF's order")
    return Change(
        action=Action[as_str(data["action"]).upper()],
        owner=as_str(data["owner"]),
        context=parse_context(data["context"]),
        token=as_str(data["token"]),
        reason=as_str(data["reason"]),
        reference_number=as_optional_str(data["reference_number"]),
        permissions=frozenset(permissions),
        description=as_str(data["description"]),
        secret=_secret(secret),
        delete_secret=as_bool(data["delete_secret"]),
        keep_until=as_time(data["keep_until"]),
        policy_digest=as_str(data.get("policy_digest", "")),
        moved_from=_secret(data.get("moved_from")),
    )


def _secret(data: Any) -> SecretRef | None:
    return None if data is None else SecretRef(as_str(data["mount"]), as_str(data["path"]))


def _note(data: Any) -> Note:
    return Note(
        kind=NoteKind(as_str(data["kind"])),
        owner=as_str(data["owner"]),
        context=parse_context(data["context"]),
        token=as_str(data["token"]),
        reference_number=as_str(data["reference_number"]),
        until=as_time(data["until"]),
    )


def _sources(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        raise TypeError("sources must be an object")
    return {as_str(k): as_str(v) for k, v in data.items()}


def _options(data: Any) -> PlanOptions:
    return PlanOptions(
        adopt=as_bool(data["adopt"]),
        prune=as_bool(data["prune"]),
        no_overlap=as_bool(data["no_overlap"]),
        force_rotate=frozenset(
            (as_str(f["owner"]), parse_context(f["context"]), as_str(f["token"]))
            for f in as_list(data["force_rotate"])
        ),
        adopt_match=tuple(
            (as_str(m["token"]), as_str(m["text"])) for m in as_list(data.get("adopt_match", []))
        ),
        allow_lockout=as_bool(data.get("allow_lockout", False)),
    )


# The fields of a change that decide what the executor does, in the order a
# refusal names them (``reason`` too: it becomes a secret's deletedReason).
CHANGE_FIELDS = (
    "action",
    "owner",
    "context",
    "token",
    "reference_number",
    "permissions",
    "description",
    "secret",
    "delete_secret",
    "keep_until",
    "policy_digest",
    "moved_from",
    "reason",
)


def first_difference(saved: Plan, fresh: Plan) -> str | None:
    """How ``saved`` differs from ``fresh`` in its changes, first difference only; None if equal."""
    for index, (mine, theirs) in enumerate(zip(saved.changes, fresh.changes, strict=False), 1):
        if mine != theirs:
            fields = [f for f in CHANGE_FIELDS if getattr(mine, f) != getattr(theirs, f)]
            return f"change {index} ({describe(mine)}) differs from a fresh plan in {fields[0]}"
    if len(saved.changes) > len(fresh.changes):
        extra = saved.changes[len(fresh.changes)]
        return f"change {len(fresh.changes) + 1} ({describe(extra)}) is not in a fresh plan"
    if len(saved.changes) < len(fresh.changes):
        missing = fresh.changes[len(saved.changes)]
        return f"a fresh plan also has {describe(missing)}, which the saved plan lacks"
    return _first_kind_difference(saved.kind_changes, fresh.kind_changes)


def _first_kind_difference(saved: Sequence[KindChange], fresh: Sequence[KindChange]) -> str | None:
    """The same for the other kinds' changes: every field of their dataclasses counts."""
    for index, (mine, theirs) in enumerate(zip(saved, fresh, strict=False), 1):
        if mine != theirs:
            names = [f.name for f in fields(mine)] if type(mine) is type(theirs) else ["kind"]
            differing = [n for n in names if getattr(mine, n) != getattr(theirs, n)] or ["kind"]
            return (
                f"{mine.kind} change {index} ({describe_kind(mine)}) differs from a fresh plan "
                f"in {differing[0]}"
            )
    if len(saved) > len(fresh):
        extra = saved[len(fresh)]
        return (
            f"{extra.kind} change {len(fresh) + 1} ({describe_kind(extra)}) is not in a fresh plan"
        )
    if len(saved) < len(fresh):
        missing = fresh[len(saved)]
        return f"a fresh plan also has {describe_kind(missing)}, which the saved plan lacks"
    return None


def describe_kind(change: KindChange) -> str:
    return (
        f"{change.action.value} {change.action.name.lower()} {change.kind} {change.name} "
        f"in {change.context} of {change.owner}"
    )


def describe(change: Change) -> str:
    reference = f" {change.reference_number}" if change.reference_number else ""
    return (
        f"{change.action.value} {change.action.name.lower()} {change.token}{reference} "
        f"in {change.context} of {change.owner}"
    )
