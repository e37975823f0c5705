"""``kind: CertificatePolicy``: the certificate ownership marker and the expander.

A CertificatePolicy declares, per context, the KSeF certificates the subject
that logs in there should hold (docs/certificates.md).  Its documents are
checked here and folded into the same :class:`~ksefctl.manifest.model.Policy`
per owner as the TokenPolicy documents: a context both kinds declare for one
owner is one :class:`DesiredContext` (one login, so their ``auth`` must be
the same), and a context only a CertificatePolicy declares has
``token_policy=False`` so its tokens are left alone.

The ownership marker lives in KSeF's ``certificateName`` (5..100 characters
of letters, digits, ``_``, ``-`` and spaces — no brackets or ``=``)::

    login ksefctl_acme-group_5265877635_k7f3m2q4xa

the certificate name, then ``ksefctl_<owner>_<context>_<nonce>``.  Owners
never contain ``_``, so the fields split unambiguously; the context is in it
because certificates belong to the subject that logs in, and one subject
(a person, an accounting office's seal) may log into several contexts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from ksefctl.manifest.durations import format_duration, parse_duration
from ksefctl.manifest.environment import EnvironmentProblem, resolve_environment
from ksefctl.manifest.identifiers import context_of, internal_id_problem, nip_problem
from ksefctl.manifest.marker import new_nonce
from ksefctl.manifest.model import (
    AuthSpec,
    ContextId,
    DesiredCertificate,
    DesiredCertificates,
    DesiredContext,
    Location,
    SecretRef,
)
from ksefctl.manifest.templates import placeholders, template_problems
from ksefctl.manifest.vault_auth import VaultAuthSpec, parse_vault_auth
from ksefctl.manifest.yaml_safe import Document, Path

KIND = "CertificatePolicy"
DEFAULT_MOUNT = "secret"
DEFAULT_PATH = "ksef-certs/{environment}/{nip}/{certificate}"
CERTIFICATE_PLACEHOLDERS = frozenset({"environment", "nip", "context", "certificate", "owner"})
DEFAULT_RENEW_BEFORE = timedelta(days=30)

# KSeF's certificateName: 5..100 characters (EnrollCertificateRequest).
MIN_NAME = 5
MAX_NAME = 100
_NAME = r"[a-z0-9][a-z0-9_-]{0,62}"
_OWNER = r"[a-z0-9][a-z0-9-]{0,62}"
_CONTEXT = r"[0-9]{10}(?:-[0-9]{5})?"
_NONCE = r"[a-z2-7]{10}"
_MARKER = re.compile(
    rf"(?P<name>{_NAME}) ksefctl_(?P<owner>{_OWNER})_(?P<context>{_CONTEXT})_(?P<nonce>{_NONCE})"
)


@dataclass(frozen=True)
class CertificateMarker:
    """Who made a certificate, for which context, under which name, at which creation."""

    name: str
    owner: str
    context: str  # the context's value: a NIP or an InternalId
    nonce: str

    def render(self) -> str:
        return f"{self.name} ksefctl_{self.owner}_{self.context}_{self.nonce}"


def certificate_name(name: str, owner: str, context: ContextId, nonce: str | None = None) -> str:
    """The certificateName of a new certificate (a fresh nonce unless one is given).

    Raises ``ValueError`` for anything :func:`decode` would not read back.
    """
    text = CertificateMarker(name, owner, context.value, nonce or new_nonce()).render()
    if decode(text) is None:
        raise ValueError("certificate name, owner or context is not in the marker alphabet")
    return text


def decode(certificate_name: str) -> CertificateMarker | None:
    """The marker a certificateName carries; None for a name ksefctl did not write."""
    if len(certificate_name) > MAX_NAME:
        return None
    match = _MARKER.fullmatch(certificate_name)
    if match is None:
        return None
    return CertificateMarker(**match.groupdict())


def name_problem(name: str, owner: str, context: ContextId) -> str | None:
    """Why ``name`` does not fit KSeF's certificateName beside the marker; None if it does."""
    length = len(CertificateMarker(name, owner, context.value, "a" * 10).render())
    if length > MAX_NAME:
        room = MAX_NAME - (length - len(name))
        return (
            f"is too long: with the ownership marker (owner {owner}, context {context.value}) "
            f"KSeF's certificateName would have {length} characters, at most {MAX_NAME} fit; "
            f"use at most {max(room, 0)} characters or a shorter owner"
        )
    return None


