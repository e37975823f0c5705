"""One HTTP exchange with KSeF: limits, retries, error mapping, logging, counting.

Everything that goes over the wire passes :meth:`Transport.request`, so the
rate limiter, the retry rules and the mapping of httpx's exceptions into
:mod:`ksefctl.ksef.errors` live in exactly one place.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx

from ksefctl.ksef._aiohttp import AiohttpTransport
from ksefctl.ksef.errors import (
    InsecureEndpoint,
    KsefError,
    RateLimited,
    ServerError,
    TransportError,
    WaitTooLong,
    error_from_response,
)
from ksefctl.ksef.pacing import Endpoint, Limiter, WindowLimits
from ksefctl.ksef.settings import ClientSettings
from ksefctl.ksef.warnings import SystemWarnings
from ksefctl.secret import Secret
from ksefctl.vocabulary import ContextId, is_loopback

log = logging.getLogger("ksefctl.ksef")

MAX_CONNECTIONS = 100
KEEPALIVE_S = 30.0
TIMEOUT_S = 30.0


@dataclass
class ClientStats:
    """What was sent, per context (``str(ContextId)``, or ``-`` before login)."""

    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    rate_limited: collections.Counter[str] = field(default_factory=collections.Counter)
    retries: collections.Counter[str] = field(default_factory=collections.Counter)

    def total_requests(self) -> int:
        return sum(self.requests.values())

    def total_rate_limited(self) -> int:
        return sum(self.rate_limited.values())


def _context_key(context: ContextId | None) -> str:
    return str(context) if context is not None else "-"


def check_base_url(base_url: str) -> httpx.URL:
    """The parsed base URL; plain http only to this machine (credentials travel in headers)."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as error:
        raise InsecureEndpoint(f"invalid KSeF base URL {base_url!r}: {error}") from None
    if url.scheme == "https":
        return url
    if url.scheme == "http" and is_loopback(url.host):
        return url
    raise InsecureEndpoint(
        f"refusing KSeF base URL {base_url!r}: only https:// (or http:// to localhost) is allowed"
    )


def transport_failure(error: httpx.RequestError, method: str, path: str) -> TransportError:
    """The one place that decides whether a request without an answer may have reached KSeF."""
    reason = str(error) or type(error).__name__
    if _is_tls_failure(error):
        # A handshake or certificate failure happens before anything is sent,
        # and retrying will not change KSeF's certificate.
        return TlsError(f"TLS failure talking to KSeF ({method} {path}): {reason}")
    # A connection that never opened carried nothing: even POST /tokens may be repeated.
    sent = not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return TransportError(
        f"KSeF unreachable ({method} {path}): {type(error).__name__}: {reason}", sent=sent
    )


def _is_tls_failure(error: BaseException) -> bool:
    # httpcore and our aiohttp transport both chain the ssl.SSLError they met
    # (aiohttp's certificate errors are ssl.SSLError subclasses themselves).
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        if isinstance(link, ssl.SSLError | aiohttp.ClientSSLError):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


