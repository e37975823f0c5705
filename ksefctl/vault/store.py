"""``VaultStore``: token secrets and login material in KV v2, on :class:`VaultClient`.

The store knows what ksefctl keeps in Vault — a token's data and its
``custom_metadata``, login material, which secrets an owner manages — and
says it in its own types (:class:`TokenSecretState`); every request goes
through the client's public methods.

Round trips per operation (each is one HTTP request):

- ``read_token_state``: 1 — a data read returns the current version's
  number, deletion/destruction state and ``custom_metadata`` too, and a
  deleted current version still answers 404 *with* that metadata.
- ``read_credentials``: 1.
- ``write_token``: 2 — the check-and-set data write (its response carries the
  path's ``custom_metadata``, so the merge needs no read) and the metadata write.
- ``update_metadata``: 2 (read, then write the merged map).
- ``soft_delete``: 3 (metadata read, delete of that exact version, metadata write).
- ``restore_version``: 3 (the old version, the check-and-set write, the metadata write).
- ``list_owner_secrets``: one LIST per folder plus one metadata read per secret.

KV v2 cannot update data and ``custom_metadata`` atomically, so the data —
which alone is guarded by check-and-set — is written first and readers trust
the data (``referenceNumber`` there) over the metadata.  ``custom_metadata``
has no check-and-set on stock Vault: concurrent merges on one path must be
serialised by the caller (``apply`` holds the owner's :meth:`VaultStore.lock`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ksefctl.retry import RetryPolicy
from ksefctl.secret import Secret
from ksefctl.vault.client import VaultClient
from ksefctl.vault.config import VaultConfig, VaultConfigError, VaultLogin
from ksefctl.vault.errors import CasConflict, VaultError, VaultNotFound
from ksefctl.vault.kv import parse_time, rfc3339
from ksefctl.vault.lock import OwnerLock
from ksefctl.vocabulary import SecretRef

MANAGED_BY = "ksefctl"
# Folder under each mount that holds ksefctl's own bookkeeping (owner locks,
# cached sessions); never reported as a token secret.
INTERNAL_PREFIX = ".ksefctl/"
# custom_metadata keys soft_delete records, cleared again when a new token is written.
DELETION_KEYS = ("deletedReason", "deletedAt", "revokedPolicy", "adoptedFrom")
# Metadata that describes one version's token; a new token's write drops it.
VERSION_KEYS = ("activatedAt", "status", "restoredFrom", "restoredReason")
# Credential shapes accepted by read_credentials when no keys are named.
CREDENTIAL_SHAPES: tuple[frozenset[str], ...] = (
    frozenset({"certificate", "privateKey"}),
    frozenset({"pkcs12"}),
    frozenset({"token"}),
)


class PartialWrite(VaultError):
    """The token was stored (at ``version``) but its custom_metadata could not be recorded."""

    def __init__(self, ref: SecretRef, version: int, cause: VaultError) -> None:
        super().__init__(
            f"the token is stored at {ref} (version {version}), "
            f"but recording its metadata failed: {cause}"
        )
        self.version = version


@dataclass(frozen=True)
class TokenSecretState:
    """What Vault holds at one token's path: metadata only, the token stays in Vault."""

    secret: SecretRef
    exists: bool  # a current, non-deleted version with a token in it
    version: int  # current version number, 0 when never written (for check-and-set)
    reference_number: str | None = None  # of the token the current version holds
    created: datetime | None = None  # createdAt of the current version
    deleted_reason: str | None = None  # custom_metadata deletedReason (why soft-deleted)
    revoked_policy: str | None = None  # custom_metadata revokedPolicy
    adopted_from: str | None = None  # custom_metadata adoptedFrom (while the secret exists)
    # custom_metadata owner when managedBy is ksefctl; None for a path nobody wrote
    # or one written by something else (see ``version`` to tell the two apart).
    owner: str | None = None
    rotation_of: str | None = None  # custom_metadata rotationOf: a forced rotation under way
    rotation_no_overlap: bool = False  # custom_metadata rotationNoOverlap == "true"


class _Policy(Protocol):
    """What :meth:`VaultStore.from_environment` reads of a manifest (``TokenPolicy``)."""

    @property
    def owner(self) -> str: ...
    @property
    def vault_mount(self) -> str: ...
    @property
    def vault_auth(self) -> object | None: ...


