"""The desired state: what manifests ask for, resolved and immutable.

The loader (``ksefctl.manifest.load``) turns YAML into these records: defaults
and permission sets are resolved, Vault paths rendered, and every token of
every context of every owner appears exactly once.  Everything downstream
(planner, executor, status) reads only these types, never raw YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from ksefctl.manifest.vault_auth import VaultAuthSpec

# Defined below every layer; re-exported here for the code that imports them from the manifest.
from ksefctl.vocabulary import ContextId as ContextId
from ksefctl.vocabulary import ContextType as ContextType
from ksefctl.vocabulary import SecretRef as SecretRef

# KSeF's TokenPermissionType, in the order the web application lists them.
PERMISSIONS: tuple[str, ...] = (
    "InvoiceRead",
    "InvoiceWrite",
    "CredentialsRead",
    "CredentialsManage",
    "SubunitManage",
    "EnforcementOperations",
    "Introspection",
)


@dataclass(frozen=True)
class Location:
    """Where in which file a value was written (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class AuthSpec:
    """How ksefctl logs into one context.

    ``certificate``: the secret holds ``certificate`` and ``privateKey`` (PEM),
    optionally ``password``; or ``pkcs12`` (base64) with ``password``.
    ``ksefToken``: the secret holds ``token``.
    """

    method: Literal["certificate", "ksefToken"]
    secret: SecretRef
    subject_identifier_type: Literal["certificateSubject", "certificateFingerprint"] = (
        "certificateSubject"
    )


@dataclass(frozen=True)
class AuthTemplate:
    """``spec.auth`` before it is rendered for one context (placeholders as in AuthSpec paths).

    Kept on :class:`Policy` so that ``apply --prune`` can log into contexts that
    have left the manifest and are known only from the owner's Vault secrets.
    """

    method: Literal["certificate", "ksefToken"]
    mount: str
    path: str  # placeholders: {environment} {nip} {context} {owner}
    subject_identifier_type: Literal["certificateSubject", "certificateFingerprint"] = (
        "certificateSubject"
    )


@dataclass(frozen=True)
class Marker:
    """The ownership marker ksefctl writes into a token's KSeF description.

    ``nonce`` is unique per creation, so a token whose ``POST /tokens`` ended
    ambiguously can be found again by it.
    """

    owner: str
    token: str
    nonce: str


@dataclass(frozen=True)
class DesiredToken:
    owner: str
    context: ContextId
    name: str
    permissions: frozenset[str]
    description: str  # the user's text; the ownership marker is appended at creation
    secret: SecretRef
    rotate_every: timedelta | None = None
    overlap: timedelta = timedelta(0)
    revoke_if_unused_for: timedelta | None = None
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DesiredGrant:
    """One grantee's permissions in one context (``grants`` in a TokenPolicy, docs/grants.md).

    ``kind``: ``person`` (``POST /permissions/persons/grants``), ``entity``
    (invoice permissions for a company, ``can_delegate`` per grantee) or
    ``authorization`` (SelfInvoicing, RRInvoicing, TaxRepresentative).  KSeF
    keeps one record per permission; the grantee is identified by
    ``subject_type``/``subject`` (Pesel, Nip, Fingerprint).
    """

    kind: Literal["person", "entity", "authorization"]
    subject_type: str
    subject: str
    permissions: frozenset[str]
    description: str  # the user's text; the ownership marker is appended when granting
    can_delegate: bool = False
    first_name: str = ""  # person: KSeF's subjectDetails
    last_name: str = ""
    person_identifier: tuple[str, str] | None = None  # person by fingerprint: (Pesel|Nip, value)
    entity_name: str = ""  # entity and authorization: subjectDetails.fullName
    expires: date | None = None  # revoked once this day has passed (UTC)
    location: Location | None = field(default=None, compare=False)

    @property
    def grantee(self) -> str:
        """How plans name the grantee: ``person Pesel:15062788702``."""
        return f"{self.kind} {self.subject_type}:{self.subject}"


@dataclass(frozen=True)
class DesiredCertificate:
    """One KSeF certificate a ``CertificatePolicy`` keeps for the subject of a context.

    ``renew_before``: a successor is enrolled once ``validTo - renew_before``
    has passed; ``overlap``: how long the superseded certificate stays valid
    after its successor is stored.  ``valid_from`` asks KSeF to start the
    validity later than issuance.
    """

    owner: str
    context: ContextId
    name: str
    type: Literal["Authentication", "Offline"]
    key_algorithm: Literal["ec-p256", "rsa-2048"]
    secret: SecretRef
    renew_before: timedelta
    overlap: timedelta = timedelta(0)
    valid_from: datetime | None = None
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DesiredCertificates:
    """What a ``CertificatePolicy`` declares for one context, and where the secrets go.

    The path template stays here so that the secret of a certificate no longer
    declared (known only from its ownership marker) can be found and deleted.
    """

    items: tuple[DesiredCertificate, ...]  # sorted by name
    vault_mount: str
    vault_path_template: str  # placeholders: {environment} {nip} {context} {certificate} {owner}

    def secret_for(
        self, owner: str, environment: str, context: ContextId, certificate: str
    ) -> SecretRef:
        path = self.vault_path_template.format(
            environment=environment,
            nip=context.nip,
            context=context.value,
            certificate=certificate,
            owner=owner,
        )
        return SecretRef(self.vault_mount, path)

    def named(self, name: str) -> DesiredCertificate | None:
        return next((c for c in self.items if c.name == name), None)


@dataclass(frozen=True)
class DesiredContext:
    owner: str
    context: ContextId
    environment: str  # the name used in paths: test | demo | prod | spec.ksef.name
    base_url: str  # e.g. https://api-test.ksef.mf.gov.pl/v2
    auth: AuthSpec
    tokens: tuple[DesiredToken, ...]  # sorted by name
    location: Location | None = field(default=None, compare=False)
    name: str | None = field(default=None, compare=False)  # contexts[].name, for people only
    # None: no CertificatePolicy declares this context (its certificates are not observed).
    certificates: DesiredCertificates | None = None
    # False: only other kinds declare this context; its tokens are neither observed nor changed.
    token_policy: bool = True
    # None: no grants section reaches this context, so its grants are not governed (nor observed).
    grants: tuple[DesiredGrant, ...] | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds besides tokens this context declares (``ksefctl.reconcile.kinds``)."""
        declared = {"grants": self.grants is not None, "certificate": self.certificates is not None}
        return tuple(name for name, present in declared.items() if present)


@dataclass(frozen=True)
class Policy:
    """One ``TokenPolicy`` manifest (one owner), fully resolved."""

    owner: str
    environment: str
    base_url: str
    vault_mount: str
    vault_path_template: str  # placeholders: {environment} {nip} {context} {token} {owner}
    contexts: tuple[DesiredContext, ...]  # sorted by context
    location: Location | None = field(default=None, compare=False)
    vault_auth: VaultAuthSpec | None = None  # spec.vault.auth; None: VAULT_TOKEN
    auth_template: AuthTemplate | None = None  # spec.auth; None when every context sets its own
    # spec.vault.movedFrom: earlier path templates, whose secrets are moved to vault_path_template.
    vault_moved_from: tuple[str, ...] = ()

    def auth_for(self, context: ContextId) -> AuthSpec | None:
        """How to log into ``context`` by ``spec.auth`` (also for contexts no longer declared)."""
        template = self.auth_template
        if template is None:
            return None
        path = template.path.format(
            environment=self.environment, nip=context.nip, context=context.value, owner=self.owner
        )
        return AuthSpec(
            template.method, SecretRef(template.mount, path), template.subject_identifier_type
        )

    def moved_from(self, context: ContextId, token: str) -> tuple[SecretRef, ...]:
        """Where ``spec.vault.movedFrom`` says the secret of ``token`` may still be."""
        return tuple(
            SecretRef(self.vault_mount, self._render(template, context, token))
            for template in self.vault_moved_from
        )

    def _render(self, template: str, context: ContextId, token: str) -> str:
        return template.format(
            environment=self.environment,
            nip=context.nip,
            context=context.value,
            token=token,
            owner=self.owner,
        )

    def secret_for(self, context: ContextId, token: str) -> SecretRef:
        """Where the secret of ``token`` in ``context`` lives (also for undeclared names)."""
        return SecretRef(self.vault_mount, self._render(self.vault_path_template, context, token))


@dataclass(frozen=True)
class Desired:
    policies: tuple[Policy, ...]  # sorted by owner

    @property
    def contexts(self) -> tuple[DesiredContext, ...]:
        return tuple(c for p in self.policies for c in p.contexts)
