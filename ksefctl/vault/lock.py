"""A lease lock per owner, so two ``apply`` runs for one owner never fight.

The lock is a KV v2 secret at ``<mount>/.ksefctl/locks/<owner>`` holding the
holder's id and the lease's expiry.  Every transition is a check-and-set
write against the version just observed, so exactly one contender wins:

- acquire: write when the record is absent, released or expired;
- renew (a background task, every third of the TTL): write on our own version;
- release: write a released record on our own version.

Release writes rather than deletes: a delete cannot be made conditional, so a
holder whose lease had already passed to someone else could delete the new
holder's lock.  KV v2 check-and-set compares with the current version even
when that version is deleted or destroyed, so contenders always read before
they write.  Expiry compares wall clocks of different machines; the TTL
should dwarf their skew (NTP keeps it well under a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import quote

from ksefctl.vault.client import VaultClient
from ksefctl.vault.errors import CasConflict, LockLost, LockTimeout, VaultError
from ksefctl.vault.kv import parse_time
from ksefctl.vocabulary import SecretRef

log = logging.getLogger("ksefctl.vault")

LOCK_FOLDER = ".ksefctl/locks"
# Lock records change every few seconds; keeping a handful of versions is plenty.
LOCK_MAX_VERSIONS = 5


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def default_holder() -> str:
    """``host:pid:random``: tells an operator which machine and process holds a lock."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class OwnerLock:
    """``async with store.lock(owner) as lease:`` — the lease is renewed while the block runs.

    If renewal ever fails for longer than the TTL, or another holder took
    the lock over, ``lost`` becomes True, :meth:`ensure_held` raises
    :class:`LockLost`, and so does leaving the block.
    """

    def __init__(
        self,
        client: VaultClient,
        owner: str,
        *,
        mount: str = "secret",
        ttl: float | timedelta = 60.0,
        timeout: float | timedelta = 300.0,
        holder: str | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        if not owner:
            raise ValueError("owner must not be empty")
        self.client = client
        self.owner = owner
        self.ref = SecretRef(mount, f"{LOCK_FOLDER}/{quote(owner, safe='')}")
        self.ttl = _seconds(ttl)
        if self.ttl <= 0:
            raise ValueError("ttl must be positive")
        self.timeout = max(0.0, _seconds(timeout))
        self.holder = holder or default_holder()
        self.poll_interval = poll_interval
        self.version = 0  # of our own lock record while held
        self.expires: datetime | None = None
        self.held = False
        self.lost = False
        self._renewer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"OwnerLock(owner={self.owner!r}, holder={self.holder!r}, held={self.held})"

    async def _write(self, cas: int, *, release: bool = False) -> None:
        now = datetime.now(UTC)
        expires = now if release else now + timedelta(seconds=self.ttl)
        record = {
            "owner": self.owner,
            "holder": "" if release else self.holder,
            "expiresAt": expires.isoformat(),
            "writtenBy": self.holder,
            "writtenAt": now.isoformat(),
        }
        written = await self.client.write(self.ref, record, cas=cas, operation="write lock")
        if cas == 0:
            await self.client.write_metadata(
                self.ref, max_versions=LOCK_MAX_VERSIONS, operation="write lock"
            )
        self.version = written.version
        self.expires = expires

    # -- lifecycle ----------------------------------------------------------

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            current = await self.client.read(self.ref, operation="read lock")
            record: dict[str, Any] = dict(current.data or {}) if current.live else {}
            holder = str(record.get("holder") or "")
            expires = parse_time(record.get("expiresAt"))
            now = datetime.now(UTC)
            if not holder or expires is None or expires <= now or holder == self.holder:
                try:
                    await self._write(current.number)
                except CasConflict:
                    continue  # another contender wrote first: look again
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise LockTimeout(self.owner, holder, expires)
            until_expiry = (expires - now).total_seconds()
            # Jitter keeps contenders that started together from polling in lockstep.
            wait = min(self.poll_interval, remaining, until_expiry + 0.05) * random.uniform(
                0.8, 1.0
            )
            await asyncio.sleep(max(wait, 0.01))
        self.held = True
        self.lost = False
        log.info("locked owner %s as %s (lease %.0fs)", self.owner, self.holder, self.ttl)
        self._renewer = asyncio.create_task(self._renew(), name=f"renew lock {self.owner}")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self._write(self.version)
            except CasConflict:
                self._lose("another holder took it over")
                return
            except VaultError as error:
                if self.expires is None or datetime.now(UTC) >= self.expires:
                    self._lose(f"renewal failed until the lease expired ({error})")
                    return
                log.warning("could not renew the lock of owner %s, retrying: %s", self.owner, error)

    def _lose(self, why: str) -> None:
        self.lost = True
        log.error("lost the lock of owner %s: %s", self.owner, why)

    def ensure_held(self) -> None:
        """Raise :class:`LockLost` unless the lease is still ours; call before side effects."""
        if not self.held or self.lost:
            raise LockLost(f"the lock of owner {self.owner!r} is no longer held by this run")

    async def release(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if not self.held:
            return
        self.held = False
        if self.lost:
            return
        try:
            await self._write(self.version, release=True)
        except CasConflict:
            self._lose("it was taken over before release")
        except VaultError as error:
            log.warning(
                "could not release the lock of owner %s; it expires by itself at %s: %s",
                self.owner,
                self.expires,
                error,
            )
        else:
            log.info("unlocked owner %s", self.owner)

    async def __aenter__(self) -> OwnerLock:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()
        if self.lost and exc is None:
            raise LockLost(
                f"the lock of owner {self.owner!r} was lost while this run held it; "
                "another run may have acted concurrently"
            )
