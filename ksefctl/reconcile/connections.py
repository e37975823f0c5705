"""A run's connections: KSeF clients, login credentials, sessions and the session cache.

One KSeF client per environment (shared connection pool and public-key
cache), one session per (owner, context), kept open from observation to
execution so that a no-op ``plan`` costs a single login per context and
``apply`` does not log in twice.

Sessions are cached in Vault (``ksefctl.vault.sessions``) according to
``RunSettings.session_cache``: ``"use"`` (apply, rotate) resumes a context's
session with one refresh instead of logging in, leaves it open for the next
run, and writes the refresh token of every fresh login back; ``"read"`` (plan,
status) resumes cached sessions but writes nothing to Vault and ends the
sessions it opened itself; ``"off"`` neither reads nor writes; ``"end"``
(break-glass ``revoke``) logs in afresh and ends and forgets every cached
session of the contexts it touched.  A cached session that KSeF refuses
(ended, expired, its KSeF token revoked) falls back to a full login; one that
no longer fits (other credentials or KSeF, near its end) is ended by the
``"use"`` run that replaces it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial

from ksefctl.errors import KsefctlError
from ksefctl.ksef import ClientSettings, KsefClient, KsefError, Session, TransportError
from ksefctl.ksef.xades_signing import SigningIdentity, load_identity, load_pkcs12
from ksefctl.manifest.model import AuthSpec, DesiredContext, Policy, SecretRef
from ksefctl.reconcile.fanout import drain
from ksefctl.reconcile.settings import Key, RunSettings
from ksefctl.secret import Secret
from ksefctl.vault import VaultStore
from ksefctl.vault.sessions import (
    CachedSession,
    CacheEntry,
    SessionCache,
    credentials_fingerprint,
)

log = logging.getLogger("ksefctl.engine")


class Connections:
    def __init__(self, store: VaultStore, settings: RunSettings) -> None:
        self.store = store
        self.settings = settings
        self.sessions: dict[Key, Session] = {}
        self._clients: dict[str, KsefClient] = {}
        self._identities: dict[SecretRef, asyncio.Task[SigningIdentity | Secret]] = {}
        self._identity_uses: dict[SecretRef, int] = {}  # logins still to come, per credential
        self._cache = SessionCache(store) if settings.session_cache != "off" else None
        self._cache_entries: dict[Key, tuple[SecretRef, CacheEntry]] = {}
        self._kept: set[Key] = set()  # sessions left open for the next run

    def client(self, base_url: str) -> KsefClient:
        client = self._clients.get(base_url)
        if client is None:
            client = KsefClient(
                base_url,
                ClientSettings(
                    ca_bundle=self.settings.ca_bundle,
                    event_hooks=self.settings.event_hooks or {},
                    # Learnt before a context's first write (apply), not on every login.
                    learn_rate_limits=False,
                    max_wait_s=self.settings.max_wait_s,
                    on_wait=self.settings.on_wait,
                    warnings=self.settings.warnings,
                ),
            )
            self._clients[base_url] = client
        return client

    @property
    def clients(self) -> list[KsefClient]:
        return list(self._clients.values())

    def expect_logins(self, contexts: Iterable[DesiredContext]) -> None:
        """How many logins each credential will serve, so it is freed after its last one."""
        self._identity_uses = {}
        for context in contexts:
            ref = context.auth.secret
            self._identity_uses[ref] = self._identity_uses.get(ref, 0) + 1

    async def session(self, policy: Policy, context: DesiredContext) -> Session:
        """The context's session: the one already open, a resumed one, or a fresh login."""
        key = (policy.owner, context.context)
        session = self.sessions.get(key)
        if session is None:
            session = await self._login(policy, context)
            self.sessions[key] = session
        return session

    async def _credentials(self, auth: AuthSpec) -> SigningIdentity | Secret:
        # One certificate often serves many contexts (an accounting office):
        # read and parse it once per run.
        task = self._identities.get(auth.secret)
        if task is None:
            task = asyncio.ensure_future(self._load_credentials(auth))
            self._identities[auth.secret] = task
        try:
            return await task
        finally:
            # A parsed certificate and key cost ~6 KB of OpenSSL memory each; with
            # one per company, keep them only until their last context logged in.
            left = self._identity_uses.get(auth.secret, 1) - 1
            self._identity_uses[auth.secret] = left
            if left <= 0:
                self._identities.pop(auth.secret, None)

    async def _load_credentials(self, auth: AuthSpec) -> SigningIdentity | Secret:
        if auth.method == "ksefToken":
            return (await self.store.read_credentials(auth.secret, required=["token"]))["token"]
        values = await self.store.read_credentials(auth.secret)
        password = values["password"].reveal() if "password" in values else None
        if "pkcs12" in values:
            try:
                bundle = base64.b64decode(values["pkcs12"].reveal(), validate=True)
            except binascii.Error:
                raise KsefctlError(f"Vault secret {auth.secret}: 'pkcs12' is not base64") from None
            return load_pkcs12(bundle, password)
        if "certificate" not in values or "privateKey" not in values:
            raise KsefctlError(
                f"Vault secret {auth.secret} needs 'certificate' and 'privateKey' (PEM) or 'pkcs12'"
            )
        return load_identity(
            values["certificate"].reveal(), values["privateKey"].reveal(), password
        )

    async def _full_login(
        self, context: DesiredContext, credentials: SigningIdentity | Secret
    ) -> Session:
        client = self.client(context.base_url)
        if isinstance(credentials, Secret):
            return await client.login_with_token(
                context.context.type, context.context.value, credentials
            )
        return await client.login_with_certificate(
            context.context.type,
            context.context.value,
            credentials,
            context.auth.subject_identifier_type,
        )

    async def _login(self, policy: Policy, context: DesiredContext) -> Session:
        cache = self._cache
        if cache is None:
            return await self._full_login(context, await self._credentials(context.auth))
        key = (policy.owner, context.context)
        ref = cache.ref(policy.vault_mount, policy.owner, policy.environment, context.context)
        credentials, entry = await asyncio.gather(self._credentials(context.auth), cache.read(ref))
        self._cache_entries[key] = (ref, entry)
        client = self.client(context.base_url)
        fingerprint = _fingerprint(credentials, context.auth)
        cached = entry.session
        resume = self.settings.session_cache in ("use", "read")
        if resume and cached is not None and self._resumable(cached, client.base_url, fingerprint):
            try:
                session = await client.resume_session(
                    context.context.type,
                    context.context.value,
                    cached.reference_number,
                    cached.refresh_token,
                    cached.refresh_valid_until,
                )
            except KsefError as error:
                log.info("cached KSeF session of %s not resumed: %s", context.context, error)
                if not isinstance(error, TransportError):
                    cached = None  # KSeF refused it: that session is over
            else:
                self._kept.add(key)
                return session
        session = await self._full_login(context, credentials)
        if self.settings.session_cache != "use":
            return session  # "read" (plan, status) writes nothing to Vault
        grant = session.refresh_grant
        record = CachedSession(
            reference_number=session.reference_number,
            refresh_token=grant.token,
            refresh_valid_until=grant.valid_until,
            base_url=client.base_url,
            credentials=fingerprint,
        )
        try:
            if await cache.write(ref, policy.owner, record, cas=entry.version):
                self._kept.add(key)
        except KsefctlError as error:
            log.warning("could not cache the KSeF session of %s: %s", context.context, error)
        if cached is not None and cached.base_url == client.base_url:
            # Still alive but unfit (other credentials, near its end): nobody will resume it.
            await _end_quietly(session, cached.reference_number)
        return session

    def _resumable(self, cached: CachedSession, base_url: str, fingerprint: str) -> bool:
        left = (cached.refresh_valid_until - datetime.now(UTC)).total_seconds()
        return (
            cached.base_url == base_url
            and cached.credentials == fingerprint
            and left > self.settings.session_min_life_s
        )

    async def _end_cached(self, key: Key) -> None:
        """Break-glass: end the context's cached session on KSeF and remove it from Vault."""
        assert self._cache is not None
        ref, entry = self._cache_entries[key]
        cached = entry.session
        if cached is not None:
            session = self.sessions.get(key)
            if session is not None:
                if cached.reference_number != session.reference_number:
                    await _end_quietly(session, cached.reference_number)
            else:
                # Our own login failed; the cached refresh token can still end its session.
                try:
                    resumed = await self.client(cached.base_url).resume_session(
                        key[1].type,
                        key[1].value,
                        cached.reference_number,
                        cached.refresh_token,
                        cached.refresh_valid_until,
                    )
                    await resumed.close()
                except KsefError as error:
                    log.info("cached KSeF session of %s not resumed to end it: %s", key[1], error)
        if entry.version:
            try:
                await self._cache.forget(ref)
            except KsefctlError as error:
                log.warning("could not remove the cached KSeF session %s: %s", ref, error)

    async def close(self) -> None:
        # Bounded like the work itself: ten thousand session ends launched at once
        # held ten thousand in-flight requests — most of a large plan's peak memory.
        workers = max(1, self.settings.parallelism)
        if self.settings.session_cache == "end":
            await drain([partial(self._end_cached, key) for key in self._cache_entries], workers)
        sessions = [s for k, s in self.sessions.items() if k not in self._kept]
        self.sessions = {}
        await drain([s.close for s in sessions], workers)
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


def _fingerprint(credentials: SigningIdentity | Secret, auth: AuthSpec) -> str:
    # Who logs in decides what a session may do: a session opened with other
    # credentials (or identifying the signer otherwise) is not resumed.
    if isinstance(credentials, Secret):
        return credentials_fingerprint(f"ksefToken:{credentials.reveal()}")
    return credentials_fingerprint(
        f"certificate:{credentials.fingerprint}:{auth.subject_identifier_type}"
    )


async def _end_quietly(session: Session, reference_number: str) -> None:
    try:
        await session.end_session(reference_number)
    except KsefError as error:
        log.info(
            "could not end KSeF session %s of %s: %s", reference_number, session.context, error
        )
