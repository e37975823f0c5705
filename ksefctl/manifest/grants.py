"""The ``grants`` section of a TokenPolicy: who may do what in each context (docs/grants.md).

``spec.defaults.grants`` apply to every context (unless it sets
``inheritDefaults: false``); ``contexts[].grants`` add to them, and an entry
for the same grantee replaces the default one.  A context reached by no
grants section at all leaves its grants ungoverned: ksefctl neither reads
nor changes them there.

One manifest entry names one grantee:

* ``person: {pesel|nip|fingerprint, firstName, lastName}`` with
  ``permissions`` or ``permissionSet`` — a person grant;
* ``entity: {nip, name}`` with ``permissions`` (InvoiceRead, InvoiceWrite;
  ``canDelegate`` for both) and/or ``authorizations`` (SelfInvoicing,
  RRInvoicing, TaxRepresentative) — an entity grant and entity
  authorizations, which KSeF keeps apart, so they become two records here.

The ownership marker ``[ksefctl owner=NAME grant]`` ends the KSeF description
of every grant ksefctl makes, as for tokens; only grants carrying this
owner's marker are ever changed without ``--adopt``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ksefctl.manifest.model import DesiredGrant, Location
from ksefctl.manifest.yaml_safe import Document, Path
from ksefctl.vocabulary import nip_problem

MIN_DESCRIPTION = 5  # KSeF's limits on a grant's description
MAX_DESCRIPTION = 256
INVOICE_PERMISSIONS = ("InvoiceRead", "InvoiceWrite")
AUTHORIZATIONS = ("SelfInvoicing", "RRInvoicing", "TaxRepresentative")
# What a person may be granted (PersonPermissionType): the token permissions.
_FINGERPRINT = re.compile(r"^[0-9A-Fa-f]{64}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MARKER = re.compile(r"(?:^| )\[ksefctl owner=([a-z0-9][a-z0-9-]{0,62}) grant\]\Z")

Issue = Callable[[Document, Path, str], None]


def marker(owner: str) -> str:
    return f"[ksefctl owner={owner} grant]"


def encode(description: str, owner: str) -> str:
    """The KSeF description of a grant: the user's text, a space, the marker."""
    text = description.strip()
    return f"{text} {marker(owner)}" if text else marker(owner)


def owner_of(description: str) -> str | None:
    """The owner named by the marker ending ``description``; None for a foreign grant."""
    found = _MARKER.search(description)
    return found.group(1) if found else None


def user_text(description: str) -> str:
    found = _MARKER.search(description)
    return description if found is None else description[: found.start()]


def max_user_description(owner: str) -> int:
    return MAX_DESCRIPTION - len(marker(owner)) - 1


def pesel_problem(pesel: str) -> str | None:
    if not re.fullmatch(r"\d{11}", pesel):
        return "must be 11 digits (a PESEL)"
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    check = (10 - sum(int(d) * w for d, w in zip(pesel, weights, strict=False)) % 10) % 10
    if check != int(pesel[10]):
        return f"{pesel} is not a valid PESEL (check digit)"
    return None


@dataclass(frozen=True)
class GrantKey:
    kind: str
    subject_type: str
    subject: str


def key_of(grant: DesiredGrant) -> GrantKey:
    return GrantKey(grant.kind, grant.subject_type, grant.subject)


def parse_grants(
    issue: Issue,
    document: Document,
    base: Path,
    raws: Sequence[Mapping[str, Any]],
    owner: str,
    permission_sets: Mapping[str, frozenset[str]],
) -> dict[GrantKey, DesiredGrant]:
    """The grants of one list (``defaults.grants`` or ``contexts[].grants``), by grantee."""
    found: dict[GrantKey, DesiredGrant] = {}
    seen: dict[GrantKey, Location] = {}
    for index, raw in enumerate(raws):
        path = (*base, index)
        for grant in _entry(issue, document, path, raw, owner, permission_sets):
            key = key_of(grant)
            first = seen.setdefault(key, document.at(path))
            if first != document.at(path):
                issue(
                    document,
                    path,
                    f"duplicate grant to {grant.grantee} (first at {first}); "
                    "list all its permissions in one entry",
                )
                continue
            found[key] = grant
    return found


def merge(
    defaults: Mapping[GrantKey, DesiredGrant] | None,
    own: Mapping[GrantKey, DesiredGrant] | None,
    inherit: bool,
) -> tuple[DesiredGrant, ...] | None:
    """A context's grants: the defaults (if inherited), then its own by grantee; None if no
    grants section reaches the context."""
    inherited = defaults if inherit else None
    if inherited is None and own is None:
        return None
    merged = dict(inherited or {})
    merged.update(own or {})
    return tuple(
        merged[k] for k in sorted(merged, key=lambda k: (k.kind, k.subject_type, k.subject))
    )


