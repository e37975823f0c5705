"""Semantic checks and expansion of schema-valid documents into the desired state.

Everything is checked in one pass over the documents with dictionaries for
the cross-references (contexts per owner, secret paths), so a manifest with
tens of thousands of contexts costs linear time.  The result is sorted by
owner, context and token name, so it does not depend on the order in which
files were given.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from ksefctl.manifest.durations import format_duration, parse_duration
from ksefctl.manifest.environment import EnvironmentProblem, resolve_environment
from ksefctl.manifest.errors import ManifestIssue
from ksefctl.manifest.grants import GrantKey, merge, parse_grants
from ksefctl.manifest.identifiers import context_of, internal_id_problem, nip_problem
from ksefctl.manifest.marker import max_user_description
from ksefctl.manifest.model import (
    AuthSpec,
    AuthTemplate,
    ContextId,
    Desired,
    DesiredContext,
    DesiredToken,
    Location,
    Policy,
    SecretRef,
)
from ksefctl.manifest.templates import (
    AUTH_PLACEHOLDERS,
    TOKEN_PLACEHOLDERS,
    placeholders,
    template_problems,
)
from ksefctl.manifest.vault_auth import VaultAuthSpec, parse_vault_auth
from ksefctl.manifest.yaml_safe import Document, Path, render_path

if TYPE_CHECKING:
    from ksefctl.manifest.certificates import CertificateExpander

CERTIFICATE_POLICY = "CertificatePolicy"  # ksefctl.manifest.certificates.KIND
DEFAULT_MOUNT = "secret"
DEFAULT_PATH = "ksef/{environment}/{nip}/{token}"


@dataclass(frozen=True)
class _Settings:
    """What every document of one owner must agree on."""

    environment: str
    base_url: str
    vault_mount: str
    vault_path_template: str
    vault_auth: VaultAuthSpec | None
    vault_moved_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Token:
    name: str
    permissions: frozenset[str]
    description: str
    rotate_every: timedelta | None
    overlap: timedelta
    revoke_if_unused_for: timedelta | None
    path: Path  # where to point errors about this token
    location: Location


@dataclass
class _Owner:
    settings: _Settings
    first: Document  # the document that defined the owner first
    location: Location
    contexts: dict[ContextId, DesiredContext] = field(default_factory=dict)


@dataclass(frozen=True)
class _Scope:
    """What the contexts of one document share."""

    document: Document
    policy: Policy  # without contexts: renders secret paths
    owner: _Owner
    permission_sets: Mapping[str, frozenset[str]]
    defaults: Mapping[str, _Token]
    default_auth: Mapping[str, Any] | None
    default_auth_ok: bool  # its templates are valid (problems are reported once)
    paths_ok: bool  # spec.vault.path is valid, so secret paths can be rendered
    default_grants: Mapping[GrantKey, Any] | None = None  # spec.defaults.grants (manifest.grants)


class Expander:
    def __init__(self) -> None:
        self.issues: list[ManifestIssue] = []
        self.owners: dict[str, _Owner] = {}
        self.context_seen: dict[tuple[str, ContextId], Location] = {}
        self.secret_seen: dict[tuple[str, str], tuple[str, ContextId, str, Location]] = {}
        # kind: CertificatePolicy, imported with the first such document (token-only
        # manifests do not pay for it at start-up).
        self.certificates: CertificateExpander | None = None

    def issue(self, document: Document, path: Path, message: str, *, key: bool = False) -> None:
        location = document.key_at(path) if key else document.at(path)
        self.issues.append(ManifestIssue(location, render_path(path), message))

    # -- one document ----------------------------------------------------

    def add(self, document: Document) -> None:
        data: Mapping[str, Any] = document.data
        if data.get("kind") == CERTIFICATE_POLICY:
            if self.certificates is None:
                from ksefctl.manifest.certificates import CertificateExpander

                self.certificates = CertificateExpander(self)
            self.certificates.add(document)
            return
        owner_name: str = data["metadata"]["name"]
        spec: Mapping[str, Any] = data["spec"]
        settings, paths_ok = self._settings(document, spec)
        owner = self._owner(document, owner_name, settings)
        policy = Policy(
            owner=owner_name,
            environment=settings.environment,
            base_url=settings.base_url,
            vault_mount=settings.vault_mount,
            vault_path_template=settings.vault_path_template,
            contexts=(),
        )
        permission_sets = {
            name: frozenset(perms) for name, perms in spec.get("permissionSets", {}).items()
        }
        default_auth = spec.get("auth")
        default_auth_ok = default_auth is None or self._auth_template(
            document, ("spec", "auth"), default_auth
        )
        defaults = self._tokens(
            document,
            ("spec", "defaults", "tokens"),
            spec.get("defaults", {}).get("tokens", []),
            owner_name,
            permission_sets,
        )
        raw_grants = spec.get("defaults", {}).get("grants")
        default_grants = (
            None
            if raw_grants is None
            else parse_grants(
                self.issue,
                document,
                ("spec", "defaults", "grants"),
                raw_grants,
                owner_name,
                permission_sets,
            )
        )
        scope = _Scope(
            document,
            policy,
            owner,
            permission_sets,
            defaults,
            default_auth,
            default_auth_ok,
            paths_ok,
            default_grants,
        )
        for index, raw in enumerate(spec["contexts"]):
            self._context(scope, ("spec", "contexts", index), raw)

    def _settings(self, document: Document, spec: Mapping[str, Any]) -> tuple[_Settings, bool]:
        ksef = spec["ksef"]
        try:
            environment, base_url = resolve_environment(ksef["environment"], ksef.get("name"))
        except EnvironmentProblem as problem:
            self.issue(document, ("spec", "ksef", problem.field), str(problem))
            environment, base_url = ksef.get("name", "custom"), ksef["environment"]
        vault = spec.get("vault", {})
        template: str = vault.get("path", DEFAULT_PATH)
        problems = template_problems(template, TOKEN_PLACEHOLDERS)
        if not problems:
            used = placeholders(template)
            if "token" not in used or not used & {"nip", "context"}:
                problems.append(
                    "must contain {token} and {nip} or {context}, or different tokens would share one secret"
                )
        for text in problems:
            self.issue(document, ("spec", "vault", "path"), text)
        moved: list[str] = []
        for index, earlier in enumerate(vault.get("movedFrom", [])):
            found = template_problems(earlier, TOKEN_PLACEHOLDERS)
            if not found and ("token" not in placeholders(earlier) or earlier == template):
                found = ["must contain {token} and differ from spec.vault.path"]
            for text in found:
                self.issue(document, ("spec", "vault", "movedFrom", index), text)
            problems.extend(found)
            moved.append(earlier)
        vault_auth = parse_vault_auth(vault["auth"]) if "auth" in vault else None
        settings = _Settings(
            environment,
            base_url,
            vault.get("mount", DEFAULT_MOUNT),
            template,
            vault_auth,
            tuple(moved),
        )
        return settings, not problems

    def _owner(self, document: Document, name: str, settings: _Settings) -> _Owner:
        location = document.at(("metadata", "name"))
        owner = self.owners.get(name)
        if owner is None:
            owner = self.owners[name] = _Owner(settings, document, location)
            return owner
        if owner.settings != settings:
            self.issue(
                document,
                ("metadata", "name"),
                f"owner {name} is also defined at {owner.location} with different spec.ksef or "
                "spec.vault settings; documents of one owner must agree on them",
            )
        owner.location = min(owner.location, location, key=lambda at: (at.file, at.line, at.column))
        return owner

    def _auth_template(self, document: Document, path: Path, raw: Mapping[str, Any]) -> bool:
        ok = True
        for method, block in raw.items():
            for problem in template_problems(block["vault"], AUTH_PLACEHOLDERS):
                self.issue(document, (*path, method, "vault"), problem)
                ok = False
        return ok

    # -- tokens ----------------------------------------------------------

    def _tokens(
        self,
        document: Document,
        base: Path,
        raws: Sequence[Mapping[str, Any]],
        owner: str,
        permission_sets: Mapping[str, frozenset[str]],
    ) -> dict[str, _Token]:
        tokens: dict[str, _Token] = {}
        seen: dict[str, Location] = {}
        for index, raw in enumerate(raws):
            path = (*base, index)
            name: str = raw["name"]
            token = self._token(document, path, raw, owner, permission_sets)
            first = seen.setdefault(name, document.at(path))
            if first != document.at(path):
                self.issue(
                    document, (*path, "name"), f"duplicate token name {name} (first at {first})"
                )
            elif token is not None:
                tokens[name] = token
        return tokens

    def _token(
        self,
        document: Document,
        path: Path,
        raw: Mapping[str, Any],
        owner: str,
        permission_sets: Mapping[str, frozenset[str]],
    ) -> _Token | None:
        before = len(self.issues)
        name: str = raw["name"]
        if "permissionSet" in raw:
            set_name = raw["permissionSet"]
            permissions = permission_sets.get(set_name, frozenset())
            if set_name not in permission_sets:
                known = sorted(permission_sets)
                hint = difflib.get_close_matches(set_name, known, n=1)
                detail = (
                    f"did you mean {hint[0]}?" if hint else "known: " + (", ".join(known) or "none")
                )
                self.issue(
                    document,
                    (*path, "permissionSet"),
                    f"unknown permission set {set_name!r} ({detail})",
                )
        else:
            permissions = frozenset(raw["permissions"])
        description: str = raw.get("description", "").strip()
        limit = max_user_description(owner, name)
        if len(description) > limit:
            self.issue(
                document,
                (*path, "description"),
                f"is {len(description)} characters; at most {limit} fit beside the ownership "
                "marker (KSeF allows 256 in total)",
            )
        if "[ksefctl" in description.lower():
            self.issue(
                document,
                (*path, "description"),
                "must not contain an ownership marker ([ksefctl …])",
            )
        rotate = self._duration(document, path, raw, "rotateEvery")
        overlap = self._duration(document, path, raw, "overlap", allow_zero=True)
        unused = self._duration(document, path, raw, "revokeIfUnusedFor")
        if rotate is not None and overlap is not None and overlap >= rotate:
            self.issue(
                document,
                (*path, "overlap"),
                f"must be shorter than rotateEvery ({format_duration(rotate)})",
            )
        if len(self.issues) > before:
            return None
        return _Token(
            name=name,
            permissions=permissions,
            description=description,
            rotate_every=rotate,
            overlap=overlap or timedelta(0),
            revoke_if_unused_for=unused,
            path=path,
            location=document.at(path),
        )

    def _duration(
        self,
        document: Document,
        path: Path,
        raw: Mapping[str, Any],
        key: str,
        *,
        allow_zero: bool = False,
    ) -> timedelta | None:
        text = raw.get(key)
        if text is None:
            return timedelta(0) if allow_zero else None
        try:
            value = parse_duration(text)
        except ValueError as error:
            self.issue(document, (*path, key), str(error))
            return None
        if not allow_zero and value <= timedelta(0):
            self.issue(document, (*path, key), "must be longer than zero")
            return None
        return value

    # -- contexts --------------------------------------------------------

    def _context(self, scope: _Scope, path: Path, raw: Mapping[str, Any]) -> None:
        document, policy = scope.document, scope.policy
        nip, internal_id = raw.get("nip"), raw.get("internalId")
        id_path = (*path, "nip" if nip is not None else "internalId")
        problem = nip_problem(nip) if nip is not None else internal_id_problem(internal_id or "")
        if problem is not None:
            self.issue(document, id_path, problem)
            return
        context = context_of(nip, internal_id)
        location = document.at(path)
        own = self._tokens(
            document, (*path, "tokens"), raw.get("tokens", []), policy.owner, scope.permission_sets
        )
        seen_key = (policy.owner, context)
        first = self.context_seen.get(seen_key)
        if first is not None:
            self.issue(
                document,
                id_path,
                f"duplicate context {context} for owner {policy.owner} (first at {first})",
            )
            return
        self.context_seen[seen_key] = document.at(id_path)

        merged: dict[str, _Token] = {}
        if raw.get("inheritDefaults", True):
            # Inherited tokens are blamed on the context: that is where a collision lives.
            merged.update({name: _with_path(token, path) for name, token in scope.defaults.items()})
        merged.update(own)

        own_grants = (
            None
            if raw.get("grants") is None
            else parse_grants(
                self.issue,
                document,
                (*path, "grants"),
                raw["grants"],
                policy.owner,
                scope.permission_sets,
            )
        )
        grants = merge(scope.default_grants, own_grants, raw.get("inheritDefaults", True))
        auth = self._auth(scope, path, raw, context)
        if not scope.paths_ok:
            return  # secret paths cannot be rendered; the template's problems are reported
        tokens = []
        for name in sorted(merged):
            token = merged[name]
            secret = policy.secret_for(context, name)
            self._claim_secret(document, token, secret, policy.owner, context)
            tokens.append(
                DesiredToken(
                    owner=policy.owner,
                    context=context,
                    name=name,
                    permissions=token.permissions,
                    description=token.description,
                    secret=secret,
                    rotate_every=token.rotate_every,
                    overlap=token.overlap,
                    revoke_if_unused_for=token.revoke_if_unused_for,
                    location=token.location,
                )
            )
        if auth is None:
            return
        scope.owner.contexts[context] = DesiredContext(
            owner=policy.owner,
            context=context,
            environment=policy.environment,
            base_url=policy.base_url,
            auth=auth,
            tokens=tuple(tokens),
            location=location,
            name=raw.get("name"),
            grants=grants,
        )

    def _auth(
        self, scope: _Scope, path: Path, raw: Mapping[str, Any], context: ContextId
    ) -> AuthSpec | None:
        policy = scope.policy
        auth_raw = raw.get("auth")
        if auth_raw is not None:
            if not self._auth_template(scope.document, (*path, "auth"), auth_raw):
                return None
        elif not scope.default_auth_ok:
            return None
        else:
            auth_raw = scope.default_auth
        if auth_raw is None:
            self.issue(scope.document, path, "no auth: set spec.auth, or auth in this context")
            return None
        method: Literal["certificate", "ksefToken"] = (
            "certificate" if "certificate" in auth_raw else "ksefToken"
        )
        block = auth_raw[method]
        secret_path = block["vault"].format(
            environment=policy.environment,
            nip=context.nip,
            context=context.value,
            owner=policy.owner,
        )
        return AuthSpec(
            method=method,
            secret=SecretRef(block.get("mount", policy.vault_mount), secret_path),
            subject_identifier_type=block.get("subjectIdentifierType", "certificateSubject"),
        )

    def _claim_secret(
        self, document: Document, token: _Token, secret: SecretRef, owner: str, context: ContextId
    ) -> None:
        key = (secret.mount, secret.path)
        holder = self.secret_seen.get(key)
        if holder is None:
            self.secret_seen[key] = (owner, context, token.name, token.location)
            return
        other_owner, other_context, other_name, at = holder
        self.issue(
            document,
            (*token.path, "name") if token.path[-2:-1] == ("tokens",) else token.path,
            f"secret path {secret} is also used by token {other_name} of {other_context} "
            f"(owner {other_owner}, at {at}); include {{owner}}, {{context}} or {{token}} in spec.vault.path",
        )

    # -- result ----------------------------------------------------------

    def finish(self) -> list[ManifestIssue]:
        """Cross-kind checks once every document is in; every issue found."""
        if self.certificates is None:
            return self.issues
        self.certificates.finish(
            lambda environment, base_url, mount, vault_auth, document, location: _Owner(
                _Settings(environment, base_url, mount, DEFAULT_PATH, vault_auth),
                document,
                location,
            )
        )
        return self.issues

    def desired(self) -> Desired:
        self.finish()
        policies = []
        for name in sorted(self.owners):
            owner = self.owners[name]
            settings = owner.settings
            policies.append(
                Policy(
                    owner=name,
                    environment=settings.environment,
                    base_url=settings.base_url,
                    vault_mount=settings.vault_mount,
                    vault_path_template=settings.vault_path_template,
                    contexts=tuple(owner.contexts[c] for c in sorted(owner.contexts)),
                    location=owner.location,
                    vault_auth=settings.vault_auth,
                    auth_template=_auth_template(owner.first, settings),
                    vault_moved_from=settings.vault_moved_from,
                )
            )
        return Desired(tuple(policies))


def _auth_template(document: Document, settings: _Settings) -> AuthTemplate | None:
    """The owner's ``spec.auth`` (from its first document), for contexts that left the manifest."""
    raw = document.data["spec"].get("auth")
    if raw is None:
        return None
    method: Literal["certificate", "ksefToken"] = (
        "certificate" if "certificate" in raw else "ksefToken"
    )
    block = raw[method]
    return AuthTemplate(
        method=method,
        mount=block.get("mount", settings.vault_mount),
        path=block["vault"],
        subject_identifier_type=block.get("subjectIdentifierType", "certificateSubject"),
    )


def _with_path(token: _Token, path: Path) -> _Token:
    return _Token(
        token.name, token.permissions, token.description, token.rotate_every, token.overlap,
        token.revoke_if_unused_for, path, token.location,
    )  # fmt: skip