class TlsError(TransportError):
    """A certificate or handshake failure: nothing was sent, and retrying will not help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=False)


def _per(limits: WindowLimits) -> str:
    """``30 per minute, 120 per hour``: the windows a wait comes from."""
    names = {1.0: "second", 60.0: "minute", 3600.0: "hour"}
    return ", ".join(
        f"{n} per {names.get(length, f'{length:.0f} s')}" for length, n in limits.windows()
    )


class Transport:
    def __init__(self, base_url: str, settings: ClientSettings | None = None) -> None:
        self.base_url = check_base_url(base_url)
        settings = settings or ClientSettings()
        headers = {"Accept": "application/json", "User-Agent": "ksefctl"}
        if settings.problem_details:
            headers["X-Error-Format"] = "problem-details"
        transport = settings.transport
        if transport is None:
            # aiohttp's pool costs O(1) per request where httpcore's scans every connection.
            tls = (
                ssl.create_default_context(cafile=settings.ca_bundle)
                if settings.ca_bundle
                else True
            )
            transport = AiohttpTransport(
                tls=tls, max_connections=MAX_CONNECTIONS, keepalive_expiry_s=KEEPALIVE_S
            )
        # TLS and the pool belong to the transport above: httpx ignores its own
        # verify/limits whenever a transport is given, so none are passed here.
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=TIMEOUT_S,
            transport=transport,
            # A redirect would carry the Authorization header to wherever it points.
            follow_redirects=False,
            headers=headers,
            event_hooks={k: list(v) for k, v in settings.event_hooks.items()},
        )
        self.retry = settings.retry
        self._max_wait_s = settings.max_wait_s
        self._on_wait = settings.on_wait
        self._announce_wait_s = settings.announce_wait_s
        # Per limiter, until when a wait was already announced: one line per wait, not per request.
        self._announced: dict[int, float] = {}
        self._limiters: dict[tuple[str, ContextId | None], Limiter] = {}
        # Each context's limiters, so learnt limits reach them without a scan of all contexts.
        self._by_context: dict[ContextId, list[tuple[Endpoint, Limiter]]] = {}
        # What GET /rate-limits said per (group, context); it outranks the documented defaults.
        self._learned: dict[tuple[str, ContextId], WindowLimits] = {}
        self.stats = ClientStats()
        self.warnings = settings.warnings if settings.warnings is not None else SystemWarnings()

    def _before_wait(
        self,
        limiter: Limiter,
        endpoint: Endpoint,
        context: ContextId | None,
        wait: float,
        why: str,
    ) -> None:
        """Refuse a wait beyond ``max_wait_s``; announce a long one once."""
        if math.isinf(wait) or (
            wait <= self._announce_wait_s and (self._max_wait_s is None or wait <= self._max_wait_s)
        ):
            return  # short, or only an answer in flight can free a slot
        where = str(context) if context is not None else "this client"
        per = _per(limiter.limits)
        if self._max_wait_s is not None and wait > self._max_wait_s:
            at = datetime.now(UTC) + timedelta(seconds=wait)
            raise WaitTooLong(
                f"KSeF's rate limit of {endpoint.name} ({per}) would hold {where} for "
                f"{wait:.0f} s, more than --max-wait {self._max_wait_s:.0f} s; nothing sent, "
                f"retry after {at:%H:%M:%S} UTC"
            )
        now = time.monotonic()
        if self._on_wait is not None and self._announced.get(id(limiter), 0.0) <= now:
            self._announced[id(limiter)] = now + wait
            self._on_wait(where, endpoint.name, wait, f"{why}, {per}")

    def limiter(self, endpoint: Endpoint, context: ContextId | None) -> Limiter:
        """The limiter of one endpoint in one context (per IP for public ones), shared by all
        its sessions: KSeF keeps a counter per endpoint, and one endpoint's traffic never
        slows another's."""
        counted = None if endpoint.public else context
        key = (endpoint.name, counted)
        found = self._limiters.get(key)
        if found is None:
            limits = endpoint.limits
            if endpoint.group is not None and counted is not None:
                limits = self._learned.get((endpoint.group, counted), limits)
            found = self._limiters[key] = Limiter(limits)
            if counted is not None:
                self._by_context.setdefault(counted, []).append((endpoint, found))
        return found

    def adopt_limits(self, group: str, context: ContextId, limits: WindowLimits) -> None:
        """Pace every endpoint of ``group`` in ``context`` by what KSeF says is in force."""
        self._learned[(group, context)] = limits
        for endpoint, limiter in self._by_context.get(context, ()):
            if endpoint.group == group:
                limiter.update(limits)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        endpoint: Endpoint,
        path: str,
        *,
        context: ContextId | None,
        idempotent: bool,
        ok: tuple[int, ...] = (200,),
        bearer: Secret | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one call, honouring the limits; retry what is safe to retry.

        ``path`` is ``endpoint``'s path with its parameters filled in.  A
        non-idempotent call is repeated only after a 429 or a connection that
        never opened, both of which prove KSeF did not act on it.  Public
        endpoints are paced per client IP, whatever ``context`` they are
        counted under in :attr:`stats`.
        """
        method = endpoint.name.split(" ", 1)[0]
        key = _context_key(context)
        limiter = self.limiter(endpoint, context)
        all_headers = dict(headers or {})
        if bearer is not None:
            all_headers["Authorization"] = f"Bearer {bearer.reveal()}"
        failures = 0
        limited = 0
        while True:
            response: httpx.Response | None = None
            error: KsefError
            async with limiter.slot(
                lambda wait: self._before_wait(limiter, endpoint, context, wait, "pacing")
            ):
                self.stats.requests[key] += 1
                started = time.monotonic()
                try:
                    response = await self._http.request(
                        method, path, params=params, json=json, content=content, headers=all_headers
                    )
                except httpx.RequestError as exc:
                    error = transport_failure(exc, method, path)
                    log.debug(
                        "%s %s -> %s after %.1f ms [%s]",
                        method,
                        path,
                        type(exc).__name__,
                        (time.monotonic() - started) * 1000,
                        key,
                    )
                else:
                    log.debug(
                        "%s %s -> %d in %.1f ms [%s]",
                        method,
                        path,
                        response.status_code,
                        (time.monotonic() - started) * 1000,
                        key,
                    )
            if response is not None:
                for value in response.headers.get_list("x-system-warning"):
                    self.warnings.note(endpoint.name, value)
                if response.status_code in ok:
                    return response
                error = error_from_response(response)
            if isinstance(error, RateLimited):
                self.stats.rate_limited[key] += 1
                limited += 1
                wait = error.retry_after
                if wait is None:
                    wait = self.retry.backoff(limited)
                limiter.block_for(wait)
                if limited > self.retry.max_rate_limited:
                    raise error
                self._before_wait(limiter, endpoint, context, wait, "429 Retry-After")
                log.debug("429 on %s %s [%s]: waiting %.2f s", method, path, key, wait)
                self.stats.retries[key] += 1
                continue
            retriable = (
                isinstance(error, TransportError)
                and not isinstance(error, TlsError)
                and (idempotent or not error.sent)
            ) or (isinstance(error, ServerError) and idempotent)
            failures += 1
            if not retriable or failures >= self.retry.max_attempts:
                raise error
            self.stats.retries[key] += 1
            await asyncio.sleep(self.retry.backoff(failures))
