"""Cached KSeF sessions: a refresh token per (owner, environment, context) in Vault.

A full KSeF login costs four requests, two of them in the one bucket of 60
requests/s KSeF keeps per client IP for calls it cannot attribute to a
context.  A refresh token (alive up to 7 days) turns the next run's login
into one ``POST /auth/token/refresh``, counted against the context.  ksefctl
keeps it at ``<mount>/.ksefctl/sessions/<owner>/<environment>/<Type-value>``:

- next to the certificates and tokens it already guards, in the store the
  operator already trusts with secrets, under the owner's own mount, so the
  Vault policy that grants the owner's tokens grants its sessions;
- with the base URL and a fingerprint of the login credentials, so a session
  is never resumed against another KSeF or after the credentials changed;
- with ``max_versions`` 1, so an overwritten refresh token leaves no history;
- written with check-and-set, so two runs never silently swap sessions.

Any refusal by Vault makes the cache unavailable for the rest of the run (a
warning, then full logins as without a cache): a policy that predates the
cache never breaks a run.  The refresh token is a :class:`Secret` from the
moment it is read and is never logged.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ksefctl.secret import Secret
from ksefctl.vault.client import VaultClient
from ksefctl.vault.errors import CasConflict, VaultError, VaultPermissionDenied
from ksefctl.vault.kv import parse_time, rfc3339
from ksefctl.vault.store import MANAGED_BY, VaultStore
from ksefctl.vocabulary import ContextId, SecretRef

log = logging.getLogger("ksefctl.vault")

SESSION_FOLDER = ".ksefctl/sessions"


def credentials_fingerprint(material: str) -> str:
    """A one-way label of the login credentials (certificate DER hex or KSeF token)."""
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class CachedSession:
    """A KSeF session one run left open for the next."""

    # Of the authentication operation: DELETE /auth/sessions/{it} ends the session.
    reference_number: str
    refresh_token: Secret
    refresh_valid_until: datetime
    base_url: str
    credentials: str  # credentials_fingerprint() of the login that opened it


@dataclass(frozen=True)
class CacheEntry:
    """What a path held when read: the session (if any readable) and the version for CAS."""

    session: CachedSession | None
    version: int  # 0 when never written or deleted


class SessionCache:
    """Reads, writes and forgets cached sessions over the store's Vault connection."""

    def __init__(self, store: VaultStore | VaultClient) -> None:
        self.client = store.client if isinstance(store, VaultStore) else store
        self.available = True
        self._warned = False

    def ref(self, mount: str, owner: str, environment: str, context: ContextId) -> SecretRef:
        parts = (owner, environment, f"{context.type}-{context.value}")
        return SecretRef(mount, "/".join([SESSION_FOLDER, *(quote(p, safe="") for p in parts)]))

    def _disable(self, error: VaultError) -> None:
        self.available = False
        if not self._warned:
            self._warned = True
            log.warning(
                "KSeF session cache off for this run (Vault: %s); logging in fully. "
                "Grant the policy %s/* or pass --no-session-cache.",
                error,
                SESSION_FOLDER,
            )

    async def read(self, ref: SecretRef) -> CacheEntry:
        if not self.available:
            return CacheEntry(None, 0)
        try:
            current = await self.client.read(ref, operation="read session")
        except VaultPermissionDenied as error:
            self._disable(error)
            return CacheEntry(None, 0)
        if not current.live or not current.data:
            return CacheEntry(None, current.number)
        return CacheEntry(_parse(current.data), current.number)

    async def write(self, ref: SecretRef, owner: str, session: CachedSession, *, cas: int) -> bool:
        """Store ``session`` if the path is still at version ``cas``; False if not stored."""
        if not self.available:
            return False
        data = {
            "referenceNumber": session.reference_number,
            "refreshToken": session.refresh_token.reveal(),
            "refreshTokenValidUntil": rfc3339(session.refresh_valid_until),
            "baseUrl": session.base_url,
            "credentials": session.credentials,
        }
        try:
            await self.client.write(ref, data, cas=cas, operation="write session")
            if cas == 0:
                await self.client.write_metadata(
                    ref,
                    # An overwritten refresh token must not linger in history.
                    max_versions=1,
                    custom_metadata={
                        "managedBy": MANAGED_BY,
                        "owner": owner,
                        "kind": "ksef-session",
                    },
                    operation="write session",
                )
        except CasConflict:
            log.debug("%s was written by another run; not caching this session", ref)
            return False
        except VaultPermissionDenied as error:
            self._disable(error)
            return False
        return True

    async def forget(self, ref: SecretRef) -> None:
        """Remove the entry with all its versions (the refresh token must not stay recoverable)."""
        await self.client.delete_all(ref, operation="forget session")


def _parse(data: Any) -> CachedSession | None:
    # An entry this version cannot read is treated as absent and overwritten.
    try:
        until = parse_time(data.get("refreshTokenValidUntil"))
        fields = [data.get(k) for k in ("referenceNumber", "refreshToken", "baseUrl")]
        if until is None or not all(isinstance(f, str) and f for f in fields):
            return None
        return CachedSession(
            reference_number=str(data["referenceNumber"]),
            refresh_token=Secret(str(data["refreshToken"])),
            refresh_valid_until=until,
            base_url=str(data["baseUrl"]),
            credentials=str(data.get("credentials") or ""),
        )
    except (AttributeError, TypeError):
        return None
