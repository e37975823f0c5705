"""The KSeF API client: one per environment, shared by every context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from ksefctl.ksef import auth
from ksefctl.ksef.auth import PendingAuth, json_of
from ksefctl.ksef.errors import ServerError, TransportError, ValidationFailed
from ksefctl.ksef.keys import TOKEN_ENCRYPTION, PublicKey, parse_public_keys, select_key
from ksefctl.ksef.pacing import PUBLIC_KEYS
from ksefctl.ksef.session import Session
from ksefctl.ksef.settings import ClientSettings
from ksefctl.ksef.transport import ClientStats, Transport
from ksefctl.ksef.warnings import SystemWarnings
from ksefctl.secret import Secret
from ksefctl.vocabulary import ContextId

if TYPE_CHECKING:
    from ksefctl.ksef.xades_signing import SigningIdentity

log = logging.getLogger("ksefctl.ksef")

CONTEXT_TYPES = ("Nip", "InternalId")
# KSeF decides a login within seconds; a minute means it is stuck.
LOGIN_DEADLINE_S = 60.0
# "Przesłany identyfikator klucza jest nieznany lub wskazuje na wycofany klucz."
UNKNOWN_PUBLIC_KEY = 21470
# Whole logins started over after a transport failure or 5xx half-way.
LOGIN_ATTEMPTS = 3


class KsefClient:
    """Talks to one KSeF environment (``https://api-test.ksef.mf.gov.pl/v2`` …).

    Keep one per environment for the whole run: it holds the connection pool,
    the public keys and one rate limiter per (endpoint, context).
    """

    def __init__(self, base_url: str, settings: ClientSettings | None = None) -> None:
        self.settings = settings or ClientSettings()
        self._transport = Transport(base_url, self.settings)
        self.base_url = str(self._transport.base_url)
        self._keys: list[PublicKey] | None = None
        self._keys_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"KsefClient({self.base_url!r})"

    @property
    def stats(self) -> ClientStats:
        """Requests sent and 429s received, per context."""
        return self._transport.stats

    @property
    def warnings(self) -> SystemWarnings:
        """The X-System-Warning values KSeF sent this client, grouped, with their endpoints."""
        return self._transport.warnings

    async def __aenter__(self) -> KsefClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    # -- public keys -----------------------------------------------------------

    async def public_keys(self) -> list[PublicKey]:
        """KSeF's public-key certificates, fetched once per client (again after a 21470)."""
        async with self._keys_lock:
            if self._keys is None:
                self._keys = await self._fetch_keys()
            return self._keys

    async def _fetch_keys(self) -> list[PublicKey]:
        where = "GET /security/public-key-certificates"
        response = await self._transport.request(
            PUBLIC_KEYS,
            "/security/public-key-certificates",
            context=None,
            idempotent=True,
        )
        return parse_public_keys(json_of(response, where))

    async def token_encryption_key(self) -> PublicKey:
        return select_key(await self.public_keys(), TOKEN_ENCRYPTION)

    async def _key_after_refusal(self, refused: PublicKey) -> PublicKey:
        """The key to use after KSeF refused ``refused`` with 21470 (an emergency rotation).

        The list is fetched again once for all the logins that met the refusal:
        whoever comes after the refetch finds a list without the refused key
        and uses it as it is.
        """
        async with self._keys_lock:
            if self._keys is None or any(
                k.public_key_id == refused.public_key_id for k in self._keys
            ):
                self._keys = await self._fetch_keys()
                log.info(
                    "KSeF refused public key %s (21470): fetched the keys again",
                    refused.public_key_id,
                )
            keys = self._keys
        return select_key(keys, TOKEN_ENCRYPTION)

    # -- login -----------------------------------------------------------------

    async def login_with_token(
        self, context_type: str, context_value: str, ksef_token: Secret
    ) -> Session:
        """Log into a context with a KSeF token (encrypted under KSeF's public key)."""
        context = _context(context_type, context_value)

        async def start() -> PendingAuth:
            key = await self.token_encryption_key()
            try:
                return await self._start_with_token(context, ksef_token, key)
            except ValidationFailed as error:
                if UNKNOWN_PUBLIC_KEY not in error.codes:
                    raise
                # The key was retired (emergency rotation): one retry with the current list.
                fresh = await self._key_after_refusal(key)
                if fresh.public_key_id == key.public_key_id:
                    raise
                return await self._start_with_token(context, ksef_token, fresh)

        return await self._login(context, start)

    async def _start_with_token(
        self, context: ContextId, ksef_token: Secret, key: PublicKey
    ) -> PendingAuth:
        # A fresh challenge each time: KSeF may have spent the last one on the refusal.
        challenge = await auth.challenge(self._transport)
        encrypted = key.encrypt_token(ksef_token, challenge.timestamp_ms)
        return await auth.start_with_token(
            self._transport, context, challenge, encrypted, key.public_key_id
        )

    async def login_with_certificate(
        self,
        context_type: str,
        context_value: str,
        identity: SigningIdentity,
        subject_identifier_type: str = "certificateSubject",
    ) -> Session:
        """Log into a context with a XAdES-signed AuthTokenRequest."""
        # Imported here so the client works (token logins) without the signer's dependencies.
        from ksefctl.ksef.xades_signing import build_auth_request, sign_auth_request

        context = _context(context_type, context_value)

        async def start() -> PendingAuth:
            challenge = await auth.challenge(self._transport)
            document = build_auth_request(
                challenge.challenge, context.type, context.value, subject_identifier_type
            )
            # RSA/ECDSA signing and c14n take milliseconds: keep the event loop free.
            signed = await asyncio.to_thread(sign_auth_request, document, identity)
            return await auth.start_with_signature(self._transport, context, signed)

        return await self._login(context, start)

    async def resume_session(
        self,
        context_type: str,
        context_value: str,
        reference_number: str,
        refresh_token: Secret,
        refresh_valid_until: datetime,
    ) -> Session:
        """Take up a session a previous run kept: one ``POST /auth/token/refresh``.

        KSeF counts the refresh against the context, not against the per-IP
        counters of the unauthenticated login calls, so resuming skips the
        login floor as well as four requests.  Raises :class:`KsefError`
        (usually :class:`NotAuthenticated` or a 400 21301) when KSeF no longer
        honours the refresh token; the caller then logs in afresh.
        """
        context = _context(context_type, context_value)
        access = await auth.refresh(self._transport, context, refresh_token)
        # KSeF's clock, as the refresh answer showed it, measures what is left.
        server_now = access.valid_until - timedelta(seconds=access.lifetime_s)
        refresh = auth.IssuedToken(
            refresh_token,
            refresh_valid_until,
            max(0.0, (refresh_valid_until - server_now).total_seconds()),
            access.received_at,
        )
        session = Session(
            self._transport,
            context,
            reference_number,
            access,
            refresh,
            ambiguity_recheck_s=self.settings.ambiguity_recheck_s,
        )
        log.debug("resumed the session of %s (auth %s)", context, reference_number)
        if self.settings.learn_rate_limits:
            await session.learn_rate_limits()
        return session

    async def _login(
        self, context: ContextId, start: Callable[[], Awaitable[PendingAuth]]
    ) -> Session:
        # A challenge is single use and a redeem happens once, so a login that
        # failed half-way is started over from a new challenge, never resumed.
        attempt = 0
        while True:
            attempt += 1
            try:
                pending = await start()
                await auth.await_outcome(self._transport, context, pending, LOGIN_DEADLINE_S)
                access, refresh = await auth.redeem(self._transport, context, pending)
                break
            except (TransportError, ServerError) as error:
                if attempt >= LOGIN_ATTEMPTS:
                    raise
                log.debug("login into %s failed (%s); starting over", context, error)
                await asyncio.sleep(self._transport.retry.backoff(attempt))
        session = Session(
            self._transport,
            context,
            pending.reference_number,
            access,
            refresh,
            ambiguity_recheck_s=self.settings.ambiguity_recheck_s,
        )
        log.debug("logged into %s (auth %s)", context, pending.reference_number)
        if self.settings.learn_rate_limits:
            await session.learn_rate_limits()
        return session


def _context(context_type: str, context_value: str) -> ContextId:
    if context_type not in CONTEXT_TYPES:
        raise ValueError(f"context type must be one of {', '.join(CONTEXT_TYPES)}")
    return ContextId(context_type, context_value)  # type: ignore[arg-type]
