"""``VaultStore``: the async KV v2 facade the rest of ksefctl talks to.

The hot calls — KV reads, the two writes that store a new token and
metadata merges — go
over aiohttp on the event loop (``vault/http.py`` says why).  Everything
else uses hvac, which is blocking, so those calls run in a dedicated,
bounded thread pool sharing one ``requests`` session whose connection pool
is as large as the pool.  A semaphore admits only as many calls as there are
threads, so thousands of contexts wait as cheap coroutines rather than as a
burst of executor submissions, and the event loop never waits on a socket.

Round trips per operation (each is one HTTP request):

- ``read_token_state``: 1 — a data read returns the current version's
  number, deletion/destruction state and ``custom_metadata`` too, and a
  deleted current version still answers 404 *with* that metadata.
- ``read_credentials``: 1.
- ``write_token``: 2 — the check-and-set data write (its response carries the
  path's ``custom_metadata``, so the merge needs no read) and the metadata write.
- ``update_metadata``: 2 (read, then write the merged map).
- ``soft_delete``: 3 (metadata read, delete of that exact version, metadata write).
- ``list_owner_secrets``: one LIST per folder plus one metadata read per secret.

KV v2 cannot update data and ``custom_metadata`` atomically, so the data —
which alone is guarded by check-and-set — is written first and readers trust
the data (``referenceNumber`` there) over the metadata.  ``custom_metadata``
has no check-and-set on stock Vault: concurrent merges on one path must be
serialised by the caller (``apply`` holds the owner's :meth:`VaultStore.lock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import hvac
import hvac.exceptions
import requests
from hvac import utils as hvac_utils
from requests.adapters import HTTPAdapter

from ksefctl.manifest.model import Desired
from ksefctl.reconcile.model import ObservedSecret
from ksefctl.retry import RetryPolicy
from ksefctl.secret import Secret
from ksefctl.vault.config import VaultConfig, VaultConfigError, VaultLogin
from ksefctl.vault.errors import (
    CasConflict,
    VaultError,
    VaultNotFound,
    VaultUnavailable,
    mapped_errors,
)
from ksefctl.vault.http import VaultHttp
from ksefctl.vault.login import Lease, lease_of, log_in
from ksefctl.vocabulary import SecretRef

if TYPE_CHECKING:  # lock.py builds on this module's primitives
    from ksefctl.vault.lock import OwnerLock

log = logging.getLogger("ksefctl.vault")

T = TypeVar("T")

MANAGED_BY = "ksefctl"
# Folder under each mount that holds ksefctl's own bookkeeping (owner locks);
# never reported as a token secret.
INTERNAL_PREFIX = ".ksefctl/"
# custom_metadata keys soft_delete records, cleared again when a new token is written.
DELETION_KEYS = ("deletedReason", "deletedAt", "revokedPolicy", "adoptedFrom")
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


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps written to Vault must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp from Vault (nanoseconds included), None if absent/invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def template_prefix(template: str) -> str:
    """The folder of a path template that holds no placeholder: ``ksef/{environment}/…`` → ``ksef/``."""
    fixed = template.split("{", 1)[0]
    return fixed[: fixed.rfind("/") + 1]


@dataclass(frozen=True)
class _Version:
    """The current version at a path as one data read reports it."""

    # None when deleted, destroyed or never written.  Left out of the repr: it holds the token.
    data: Mapping[str, Any] | None = field(repr=False)
    number: int  # 0 when never written
    custom_metadata: Mapping[str, str]
    deleted: bool

    @property
    def live(self) -> bool:
        return self.data is not None and not self.deleted


def _version_of(response: Mapping[str, Any]) -> _Version:
    """The answer to a successful KV v2 data read."""
    metadata = response["data"]["metadata"]
    return _Version(
        response["data"]["data"] or {},
        int(metadata["version"]),
        metadata.get("custom_metadata") or {},
        deleted=bool(metadata.get("deletion_time")) or bool(metadata.get("destroyed")),
    )


def _data_url(ref: SecretRef) -> str:
    return str(hvac_utils.format_url("/v1/{mount}/data/{path}", mount=ref.mount, path=ref.path))


def _metadata_url(ref: SecretRef) -> str:
    return str(hvac_utils.format_url("/v1/{mount}/metadata/{path}", mount=ref.mount, path=ref.path))


def _missing_version(error: hvac.exceptions.InvalidPath) -> _Version:
    """A 404: never written, or a deleted current version (its metadata still comes back)."""
    body = error.json if isinstance(error.json, dict) else {}
    metadata = (body.get("data") or {}).get("metadata")
    if not isinstance(metadata, dict):
        return _Version(None, 0, {}, deleted=False)
    return _Version(
        None,
        int(metadata.get("version") or 0),
        metadata.get("custom_metadata") or {},
        deleted=True,
    )


class VaultStore:
    """Async access to KV v2 for token secrets, login material and owner locks.

    Construct it without I/O, then ``async with store:`` (or ``await
    store.login()``) logs in; leaving the block closes the pool and session.
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
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.config = config or VaultConfig.from_env(environ)
        self._login = login or VaultLogin()
        self._environ = environ
        self.concurrency = concurrency
        self.read_retry = read_retry or RetryPolicy()
        self._reads_gave_up = False
        # The hot calls (KV reads, token writes) go over aiohttp on the loop: see vault/http.py.
        # Built first: it refuses an address the token must not travel to.
        self._http = VaultHttp(
            self.config, lambda: str(self._client.token or ""), concurrency=concurrency
        )
        self._session = requests.Session()
        # One connection per worker thread, reused across calls (keep-alive).
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=concurrency, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        # requests re-reads the environment (proxies, ~/.netrc, CA bundle) on every
        # call when trust_env is on: a measurable share of a large run's CPU.
        # Read it once here instead; Vault authenticates by header, never netrc.
        self._session.trust_env = False
        self._session.proxies.update(requests.utils.get_environ_proxies(self.config.address))
        verify = self.config.verify
        cert = (
            (self.config.client_cert, self.config.client_key)
            if self.config.client_cert and self.config.client_key
            else None
        )
        self._client = hvac.Client(
            url=self.config.address,
            token="",  # never picked up implicitly from the environment; see login()
            namespace=self.config.namespace,
            verify=verify,
            cert=cert,
            timeout=self.config.timeout,
            session=self._session,
            # The token travels in a header requests would carry to any redirect target.
            allow_redirects=False,
        )
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ksefctl-vault")
        self._logged_in = False
        self._keeper: asyncio.Task[None] | None = None  # renews a token from our own login
        self.renewals = 0
        self.relogins = 0
        self._login_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(concurrency)
        self.lock_mounts: dict[str, str] = {}  # owner → the KV mount its lock lives in

    @classmethod
    def from_environment(
        cls,
        desired: Desired | None = None,
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
        return f"VaultStore(address={self.config.address!r}, login={self._login.method!r})"

    # -- lifecycle ---------------------------------------------------------

    async def login(self) -> None:
        """Obtain a Vault token by the configured method (once)."""
        async with self._login_lock:
            if self._logged_in:
                return
            lease = await self._log_in()
            self._logged_in = True
            log.debug("logged into Vault at %s by %s", self.config.address, self._login.method)
            if lease is not None:
                self._keeper = asyncio.create_task(self._keep_alive(lease))

    async def _log_in(self) -> Lease | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, log_in, self._client, self.config, self._login, self._environ
        )

    async def _keep_alive(self, lease: Lease) -> None:
        """Keep the token our own login obtained alive for as long as the run lasts.

        A CI role's tokens often live minutes, a large run can take longer.
        Renewed at two thirds of its lease; once Vault stops extending it (its
        max TTL is near) or refuses, ksefctl logs in again.
        """
        first = lease.duration_s
        while True:
            await asyncio.sleep(lease.duration_s * 2 / 3)
            renewed: Lease | None = None
            if lease.renewable:
                try:
                    renewed = await self._call("renew", "auth/token/renew-self", self._renew_self)
                except VaultError as error:
                    log.info("Vault token not renewed (%s); logging in again", error)
            if renewed is None or renewed.duration_s < first / 2:
                try:
                    renewed = await self._log_in()
                except VaultError as error:
                    log.warning(
                        "Vault token could not be renewed nor obtained again (%s); "
                        "Vault calls fail once it expires",
                        error,
                    )
                    return
                self.relogins += 1
            else:
                self.renewals += 1
            if renewed is None:
                return
            lease = renewed

    def _renew_self(self) -> Lease | None:
        return lease_of(self._client.auth.token.renew_self())

    async def aclose(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        # Waiting for in-flight calls happens off the loop: each may take up to the timeout.
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        self._session.close()
        await self._http.aclose()

    async def __aenter__(self) -> VaultStore:
        try:
            await self.login()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, operation: str, where: str, fn: Callable[[], T]) -> T:
        if not self._logged_in:
            await self.login()
        loop = asyncio.get_running_loop()
        async with self._slots:
            return await loop.run_in_executor(self._pool, self._guarded, operation, where, fn)

    def _guarded(self, operation: str, where: str, fn: Callable[[], T]) -> T:
        log.debug("vault %s %s", operation, where)
        with mapped_errors(self.config.address, operation, where):
            return fn()

    async def _on_loop(self, operation: str, where: str, call: Callable[[], Awaitable[T]]) -> T:
        """Like :meth:`_call` for the aiohttp calls of :class:`VaultHttp` (no thread)."""
        if not self._logged_in:
            await self.login()
        log.debug("vault %s %s", operation, where)
        with mapped_errors(self.config.address, operation, where):
            return await call()

    async def _read(self, operation: str, ref: SecretRef) -> _Version:
        """The current version at ``ref`` (one request, on the loop).

        Reads are the one kind of Vault call retried: they change nothing, so a
        dropped connection, a timeout, a 5xx/429 or a Vault briefly sealed or
        restarting costs a short wait instead of the context.  Writes are not —
        a check-and-set write that timed out may have landed, and resending it
        would report a conflict with ourselves.
        """

        async def read() -> _Version:
            try:
                return _version_of(await self._http.request("GET", _data_url(ref)))
            except hvac.exceptions.InvalidPath as error:
                return _missing_version(error)

        attempt = 0
        while True:
            try:
                version = await self._on_loop(operation, str(ref), read)
            except VaultUnavailable as error:
                attempt += 1
                # Once one read has waited out every retry, the others fail at their
                # first refusal: a Vault that is down fails a 1000-context run in
                # seconds, not in 1000 × the backoff.
                if attempt >= self.read_retry.max_attempts or self._reads_gave_up:
                    self._reads_gave_up = True
                    raise
                delay = self.read_retry.backoff(attempt - 1)
                log.info("vault %s %s: %s; retrying in %.1fs", operation, ref, error, delay)
                await asyncio.sleep(delay)
            else:
                self._reads_gave_up = False
                return version

    # The raw calls below run inside _on_loop, which maps their errors.

    async def _put(self, ref: SecretRef, data: Mapping[str, Any], cas: int) -> dict[str, Any]:
        """A check-and-set data write; Vault's answer (``version``, ``custom_metadata``…)."""
        answer = await self._http.request(
            "POST", _data_url(ref), body={"data": dict(data), "options": {"cas": cas}}
        )
        result: dict[str, Any] = answer["data"]
        result["version"] = int(result["version"])
        return result

    async def _post_metadata(self, ref: SecretRef, body: dict[str, Any]) -> None:
        # custom_metadata (and max_versions) alone: hvac's update_metadata always sends
        # delete_version_after=0s, which would reset a retention the operator configured.
        await self._http.request("POST", _metadata_url(ref), body=body)

    # -- blocking primitives (run in the pool) -----------------------------

    def _read_version(self, mount: str, path: str) -> _Version:
        try:
            response = self._client.secrets.kv.v2.read_secret_version(
                path, mount_point=mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath as error:
            return _missing_version(error)
        return _version_of(response)

    def _read_metadata(self, mount: str, path: str) -> dict[str, Any] | None:
        try:
            response = self._client.secrets.kv.v2.read_secret_metadata(path, mount_point=mount)
        except hvac.exceptions.InvalidPath:
            return None
        data: dict[str, Any] = response["data"]
        return data

    def _write_custom_metadata(self, mount: str, path: str, custom: Mapping[str, str]) -> None:
        # hvac's update_metadata always sends delete_version_after=0s, which would
        # reset a retention the operator configured; send custom_metadata alone.
        url = hvac_utils.format_url("/v1/{mount}/metadata/{path}", mount=mount, path=path)
        self._client.adapter.post(url, json={"custom_metadata": dict(custom)})

    def _write_data(
        self, mount: str, path: str, data: Mapping[str, Any], cas: int
    ) -> dict[str, Any]:
        response = self._client.secrets.kv.v2.create_or_update_secret(
            path, secret=dict(data), cas=cas, mount_point=mount
        )
        result: dict[str, Any] = response["data"]
        return result

    # -- token secrets -----------------------------------------------------

    async def read_token_state(self, ref: SecretRef) -> ObservedSecret:
        """What Vault holds at ``ref``, without the token value (one request)."""
        current = await self._read("read", ref)
        data = current.data or {}
        exists = current.live and bool(data.get("token"))
        reference = data.get("referenceNumber") if exists else None
        return ObservedSecret(
            secret=ref,
            exists=exists,
            version=current.number,
            reference_number=str(reference) if reference else None,
            created=parse_time(data.get("createdAt")) if exists else None,
            revoked_reason=current.custom_metadata.get("deletedReason"),
            revoked_policy=current.custom_metadata.get("revokedPolicy"),
            adopted_from=current.custom_metadata.get("adoptedFrom") if exists else None,
        )

    async def read_credentials(
        self, ref: SecretRef, required: Sequence[str] | None = None
    ) -> dict[str, Secret]:
        """Login material at ``ref``, every value wrapped in :class:`Secret`.

        ``required`` names keys that must be present; by default the secret
        must hold one of: ``certificate`` + ``privateKey``, ``pkcs12``, ``token``.
        """
        current = await self._read("read", ref)
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

        written = await self._on_loop("write", str(ref), lambda: self._put(ref, data, cas))
        version = int(written["version"])
        previous = written.get("custom_metadata") or {}
        custom = {k: v for k, v in previous.items() if k not in DELETION_KEYS}
        custom.update(
            {
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
            await self._on_loop(
                "update metadata of",
                str(ref),
                lambda: self._post_metadata(ref, {"custom_metadata": custom}),
            )
        except VaultError as error:
            raise PartialWrite(ref, version, error) from None
        return version

    async def restore_version(self, ref: SecretRef, version: int, *, cas: int, reason: str) -> int:
        """Make an older version current again (a KV v2 rollback), with check-and-set ``cas``.

        The old data is written as a new version, so history keeps every step
        and consumers reading the current secret get the old token back.
        """

        def restore() -> int:
            old = self._client.secrets.kv.v2.read_secret_version(
                ref.path, version=version, mount_point=ref.mount, raise_on_deleted_version=True
            )
            data = dict(old["data"]["data"] or {})
            # Marked in the data too: custom_metadata is per path, this is per version.
            data["restoredFrom"] = version
            written = self._write_data(ref.mount, ref.path, data, cas)
            custom = dict(written.get("custom_metadata") or {})
            custom.update(
                {
                    "referenceNumber": str(data.get("referenceNumber", "")),
                    "createdAt": str(data.get("createdAt", "")),
                    "restoredFrom": str(version),
                    "restoredReason": reason[:512],
                }
            )
            self._write_custom_metadata(ref.mount, ref.path, custom)
            return int(written["version"])

        return await self._call("restore", str(ref), restore)

    async def update_metadata(self, ref: SecretRef, custom_metadata: Mapping[str, str]) -> None:
        """Merge ``custom_metadata`` into the path's map (KV v2 itself would replace it)."""

        async def merge() -> None:
            try:
                current = (await self._http.request("GET", _metadata_url(ref)))["data"]
            except hvac.exceptions.InvalidPath:
                current = {}
            merged = dict(current.get("custom_metadata") or {})
            merged.update(custom_metadata)
            await self._post_metadata(ref, {"custom_metadata": merged})

        await self._on_loop("update metadata of", str(ref), merge)

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

        def delete() -> bool:
            metadata = self._read_metadata(ref.mount, ref.path)
            current = int(metadata["current_version"]) if metadata else 0
            if expected_version is not None and current != expected_version:
                raise CasConflict(
                    f"{ref} changed in Vault (version {current}, expected {expected_version}); "
                    "not deleting a secret ksefctl has not observed"
                )
            state = (metadata or {}).get("versions", {}).get(str(current), {})
            if not current or state.get("deletion_time") or state.get("destroyed"):
                return False
            self._client.secrets.kv.v2.delete_secret_versions(
                ref.path, [current], mount_point=ref.mount
            )
            custom = dict((metadata or {}).get("custom_metadata") or {})
            custom.update({"deletedReason": reason[:512], "deletedAt": rfc3339(datetime.now(UTC))})
            custom.update(extra_metadata or {})
            self._write_custom_metadata(ref.mount, ref.path, custom)
            return True

        return await self._call("delete", str(ref), delete)

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
            metadata = await self._call(
                "read metadata of", str(ref), lambda: self._read_metadata(mount, path)
            )
            if not metadata:
                return None
            custom = {str(k): str(v) for k, v in (metadata.get("custom_metadata") or {}).items()}
            if custom.get("managedBy") != MANAGED_BY or custom.get("owner") != owner:
                return None
            state = metadata.get("versions", {}).get(str(metadata.get("current_version")), {})
            if not state or state.get("deletion_time") or state.get("destroyed"):
                return None
            return ref, custom

        found = await asyncio.gather(*(describe(path) for path in leaves))
        return sorted((item for item in found if item), key=lambda item: item[0].path)

    async def _walk(self, mount: str, folder: str) -> list[str]:
        def list_folder() -> list[str]:
            try:
                response = self._client.secrets.kv.v2.list_secrets(folder, mount_point=mount)
            except hvac.exceptions.InvalidPath:
                return []
            return [str(key) for key in response["data"]["keys"]]

        keys = await self._call("list", f"{mount}/{folder}", list_folder)
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
        from ksefctl.vault.lock import OwnerLock

        return OwnerLock(
            self,
            owner,
            mount=mount or self.lock_mounts.get(owner, "secret"),
            ttl=ttl,
            timeout=timeout,
            holder=holder,
            poll_interval=poll_interval,
        )