# -- the expander ---------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    environment: str
    base_url: str
    vault_auth: VaultAuthSpec | None
    mount: str
    template: str


@dataclass(frozen=True)
class _Certificate:
    name: str
    type: Literal["Authentication", "Offline"]
    key_algorithm: Literal["ec-p256", "rsa-2048"]
    valid_from: datetime | None
    renew_before: timedelta
    overlap: timedelta
    location: Location


@dataclass
class _Context:
    document: Document
    path: Path
    auth: AuthSpec
    certificates: DesiredCertificates
    name: str | None
    location: Location


@dataclass
class _Owner:
    settings: _Settings
    document: Document
    location: Location
    contexts: dict[ContextId, _Context] = field(default_factory=dict)


class _Host(Protocol):
    """What this module uses of ``expand.Expander`` (the TokenPolicy expander)."""

    owners: dict[str, Any]  # owner → expand._Owner: .settings, .location, .contexts
    secret_seen: dict[tuple[str, str], tuple[str, ContextId, str, Location]]

    def issue(self, document: Document, path: Path, message: str, *, key: bool = False) -> None: ...

    def _auth_template(self, document: Document, path: Path, raw: Mapping[str, Any]) -> bool: ...


# (environment, base URL, vault mount, vault auth, first document, location) → expand._Owner
NewOwner = Callable[[str, str, str, VaultAuthSpec | None, Document, Location], Any]


