"""``VaultClient``: the one asynchronous client of Vault's KV v2 API that ksefctl has.

Everything in ``vault/`` that talks to Vault — the token store, the owner
lock, the session cache — goes through the public methods here, over one
aiohttp pool (``vault/http.py``), with one error mapping
(``vault/errors.py``).  The client also holds the Vault token: it logs in
once (``vault/login.py``) and keeps a token from its own login alive.

Reads (data, metadata, lists) are the one kind of call retried: they change
nothing, so a dropped connection, a timeout, a 5xx/429 or a Vault briefly
sealed or restarting costs a short wait instead of the context.  Writes are
not — a check-and-set write that timed out may have landed, and resending it
would report a conflict with ourselves.  Once one read has waited out every
retry, the others fail at their first refusal until Vault answers again: a
Vault that is down fails a 1000-context run in seconds, not in 1000 × the
backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import hvac.exceptions
from hvac import utils as hvac_utils

from ksefctl.retry import RetryPolicy
from ksefctl.secret import Secret
from ksefctl.vault.config import VaultConfig, VaultLogin
from ksefctl.vault.errors import VaultError, VaultSealed, VaultUnavailable, mapped_errors
from ksefctl.vault.http import VaultHttp
from ksefctl.vault.kv import KvMetadata, KvVersion, KvWritten
from ksefctl.vault.login import Lease, lease_of, log_in
from ksefctl.vocabulary import SecretRef

log = logging.getLogger("ksefctl.vault")

T = TypeVar("T")


def _url(kind: str, ref: SecretRef) -> str:
    # hvac's format_url percent-encodes each value, as hvac itself would send them.
    return str(
        hvac_utils.format_url(
            "/v1/{mount}/{kind}/{path}", mount=ref.mount, kind=kind, path=ref.path
        )
    )


# A Vault sealed for a moment, restarting or failing over costs a wait of up to
# half a minute, not the context (docs/reliability.md, guarantee 10).
VAULT_READS = RetryPolicy(base_delay_s=0.25, max_delay_s=4.0, patience_s=30.0)


class VaultClient:
    """Async KV v2 on one connection pool; construct without I/O, then ``async with``.

    ``operation`` arguments name the step in error messages ("read lock",
    "write session"…); the path is always the secret's ``mount/path``.
    """

    def __init__(
        self,
        config: VaultConfig,
        login: VaultLogin | None = None,
        *,
        concurrency: int = 16,
        environ: Mapping[str, str] | None = None,
        read_retry: RetryPolicy | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.config = config
        self.login_method = login or VaultLogin()
        self.read_retry = read_retry or VAULT_READS
        self.quick_retry = read_retry or RetryPolicy()
        self._environ = environ
        # Refuses an address the token must not travel to, before anything connects.
        self._http = VaultHttp(config, self._token_text, concurrency=concurrency)
        self._token: Secret | None = None
        self._logged_in = False
        self._login_lock = asyncio.Lock()
        self._keeper: asyncio.Task[None] | None = None  # renews a token from our own login
        self._reads_gave_up = False
        self.renewals = 0
        self.relogins = 0

    def __repr__(self) -> str:
        return f"VaultClient(address={self.config.address!r}, login={self.login_method.method!r})"

    @property
    def token(self) -> Secret | None:
        """The Vault token in use (a :class:`Secret`), None before login."""
        return self._token

    @property
    def reads_gave_up(self) -> bool:
        """Whether the last read waited out every retry (later reads then fail at once)."""
        return self._reads_gave_up

    def _token_text(self) -> str:
        return self._token.reveal() if self._token is not None else ""

    # -- lifecycle ---------------------------------------------------------

    async def login(self) -> None:
        """Obtain a Vault token by the configured method (once)."""
        async with self._login_lock:
            if self._logged_in:
                return
            lease = await self._log_in()
            self._logged_in = True
            log.debug(
                "logged into Vault at %s by %s", self.config.address, self.login_method.method
            )
            if lease is not None:
                self._keeper = asyncio.create_task(self._keep_alive(lease))

    async def _log_in(self) -> Lease | None:
        grant = await log_in(self._http, self.config, self.login_method, self._environ)
        self._token = grant.token
        return grant.lease

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
                    answer = await self._call(
                        "renew",
                        "auth/token/renew-self",
                        lambda: self._http.request("POST", "/v1/auth/token/renew-self", body={}),
                    )
                    renewed = lease_of(answer)
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

    async def aclose(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        await self._http.aclose()

    async def __aenter__(self) -> VaultClient:
        try:
            await self.login()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- calls -------------------------------------------------------------

    async def _call(self, operation: str, where: str, call: Callable[[], Awaitable[T]]) -> T:
        """One call, after logging in if needed, with Vault's refusals mapped to VaultError."""
        if not self._logged_in:
            await self.login()
        log.debug("vault %s %s", operation, where)
        with mapped_errors(self.config.address, operation, where):
            return await call()

    async def _read_call(self, operation: str, where: str, call: Callable[[], Awaitable[T]]) -> T:
        """:meth:`_call` for a read: retried with jittered backoff while Vault is unavailable."""
        attempt = 0
        loop = asyncio.get_running_loop()
        first_failure: float | None = None
        while True:
            try:
                result = await self._call(operation, where, call)
            except VaultUnavailable as error:
                attempt += 1
                now = loop.time()
                first_failure = now if first_failure is None else first_failure
                waited = now - first_failure
                # Patience is for a Vault that answers "sealed"; one that does not
                # answer at all (a wrong VAULT_ADDR, a dead server) fails in seconds.
                policy = self.read_retry if isinstance(error, VaultSealed) else self.quick_retry
                if policy.gives_up(attempt, waited) or self._reads_gave_up:
                    self._reads_gave_up = True
                    raise
                delay = policy.backoff(attempt - 1)
                log.info("vault %s %s: %s; retrying in %.1fs", operation, where, error, delay)
                await asyncio.sleep(delay)
            else:
                self._reads_gave_up = False
                return result

    # -- KV v2 -------------------------------------------------------------

    async def read(
        self, ref: SecretRef, *, version: int | None = None, operation: str = "read"
    ) -> KvVersion:
        """The current version at ``ref`` (or ``version``); one request.

        A deleted or never-written version is no error: it comes back with
        ``data`` None (and, when deleted, its number and ``custom_metadata``).
        """
        url = _url("data", ref) + (f"?version={int(version)}" if version is not None else "")

        async def read() -> KvVersion:
            try:
                return KvVersion.of_answer(await self._http.request("GET", url))
            except hvac.exceptions.InvalidPath as error:
                return KvVersion.of_missing(error.json)

        return await self._read_call(operation, str(ref), read)

    async def read_metadata(
        self, ref: SecretRef, *, operation: str = "read metadata of"
    ) -> KvMetadata | None:
        """The path's metadata, None when the path was never written (or fully deleted)."""

        async def read() -> KvMetadata | None:
            try:
                return KvMetadata.of_answer(await self._http.request("GET", _url("metadata", ref)))
            except hvac.exceptions.InvalidPath:
                return None

        return await self._read_call(operation, str(ref), read)

    async def list_keys(self, mount: str, folder: str, *, operation: str = "list") -> list[str]:
        """The keys in ``folder`` (sub-folders end with ``/``); empty when there is none."""
        ref = SecretRef(mount, folder)

        async def list_folder() -> list[str]:
            try:
                answer = await self._http.request("LIST", _url("metadata", ref))
            except hvac.exceptions.InvalidPath:
                return []
            return [str(key) for key in answer["data"]["keys"]]

        return await self._read_call(operation, f"{mount}/{folder}", list_folder)

    async def write(
        self, ref: SecretRef, data: Mapping[str, Any], *, cas: int, operation: str = "write"
    ) -> KvWritten:
        """A check-and-set data write: :class:`CasConflict` unless the path is at ``cas``."""

        async def write() -> KvWritten:
            answer = await self._http.request(
                "POST", _url("data", ref), body={"data": dict(data), "options": {"cas": cas}}
            )
            result = answer["data"]
            custom = result.get("custom_metadata") or {}
            return KvWritten(int(result["version"]), {str(k): str(v) for k, v in custom.items()})

        return await self._call(operation, str(ref), write)

    async def write_metadata(
        self,
        ref: SecretRef,
        *,
        custom_metadata: Mapping[str, str] | None = None,
        max_versions: int | None = None,
        operation: str = "update metadata of",
    ) -> None:
        """Set the given metadata fields (``custom_metadata`` replaces the whole map).

        Only the fields given are sent: hvac's update_metadata always sends
        delete_version_after=0s, which would reset a retention the operator set.
        """
        body: dict[str, Any] = {}
        if custom_metadata is not None:
            body["custom_metadata"] = dict(custom_metadata)
        if max_versions is not None:
            body["max_versions"] = max_versions
        if not body:
            return
        await self._call(
            operation,
            str(ref),
            lambda: self._http.request("POST", _url("metadata", ref), body=body),
        )

    async def merge_metadata(
        self,
        ref: SecretRef,
        custom_metadata: Mapping[str, str],
        *,
        operation: str = "update metadata of",
    ) -> None:
        """Merge into the path's ``custom_metadata`` (KV v2 itself would replace the map).

        A read, then a write: concurrent merges on one path must be serialised
        by the caller (``apply`` holds the owner's lock).
        """
        current = await self.read_metadata(ref, operation=operation)
        merged = dict(current.custom_metadata if current else {})
        merged.update(custom_metadata)
        await self.write_metadata(ref, custom_metadata=merged, operation=operation)

    async def delete_versions(
        self, ref: SecretRef, versions: Sequence[int], *, operation: str = "delete"
    ) -> None:
        """Soft-delete ``versions`` (recoverable with :meth:`undelete_versions`)."""
        body = {"versions": [int(v) for v in versions]}
        await self._call(
            operation, str(ref), lambda: self._http.request("POST", _url("delete", ref), body=body)
        )

    async def undelete_versions(
        self, ref: SecretRef, versions: Sequence[int], *, operation: str = "undelete"
    ) -> None:
        """Bring soft-deleted ``versions`` back."""
        body = {"versions": [int(v) for v in versions]}
        await self._call(
            operation,
            str(ref),
            lambda: self._http.request("POST", _url("undelete", ref), body=body),
        )

    async def delete_all(self, ref: SecretRef, *, operation: str = "delete") -> None:
        """Remove the path with every version and its metadata (nothing stays recoverable)."""
        await self._call(
            operation, str(ref), lambda: self._http.request("DELETE", _url("metadata", ref))
        )