class _Manifests(Protocol):
    @property
    def policies(self) -> Sequence[_Policy]: ...


def template_prefix(template: str) -> str:
    """The folder of a path template that holds no placeholder: ``ksef/{environment}/…`` → ``ksef/``."""
    fixed = template.split("{", 1)[0]
    return fixed[: fixed.rfind("/") + 1]


class VaultStore:
    """Token secrets, login material and owner locks.

    Construct it without I/O, then ``async with store:`` (or ``await
    store.login()``) logs in; leaving the block closes the connection pool.
    ``client`` is the :class:`VaultClient` underneath, for the other users of
    the same connection (the session cache).
    """

    def __init__(
        self,
        config: VaultConfig | None = None,
        login: VaultLogin | None = None,
        *,
        concurrency: int = 16,
        environ: Mapping[str, str] | None = None,
        read_retry: RetryPolicy | None = None,
    ) -> None:
        self.config = config or VaultConfig.from_env(environ)
        self.client = VaultClient(
            self.config, login, concurrency=concurrency, environ=environ, read_retry=read_retry
        )
        self.lock_mounts: dict[str, str] = {}  # owner → the KV mount its lock lives in

    @classmethod
    def from_environment(
        cls,
        desired: _Manifests | None = None,
        *,
        concurrency: int = 16,
        environ: Mapping[str, str] | None = None,
    ) -> VaultStore:
        """A store configured by ``VAULT_*`` and the manifests' ``spec.vault.auth``.

        All manifests share one Vault connection, so they must agree on the
        login; each owner's lock lives in that owner's KV mount.
        """
        policies = desired.policies if desired else ()
        logins = {VaultLogin.from_spec(p.vault_auth) for p in policies if p.vault_auth}
        if len(logins) > 1:
            owners = ", ".join(p.owner for p in policies if p.vault_auth)
            raise VaultConfigError(
                f"manifests {owners} ask for different spec.vault.auth; "
                "ksefctl uses one Vault login per run"
            )
        store = cls(
            VaultConfig.from_env(environ),
            next(iter(logins), None),
            concurrency=concurrency,
            environ=environ,
        )
        store.lock_mounts = {p.owner: p.vault_mount for p in policies}
        return store

    def __repr__(self) -> str:
        return (
            f"VaultStore(address={self.config.address!r}, "
            f"login={self.client.login_method.method!r})"
        )

    @property
    def renewals(self) -> int:
        """How often the token of ksefctl's own login was renewed in this run."""
        return self.client.renewals

    @property
    def relogins(self) -> int:
        """How often ksefctl logged in again because its token neared its max TTL."""
        return self.client.relogins

    # -- lifecycle ---------------------------------------------------------

    async def login(self) -> None:
        await self.client.login()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> VaultStore:
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- token secrets -----------------------------------------------------

    async def read_token_state(self, ref: SecretRef) -> TokenSecretState:
        """What Vault holds at ``ref``, without the token value (one request)."""
        current = await self.client.read(ref)
        data = current.data or {}
        exists = current.live and bool(data.get("token"))
        reference = data.get("referenceNumber") if exists else None
        return TokenSecretState(
            secret=ref,
            exists=exists,
            version=current.number,
            reference_number=str(reference) if reference else None,
            created=parse_time(data.get("createdAt")) if exists else None,
            deleted_reason=current.custom_metadata.get("deletedReason"),
            revoked_policy=current.custom_metadata.get("revokedPolicy"),
            adopted_from=current.custom_metadata.get("adoptedFrom") if exists else None,
            rotation_of=current.custom_metadata.get("rotationOf") or None,
            rotation_no_overlap=current.custom_metadata.get("rotationNoOverlap") == "true",
            owner=(
                current.custom_metadata.get("owner")
                if current.custom_metadata.get("managedBy") == "ksefctl"
                else None
            ),
        )

    async def read_credentials(
        self, ref: SecretRef, required: Sequence[str] | None = None
    ) -> dict[str, Secret]:
        """Login material at ``ref``, every value wrapped in :class:`Secret`.

        ``required`` names keys that must be present; by default the secret
        must hold one of: ``certificate`` + ``privateKey``, ``pkcs12``, ``token``.
        """
        current = await self.client.read(ref)
        if not current.live or not current.data:
            raise VaultNotFound(f"no credentials at {ref} in Vault (missing or deleted)")
        values = {
            str(k): Secret(v if isinstance(v, str) else str(v))
            for k, v in current.data.items()
            if v is not None and v != ""
        }
        if required is not None:
            missing = [key for key in required if key not in values]
            if missing:
                raise VaultError(f"credentials at {ref} lack {', '.join(missing)}")
        elif not any(shape <= values.keys() for shape in CREDENTIAL_SHAPES):
            raise VaultError(
                f"credentials at {ref} hold neither certificate and privateKey, nor pkcs12, "
                f"nor token (keys present: {', '.join(sorted(values)) or 'none'})"
            )
        return values

    async def write_token(
        self,
        ref: SecretRef,
        *,
        token: Secret,
        reference_number: str,
        context: str,
        permissions: Sequence[str],
        environment: str,
        created_at: datetime,
        owner: str,
        token_name: str,
        cas: int,
        extra_metadata: Mapping[str, str] | None = None,
    ) -> int:
        """Store a new token version with check-and-set ``cas``; return the new version.

        Raises :class:`CasConflict` when the path's current version is not
        ``cas``, and :class:`PartialWrite` (carrying the version) when the
        token is stored but its custom_metadata could not be recorded.
        """
        data = {
            "token": token.reveal(),
            "referenceNumber": reference_number,
            "context": context,
            "permissions": list(permissions),
            "environment": environment,
            "createdAt": rfc3339(created_at),
        }
        written = await self.client.write(ref, data, cas=cas)
        # custom_metadata is per path: what described the previous version goes.
        custom = {
            k: v
            for k, v in written.custom_metadata.items()
            if k not in DELETION_KEYS and k not in VERSION_KEYS
        }
        custom.update(
            {
                # Consumers use the current version once status is Active (docs/consumers.md):
                # a token is stored before KSeF activates it, so it is never lost.
                "status": "Pending",
                "managedBy": MANAGED_BY,
                "owner": owner,
                "token": token_name,
                "context": context,
                "referenceNumber": reference_number,
                "environment": environment,
                "createdAt": rfc3339(created_at),
            }
        )
        custom.update(extra_metadata or {})
        try:
            await self.client.write_metadata(ref, custom_metadata=custom)
        except VaultError as error:
            raise PartialWrite(ref, written.version, error) from None
        return written.version

    async def restore_version(self, ref: SecretRef, version: int, *, cas: int, reason: str) -> int:
        """Make an older version current again (a KV v2 rollback), with check-and-set ``cas``.

        The old data is written as a new version, so history keeps every step
        and consumers reading the current secret get the old token back.
        """
        old = await self.client.read(ref, version=version, operation="restore")
        if not old.live or old.data is None:
            raise VaultNotFound(
                f"version {version} of {ref} is deleted or destroyed; nothing to restore"
            )
        data = dict(old.data)
        # Marked in the data too: custom_metadata is per path, this is per version.
        data["restoredFrom"] = version
        written = await self.client.write(ref, data, cas=cas, operation="restore")
        custom = dict(written.custom_metadata)
        custom.update(
            {
                "referenceNumber": str(data.get("referenceNumber", "")),
                "createdAt": str(data.get("createdAt", "")),
                "restoredFrom": str(version),
                "restoredReason": reason[:512],
            }
        )
        await self.client.write_metadata(ref, custom_metadata=custom, operation="restore")
        return written.version

    async def update_metadata(self, ref: SecretRef, custom_metadata: Mapping[str, str]) -> None:
        """Merge ``custom_metadata`` into the path's map (KV v2 itself would replace it)."""
        await self.client.merge_metadata(ref, custom_metadata)

    async def move_token(
        self, source: SecretRef, target: SecretRef, *, reference_number: str, cas: int
    ) -> int:
        """Write the token held at ``source`` at ``target`` (check-and-set ``cas``), then
        soft-delete ``source``: the value moves, the token is not touched.

        Refuses (:class:`CasConflict`) if ``source`` no longer holds ``reference_number``.
        The target is written before the source is deleted, so a run stopped in between
        leaves the token readable at both, never at neither.
        """
        old = await self.client.read(source, operation="move")
        data = dict(old.data or {})
        if not old.live or data.get("referenceNumber") != reference_number:
            raise CasConflict(f"{source} no longer holds token {reference_number}; not moving it")
        written = await self.client.write(target, data, cas=cas, operation="move")
        carried = {k: v for k, v in old.custom_metadata.items() if k not in DELETION_KEYS}
        carried["movedFrom"] = str(source)
        await self.client.write_metadata(target, custom_metadata=carried, operation="move")
        await self.soft_delete(source, reason=f"moved to {target}", expected_version=old.number)
        return written.version

    async def soft_delete(
        self,
        ref: SecretRef,
        reason: str,
        *,
        expected_version: int | None = None,
        extra_metadata: Mapping[str, str] | None = None,
    ) -> bool:
        """Delete the current version (recoverable with ``undelete``) and record why and when.

        With ``expected_version``, refuse (:class:`CasConflict`) if a newer
        version was written since it was observed.  Returns False when there
        was nothing live to delete.
        """
        metadata = await self.client.read_metadata(ref, operation="delete")
        current = metadata.current_version if metadata else 0
        if expected_version is not None and current != expected_version:
            raise CasConflict(
                f"{ref} changed in Vault (version {current}, expected {expected_version}); "
                "not deleting a secret ksefctl has not observed"
            )
        if not current or metadata is None or metadata.current_deleted:
            return False
        await self.client.delete_versions(ref, [current])
        custom = dict(metadata.custom_metadata)
        custom.update({"deletedReason": reason[:512], "deletedAt": rfc3339(datetime.now(UTC))})
        custom.update(extra_metadata or {})
        await self.client.write_metadata(ref, custom_metadata=custom, operation="delete")
        return True

    async def list_owner_secrets(
        self, mount: str, prefix_template_root: str, owner: str
    ) -> list[tuple[SecretRef, dict[str, str]]]:
        """Every live secret under the template's fixed folder that ksefctl manages for ``owner``.

        ``prefix_template_root`` is the path template (or its fixed folder);
        the walk starts at the part before the first placeholder.  Secrets
        whose current version is deleted are skipped: they were already pruned.
        """
        leaves = await self._walk(mount, template_prefix(prefix_template_root))

        async def describe(path: str) -> tuple[SecretRef, dict[str, str]] | None:
            ref = SecretRef(mount, path)
            metadata = await self.client.read_metadata(ref)
            if metadata is None:
                return None
            custom = dict(metadata.custom_metadata)
            if custom.get("managedBy") != MANAGED_BY or custom.get("owner") != owner:
                return None
            if not metadata.current_live:
                return None
            return ref, custom

        found = await asyncio.gather(*(describe(path) for path in leaves))
        return sorted((item for item in found if item), key=lambda item: item[0].path)

    async def _walk(self, mount: str, folder: str) -> list[str]:
        keys = await self.client.list_keys(mount, folder)
        leaves: list[str] = []
        subfolders: list[str] = []
        for key in keys:
            path = folder + key
            if path == INTERNAL_PREFIX:
                continue
            (subfolders if key.endswith("/") else leaves).append(path)
        for nested in await asyncio.gather(*(self._walk(mount, sub) for sub in subfolders)):
            leaves.extend(nested)
        return leaves

    # -- owner lease lock -------------------------------------------------

    def lock(
        self,
        owner: str,
        *,
        mount: str | None = None,
        ttl: float | timedelta = 60.0,
        timeout: float | timedelta = 300.0,
        holder: str | None = None,
        poll_interval: float = 1.0,
    ) -> OwnerLock:
        """A lease lock for ``owner`` at ``<mount>/.ksefctl/locks/<owner>``: ``async with``.

        ``mount`` defaults to the owner's token mount (see :meth:`from_environment`),
        else ``secret``.
        """
        return OwnerLock(
            self.client,
            owner,
            mount=mount or self.lock_mounts.get(owner, "secret"),
            ttl=ttl,
            timeout=timeout,
            holder=holder,
            poll_interval=poll_interval,
        )