class CertificateExpander:
    """Collects CertificatePolicy documents; :meth:`finish` folds them into the Expander."""

    def __init__(self, expander: _Host) -> None:
        self.expander = expander
        self.owners: dict[str, _Owner] = {}
        self.finished = False

    def add(self, document: Document) -> None:
        issue = self.expander.issue
        data: Mapping[str, Any] = document.data
        owner_name: str = data["metadata"]["name"]
        spec: Mapping[str, Any] = data["spec"]
        settings, paths_ok = self._settings(document, spec)
        owner = self.owners.get(owner_name)
        if owner is None:
            owner = self.owners[owner_name] = _Owner(
                settings, document, document.at(("metadata", "name"))
            )
        elif owner.settings != settings:
            issue(
                document,
                ("metadata", "name"),
                f"owner {owner_name} is also defined by a CertificatePolicy at {owner.location} "
                "with different spec.ksef or spec.vault settings; they must agree",
            )
            return
        default_auth = spec.get("auth")
        if default_auth is not None and not self.expander._auth_template(
            document, ("spec", "auth"), default_auth
        ):
            return
        defaults = self._certificates(
            document, ("spec", "defaults", "certificates"), spec.get("defaults", {})
        )
        for index, raw in enumerate(spec["contexts"]):
            path: Path = ("spec", "contexts", index)
            self._context(document, path, raw, owner_name, owner, defaults, paths_ok)

    def _settings(self, document: Document, spec: Mapping[str, Any]) -> tuple[_Settings, bool]:
        issue = self.expander.issue
        ksef = spec["ksef"]
        try:
            environment, base_url = resolve_environment(ksef["environment"], ksef.get("name"))
        except EnvironmentProblem as problem:
            issue(document, ("spec", "ksef", problem.field), str(problem))
            environment, base_url = ksef.get("name", "custom"), ksef["environment"]
        vault = spec.get("vault", {})
        template: str = vault.get("path", DEFAULT_PATH)
        problems = template_problems(template, CERTIFICATE_PLACEHOLDERS)
        if not problems:
            used = placeholders(template)
            if "certificate" not in used or not used & {"nip", "context"}:
                problems.append(
                    "must contain {certificate} and {nip} or {context}, "
                    "or different certificates would share one secret"
                )
        for text in problems:
            issue(document, ("spec", "vault", "path"), text)
        vault_auth = parse_vault_auth(vault["auth"]) if "auth" in vault else None
        settings = _Settings(
            environment, base_url, vault_auth, vault.get("mount", DEFAULT_MOUNT), template
        )
        return settings, not problems

    def _certificates(
        self, document: Document, base: Path, holder: Mapping[str, Any]
    ) -> dict[str, _Certificate]:
        found: dict[str, _Certificate] = {}
        seen: dict[str, Location] = {}
        for index, raw in enumerate(holder.get("certificates", [])):
            path = (*base, index)
            name: str = raw["name"]
            first = seen.setdefault(name, document.at(path))
            if first != document.at(path):
                self.expander.issue(
                    document,
                    (*path, "name"),
                    f"duplicate certificate name {name} (first at {first})",
                )
                continue
            certificate = self._certificate(document, path, raw)
            if certificate is not None:
                found[name] = certificate
        return found

    def _certificate(
        self, document: Document, path: Path, raw: Mapping[str, Any]
    ) -> _Certificate | None:
        issue = self.expander.issue
        ok = True
        renew_before = DEFAULT_RENEW_BEFORE
        overlap = timedelta(0)
        for key in ("renewBefore", "overlap"):
            if key not in raw:
                continue
            try:
                value = parse_duration(raw[key])
            except ValueError as error:
                issue(document, (*path, key), str(error))
                ok = False
                continue
            if key == "renewBefore":
                if value <= timedelta(0):
                    issue(document, (*path, key), "must be longer than zero")
                    ok = False
                renew_before = value
            else:
                overlap = value
        if ok and overlap >= renew_before:
            issue(
                document,
                (*path, "overlap"),
                f"must be shorter than renewBefore ({format_duration(renew_before)})",
            )
            ok = False
        valid_from = None
        if "validFrom" in raw:
            try:
                valid_from = datetime.fromisoformat(raw["validFrom"].replace("Z", "+00:00"))
            except ValueError:
                valid_from = None
            if valid_from is None or valid_from.tzinfo is None:
                issue(document, (*path, "validFrom"), "must be an RFC 3339 time with a time zone")
                ok = False
        if not ok:
            return None
        return _Certificate(
            name=raw["name"],
            type=raw.get("type", "Authentication"),
            key_algorithm=raw.get("keyAlgorithm", "ec-p256"),
            valid_from=valid_from,
            renew_before=renew_before,
            overlap=overlap,
            location=document.at(path),
        )

    def _context(
        self,
        document: Document,
        path: Path,
        raw: Mapping[str, Any],
        owner_name: str,
        owner: _Owner,
        defaults: Mapping[str, _Certificate],
        paths_ok: bool,
    ) -> None:
        issue = self.expander.issue
        nip, internal_id = raw.get("nip"), raw.get("internalId")
        id_path = (*path, "nip" if nip is not None else "internalId")
        problem = nip_problem(nip) if nip is not None else internal_id_problem(internal_id or "")
        if problem is not None:
            issue(document, id_path, problem)
            return
        context = context_of(nip, internal_id)
        own = self._certificates(document, (*path, "certificates"), raw)
        first = owner.contexts.get(context)
        if first is not None:
            issue(
                document,
                id_path,
                f"duplicate context {context} in the CertificatePolicy of owner {owner_name} "
                f"(first at {first.location})",
            )
            return
        merged = dict(defaults) if raw.get("inheritDefaults", True) else {}
        merged.update(own)
        settings = owner.settings
        items: list[DesiredCertificate] = []
        for name in sorted(merged):
            spec = merged[name]
            blame = spec.location if name in own else document.at(path)
            too_long = name_problem(name, owner_name, context)
            if too_long is not None:
                where = (*path, "certificates") if name in own else path
                issue(document, where, f"certificate {name}: {too_long}")
                continue
            items.append(
                DesiredCertificate(
                    owner=owner_name,
                    context=context,
                    name=name,
                    type=spec.type,
                    key_algorithm=spec.key_algorithm,
                    secret=SecretRef("", ""),  # rendered below, once the paths are valid
                    renew_before=spec.renew_before,
                    overlap=spec.overlap,
                    valid_from=spec.valid_from,
                    location=blame,
                )
            )
        auth = self._auth(document, path, raw, context, owner_name, settings)
        if auth is None or not paths_ok:
            return
        declared = DesiredCertificates((), settings.mount, settings.template)
        rendered = tuple(
            replace(
                item,
                secret=declared.secret_for(owner_name, settings.environment, context, item.name),
            )
            for item in items
        )
        owner.contexts[context] = _Context(
            document,
            path,
            auth,
            replace(declared, items=rendered),
            raw.get("name"),
            document.at(path),
        )

    def _auth(
        self,
        document: Document,
        path: Path,
        raw: Mapping[str, Any],
        context: ContextId,
        owner: str,
        settings: _Settings,
    ) -> AuthSpec | None:
        auth_raw = raw.get("auth")
        if auth_raw is not None:
            if not self.expander._auth_template(document, (*path, "auth"), auth_raw):
                return None
        else:
            auth_raw = document.data["spec"].get("auth")
        if auth_raw is None:
            self.expander.issue(document, path, "no auth: set spec.auth, or auth in this context")
            return None
        method: Literal["certificate", "ksefToken"] = (
            "certificate" if "certificate" in auth_raw else "ksefToken"
        )
        block = auth_raw[method]
        secret_path = block["vault"].format(
            environment=settings.environment, nip=context.nip, context=context.value, owner=owner
        )
        return AuthSpec(
            method=method,
            secret=SecretRef(block.get("mount", settings.mount), secret_path),
            subject_identifier_type=block.get("subjectIdentifierType", "certificateSubject"),
        )

    # -- folding into the owners' policies ------------------------------------

    def finish(self, new_owner: NewOwner) -> None:
        """Merge every owner's certificate contexts into the Expander's owners (once)."""
        if self.finished:
            return
        self.finished = True
        expander = self.expander
        for owner_name in sorted(self.owners):
            mine = self.owners[owner_name]
            settings = mine.settings
            tokens = expander.owners.get(owner_name)
            if tokens is None:
                tokens = expander.owners[owner_name] = new_owner(
                    settings.environment,
                    settings.base_url,
                    settings.mount,
                    settings.vault_auth,
                    mine.document,
                    mine.location,
                )
            else:
                theirs = tokens.settings
                if (theirs.environment, theirs.base_url, theirs.vault_auth) != (
                    settings.environment,
                    settings.base_url,
                    settings.vault_auth,
                ):
                    expander.issue(
                        mine.document,
                        ("metadata", "name"),
                        f"owner {owner_name} is also defined by a TokenPolicy at "
                        f"{tokens.location} with a different spec.ksef or spec.vault.auth; "
                        "one owner talks to one KSeF through one Vault login",
                    )
                    continue
            for context_id, context in sorted(mine.contexts.items()):
                self._claim_secrets(context)
                existing = tokens.contexts.get(context_id)
                if existing is None:
                    tokens.contexts[context_id] = DesiredContext(
                        owner=owner_name,
                        context=context_id,
                        environment=settings.environment,
                        base_url=settings.base_url,
                        auth=context.auth,
                        tokens=(),
                        location=context.location,
                        name=context.name,
                        certificates=context.certificates,
                        token_policy=False,
                    )
                elif existing.auth != context.auth:
                    expander.issue(
                        context.document,
                        context.path,
                        f"context {context_id} logs in with {context.auth.method} "
                        f"{context.auth.secret} here but with {existing.auth.method} "
                        f"{existing.auth.secret} in the TokenPolicy of owner {owner_name} "
                        f"(at {existing.location}); one owner logs into a context one way",
                    )
                else:
                    tokens.contexts[context_id] = replace(
                        existing, certificates=context.certificates
                    )

    def _claim_secrets(self, context: _Context) -> None:
        seen = self.expander.secret_seen
        for item in context.certificates.items:
            key = (item.secret.mount, item.secret.path)
            holder = seen.get(key)
            if holder is None:
                seen[key] = (item.owner, item.context, item.name, item.location or context.location)
                continue
            other_owner, other_context, other_name, at = holder
            self.expander.issue(
                context.document,
                (*context.path, "certificates"),
                f"secret path {item.secret} of certificate {item.name} is also used by "
                f"{other_name} of {other_context} (owner {other_owner}, at {at}); include "
                "{owner}, {context} or {certificate} in spec.vault.path",
            )