def _entry(
    issue: Issue,
    document: Document,
    path: Path,
    raw: Mapping[str, Any],
    owner: str,
    permission_sets: Mapping[str, frozenset[str]],
) -> list[DesiredGrant]:
    problems: list[tuple[Path, str]] = []
    description = str(raw.get("description", "")).strip()
    limit = max_user_description(owner)
    if len(description) > limit:
        problems.append(
            (
                (*path, "description"),
                f"is {len(description)} characters; at most {limit} fit beside the ownership "
                "marker (KSeF allows 256 in total)",
            )
        )
    if "[ksefctl" in description.lower():
        problems.append(
            ((*path, "description"), "must not contain an ownership marker ([ksefctl …])")
        )
    expires = _expires(raw, path, problems)
    permissions = _permissions(raw, path, permission_sets, problems)
    grants: list[DesiredGrant] = []
    common = {"description": description, "expires": expires, "location": document.at(path)}
    if "person" in raw:
        person = raw["person"]
        for extra in ("authorizations", "canDelegate"):
            if raw.get(extra):
                problems.append(((*path, extra), "is for entity grants, not persons"))
        if permissions is None:
            problems.append((path, "a person grant needs permissions or permissionSet"))
        subject = _person_subject(person, (*path, "person"), problems)
        if subject is not None and permissions:
            subject_type, value, identifier = subject
            grants.append(
                DesiredGrant(
                    kind="person",
                    subject_type=subject_type,
                    subject=value,
                    permissions=permissions,
                    first_name=person["firstName"],
                    last_name=person["lastName"],
                    person_identifier=identifier,
                    **common,  # type: ignore[arg-type]
                )
            )
    else:
        entity = raw["entity"]
        nip = entity["nip"]
        problem = nip_problem(nip)
        if problem:
            problems.append(((*path, "entity", "nip"), problem))
        authorizations = raw.get("authorizations")
        if permissions is None and authorizations is None:
            problems.append((path, "an entity grant needs permissions and/or authorizations"))
        if permissions is not None:
            wrong = sorted(permissions - set(INVOICE_PERMISSIONS))
            if wrong:
                where = "permissionSet" if "permissionSet" in raw else "permissions"
                problems.append(
                    (
                        (*path, where),
                        f"an entity may be given only InvoiceRead and InvoiceWrite, not "
                        f"{', '.join(wrong)}",
                    )
                )
            elif not problem:
                grants.append(
                    DesiredGrant(
                        kind="entity",
                        subject_type="Nip",
                        subject=nip,
                        permissions=permissions,
                        can_delegate=bool(raw.get("canDelegate", False)),
                        entity_name=entity["name"],
                        **common,  # type: ignore[arg-type]
                    )
                )
        elif raw.get("canDelegate"):
            problems.append(((*path, "canDelegate"), "applies to permissions, and none are given"))
        if authorizations is not None and not problem:
            grants.append(
                DesiredGrant(
                    kind="authorization",
                    subject_type="Nip",
                    subject=nip,
                    permissions=frozenset(authorizations),
                    entity_name=entity["name"],
                    **common,  # type: ignore[arg-type]
                )
            )
    for at, message in problems:
        issue(document, at, message)
    return [] if problems else grants


def _expires(raw: Mapping[str, Any], path: Path, problems: list[tuple[Path, str]]) -> date | None:
    text = raw.get("expires")
    if text is None:
        return None
    try:
        if not _DATE.match(str(text)):
            raise ValueError
        return date.fromisoformat(str(text))
    except ValueError:
        problems.append(((*path, "expires"), f"must be a date YYYY-MM-DD, not {text!r}"))
        return None


def _permissions(
    raw: Mapping[str, Any],
    path: Path,
    permission_sets: Mapping[str, frozenset[str]],
    problems: list[tuple[Path, str]],
) -> frozenset[str] | None:
    if "permissionSet" in raw:
        if "permissions" in raw:
            problems.append(
                ((*path, "permissionSet"), "set permissions or permissionSet, not both")
            )
        name = raw["permissionSet"]
        if name not in permission_sets:
            known = ", ".join(sorted(permission_sets)) or "none"
            problems.append(
                ((*path, "permissionSet"), f"unknown permission set {name!r} (known: {known})")
            )
            return frozenset()
        return permission_sets[name]
    if "permissions" in raw:
        return frozenset(raw["permissions"])
    return None


def _person_subject(
    person: Mapping[str, Any], path: Path, problems: list[tuple[Path, str]]
) -> tuple[str, str, tuple[str, str] | None] | None:
    given = [k for k in ("pesel", "nip", "fingerprint") if k in person]
    pesel, nip = person.get("pesel"), person.get("nip")
    for key, value, check in (("pesel", pesel, pesel_problem), ("nip", nip, nip_problem)):
        if value is not None:
            problem = check(value)
            if problem:
                problems.append(((*path, key), problem))
                return None
    if "fingerprint" in person:
        fingerprint = person["fingerprint"]
        if not _FINGERPRINT.match(fingerprint):
            problems.append(
                ((*path, "fingerprint"), "must be the certificate's SHA-256: 64 hex digits")
            )
            return None
        if pesel is not None and nip is not None:
            problems.append((path, "with fingerprint, give the person's pesel or nip, not both"))
            return None
        if pesel is None and nip is None:
            problems.append(
                (
                    path,
                    "a person by fingerprint needs their pesel or nip too (KSeF's subjectDetails "
                    "for a certificate without one needs identity documents ksefctl does not keep)",
                )
            )
            return None
        identifier = ("Pesel", pesel) if pesel is not None else ("Nip", str(nip))
        return "Fingerprint", fingerprint.upper(), identifier
    if len(given) != 1:
        problems.append((path, "identify the person by exactly one of pesel, nip or fingerprint"))
        return None
    if pesel is not None:
        return "Pesel", pesel, None
    return "Nip", str(nip), None
