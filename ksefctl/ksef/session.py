"""A logged-in KSeF session in one context: token operations and rate limits."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ksefctl.ksef import auth
from ksefctl.ksef import pacing as endpoints
from ksefctl.ksef.auth import IssuedToken, json_of
from ksefctl.ksef.errors import (
    AmbiguousTokenCreation,
    KsefError,
    NotAuthenticated,
    NotFound,
    ServerError,
    TokenStatusTimeout,
    TransportError,
    UnexpectedResponse,
    ValidationFailed,
)
from ksefctl.ksef.models import Fields, GeneratedToken, TokenInfo
from ksefctl.ksef.pacing import OTHER, Endpoint, WindowLimits, minimum_duration
from ksefctl.ksef.transport import Transport
from ksefctl.vocabulary import FINAL, NOT_REVOKED, USABLE, ContextId

if TYPE_CHECKING:
    from ksefctl.ksef.certificates import Certificates
    from ksefctl.ksef.permissions import Permissions

log = logging.getLogger("ksefctl.ksef")

# An access token is refreshed this long before it dies (at most a fifth of its life).
REFRESH_MARGIN_S = 60.0
# Statuses after which a token never changes again.
FINAL_STATUSES = frozenset(FINAL)
# Statuses of a token that can still be used or become usable: an orphan to revoke.
LIVE_STATUSES = frozenset(USABLE)


class Session:
    """Access to one context, obtained by :meth:`KsefClient.login_with_token` and friends.

    The access token is refreshed shortly before it expires (and once more if
    KSeF refuses it anyway); ``close()`` ends the session on KSeF's side.
    """

    def __init__(
        self,
        transport: Transport,
        context: ContextId,
        reference_number: str,
        access: IssuedToken,
        refresh: IssuedToken,
        *,
        ambiguity_recheck_s: float = 2.0,
    ) -> None:
        self._transport = transport
        self.context = context
        self.reference_number = reference_number  # of the authentication operation
        self._access = access
        self._refresh = refresh
        self._ambiguity_recheck_s = ambiguity_recheck_s
        self._refresh_lock = asyncio.Lock()
        self._closed = False
        # Status polling shared by concurrent wait_for_status calls.
        self._watched: dict[str, int] = {}  # reference number → waiters
        self._poll_delay = 0.1
        self._poller: asyncio.Task[None] | None = None
        self._tick: asyncio.Future[dict[str, TokenInfo]] | None = None

    def __repr__(self) -> str:
        return f"Session({self.context}, auth {self.reference_number})"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def refresh_grant(self) -> IssuedToken:
        """The refresh token and its end: what a session cache keeps to resume this session."""
        return self._refresh

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.close()
        except KsefError as error:
            if exc is None:
                raise
            # Do not hide the error that is already on its way out.
            log.debug("ending the KSeF session of %s failed: %s", self.context, error)

    # -- access token ----------------------------------------------------------

    def _needs_refresh(self, token: IssuedToken) -> bool:
        margin = min(REFRESH_MARGIN_S, token.lifetime_s / 5)
        return time.monotonic() >= token.expires_at - margin

    async def refresh(self, *, force: bool = False) -> None:
        """Get a fresh access token with the refresh token."""
        stale = self._access
        async with self._refresh_lock:
            if self._access is not stale or not (force or self._needs_refresh(stale)):
                return  # someone else refreshed while we waited
            self._access = await auth.refresh(self._transport, self.context, self._refresh.token)
            log.debug("refreshed the KSeF access token of %s", self.context)

    async def _call(
        self,
        endpoint: Endpoint | str,
        path: str,
        *,
        idempotent: bool,
        ok: tuple[int, ...] = (200,),
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if isinstance(endpoint, str):  # an HTTP method: an endpoint pacing.py does not name
            endpoint = endpoints.unlisted(endpoint, path)
        if self._closed:
            raise KsefError(f"the KSeF session of {self.context} is closed")
        if self._needs_refresh(self._access):
            await self.refresh()
        for attempt in (1, 2):
            used = self._access
            try:
                return await self._transport.request(
                    endpoint,
                    path,
                    context=self.context,
                    idempotent=idempotent,
                    ok=ok,
                    bearer=used.token,
                    params=params,
                    json=json,
                    headers=headers,
                )
            except NotAuthenticated:
                # A 401 means KSeF did nothing; our token may have died early.
                if attempt == 2:
                    raise
                if self._access is used:
                    await self.refresh(force=True)
        raise AssertionError("unreachable")

    # -- rate limits -----------------------------------------------------------

    async def rate_limits(self) -> dict[str, Any]:
        """The limits KSeF says are in force for this context (EffectiveApiRateLimits)."""
        where = "GET /rate-limits"
        data = json_of(
            await self._call(endpoints.RATE_LIMITS, "/rate-limits", idempotent=True), where
        )
        if not isinstance(data, dict):
            raise UnexpectedResponse(f"KSeF answer to {where} is not an object")
        return data

    async def learn_rate_limits(self) -> WindowLimits | None:
        """Pace this context by the ``other`` limits KSeF reports (they govern /tokens)."""
        try:
            data = await self.rate_limits()
        except KsefError as error:
            log.debug("keeping default rate limits for %s: %s", self.context, error)
            return None
        limits = WindowLimits.from_api(data.get(OTHER))
        if limits is None:
            log.debug("keeping default rate limits for %s: no usable 'other' group", self.context)
            return None
        self._transport.adopt_limits(OTHER, self.context, limits)
        return limits

    def pace(self, endpoint: Endpoint, requests: int) -> tuple[float, WindowLimits]:
        """At least how long ``requests`` calls of ``endpoint`` take here, and the limits why.

        A lower bound: KSeF counts what earlier runs spent too, which nobody can ask it for.
        """
        limits = self._transport.limiter(endpoint, self.context).limits
        return minimum_duration(limits, requests), limits

    async def set_test_rate_limits(self, limits: Mapping[str, WindowLimits]) -> None:
        """TEST environment only: change this context's limits (``POST /testdata/rate-limits``).

        Groups not named keep the values in force; the limiter follows at once.
        """
        current = await self.rate_limits()
        body = dict(current)
        for group, values in limits.items():
            if None in (values.per_second, values.per_minute, values.per_hour):
                raise ValueError("test rate limits need per-second, -minute and -hour values")
            body[group] = {
                "perSecond": values.per_second,
                "perMinute": values.per_minute,
                "perHour": values.per_hour,
            }
        await self._call(
            endpoints.SET_TEST_RATE_LIMITS,
            "/testdata/rate-limits",
            idempotent=True,
            json={"rateLimits": body},
        )
        if OTHER in limits:
            self._transport.adopt_limits(OTHER, self.context, limits[OTHER])

    # -- tokens ----------------------------------------------------------------

    async def generate_token(
        self, permissions: Iterable[str], description: str, *, find_marker: str | None = None
    ) -> GeneratedToken:
        """Create a token; its secret is in the result and never obtainable again.

        ``POST /tokens`` is never blindly repeated.  When its outcome is unknown
        (connection lost after sending, timeout, 5xx, unreadable 202) the
        tokens whose description contains ``find_marker`` (a nonce the caller
        put into ``description``) are looked up, twice if the first look finds
        nothing, and :class:`AmbiguousTokenCreation` names them.  We raise
        rather than retry even when nothing is found: a request still inside
        KSeF could surface later as a second token with the same nonce.
        """
        if find_marker is not None and (
            len(find_marker) < 3 or find_marker.lower() not in description.lower()
        ):
            raise ValueError("find_marker must be 3+ characters found in the description")
        where = "POST /tokens"
        body = {"permissions": list(permissions), "description": description}
        try:
            response = await self._call(
                endpoints.CREATE_TOKEN, "/tokens", idempotent=False, ok=(202,), json=body
            )
            f = Fields(json_of(response, where), where)
            return GeneratedToken(f.text("referenceNumber"), f.secret("token"))
        except (TransportError, ServerError, UnexpectedResponse) as error:
            if isinstance(error, TransportError) and not error.sent:
                raise  # never reached KSeF: nothing was created
            raise await self._ambiguous(error, find_marker) from error

    async def _ambiguous(self, error: KsefError, find_marker: str | None) -> AmbiguousTokenCreation:
        what = f"token creation in {self.context} ended without a usable answer ({error})"
        if find_marker is None:
            return AmbiguousTokenCreation(
                f"{what}; a token may exist without a stored secret", orphans=[], searched=False
            )
        try:
            found = await self._find_live(find_marker)
            if not found:
                # The lost request may still be on its way through KSeF.
                await asyncio.sleep(self._ambiguity_recheck_s)
                found = await self._find_live(find_marker)
        except KsefError as lookup_error:
            return AmbiguousTokenCreation(
                f"{what}; looking for marker {find_marker} failed too ({lookup_error})",
                orphans=[],
                searched=False,
            )
        if found:
            refs = [t.reference_number for t in found]
            return AmbiguousTokenCreation(
                f"{what}; its secret is lost: revoke orphan(s) {', '.join(refs)}",
                orphans=refs,
                searched=True,
            )
        return AmbiguousTokenCreation(
            f"{what}; no token with marker {find_marker} exists, generating again is safe",
            orphans=[],
            searched=True,
        )

    async def _find_live(self, marker: str) -> list[TokenInfo]:
        tokens = await self.list_tokens(description=marker)
        return [
            t
            for t in tokens
            if marker.lower() in t.description.lower() and t.status in LIVE_STATUSES
        ]

    async def list_tokens(
        self,
        statuses: Iterable[str] | None = None,
        description: str | None = None,
        author_identifier: str | None = None,
        author_identifier_type: str | None = None,
        page_size: int = 100,
    ) -> list[TokenInfo]:
        """Every token matching the filters, newest first, across all pages."""
        params: dict[str, Any] = {"pageSize": page_size}
        if statuses is not None:
            params["status"] = list(statuses)
        if description is not None:
            params["description"] = description
        if author_identifier is not None:
            params["authorIdentifier"] = author_identifier
        if author_identifier_type is not None:
            params["authorIdentifierType"] = author_identifier_type
        tokens: list[TokenInfo] = []
        continuation: str | None = None
        seen: set[str] = set()
        page = 0
        while True:
            where = f"GET /tokens (page {page + 1})"
            headers = {"x-continuation-token": continuation} if continuation else None
            response = await self._call(
                endpoints.LIST_TOKENS, "/tokens", idempotent=True, params=params, headers=headers
            )
            f = Fields(json_of(response, where), where)
            for i, item in enumerate(f.array("tokens")):
                tokens.append(TokenInfo.parse(item, f"{where}.tokens[{i}]"))
            continuation = f.opt_text("continuationToken")
            if not continuation:
                return tokens
            if continuation in seen:
                raise UnexpectedResponse(f"KSeF answer to {where} repeats a continuation token")
            seen.add(continuation)
            page += 1

    async def get_token(self, reference_number: str) -> TokenInfo:
        path = f"/tokens/{quote(reference_number, safe='')}"
        response = await self._call(endpoints.GET_TOKEN, path, idempotent=True)
        return TokenInfo.parse(json_of(response, f"GET {path}"), f"GET {path}")

    async def revoke_token(self, reference_number: str) -> None:
        """Start revoking a token (Revoking → Revoked happens asynchronously)."""
        path = f"/tokens/{quote(reference_number, safe='')}"
        await self._call(endpoints.REVOKE_TOKEN, path, idempotent=True, ok=(204,))

    async def wait_for_status(
        self, reference_number: str, statuses: set[str], deadline_s: float
    ) -> TokenInfo:
        """Poll until the token reaches one of ``statuses``.

        Raises :class:`TokenStatusTimeout` at the deadline, or at once when
        the token lands in a final status that is not awaited (e.g. Failed).
        Concurrent waits in one session share their polls (see
        :meth:`_poll_statuses`): the ``/tokens`` budget of 30 requests a
        minute is spent once per tick, not once per token.
        """
        deadline = time.monotonic() + deadline_s
        if self._tick is None:
            self._tick = asyncio.get_running_loop().create_future()
        self._watched[reference_number] = self._watched.get(reference_number, 0) + 1
        self._poll_delay = 0.1  # a new waiter wants a quick first answer
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_statuses())
        last: str | None = None
        try:
            while True:
                tick = self._tick
                assert tick is not None
                try:
                    infos = await asyncio.wait_for(
                        asyncio.shield(tick), max(0.0, deadline - time.monotonic())
                    )
                except TimeoutError:
                    raise TokenStatusTimeout(
                        f"token {reference_number} in {self.context} still {last or 'unseen'} "
                        f"after {deadline_s:g} s (waiting for {'/'.join(sorted(statuses))})"
                    ) from None
                info = infos.get(reference_number)
                if info is None:
                    continue  # joined after this tick's request was sent
                last = info.status
                if info.status in statuses:
                    return info
                if info.status in FINAL_STATUSES:
                    details = f": {'; '.join(info.status_details)}" if info.status_details else ""
                    raise TokenStatusTimeout(
                        f"token {reference_number} in {self.context} ended {info.status}"
                        f"{details}, not {'/'.join(sorted(statuses))}"
                    )
        finally:
            left = self._watched[reference_number] - 1
            if left:
                self._watched[reference_number] = left
            else:
                del self._watched[reference_number]

    async def _poll_statuses(self) -> None:
        """One request per tick for every token awaited in this session, backing off to 2 s."""
        loop = asyncio.get_running_loop()
        while self._watched:
            await asyncio.sleep(self._poll_delay)
            self._poll_delay = min(self._poll_delay * 1.5, 2.0)
            if not self._watched or self._tick is None:
                return  # every waiter left while we slept
            wanted = set(self._watched)
            tick, self._tick = self._tick, loop.create_future()
            try:
                infos = await self._statuses(wanted)
            except Exception as error:  # handed to every waiter, who raises it
                tick.set_exception(error)
                tick.exception()  # retrieved: no "never retrieved" warning if all left
            else:
                tick.set_result(infos)

    async def _statuses(self, references: set[str]) -> dict[str, TokenInfo]:
        if len(references) == 1:
            (only,) = references
            return {only: await self.get_token(only)}
        listed = await self.list_tokens(statuses=NOT_REVOKED)
        infos = {t.reference_number: t for t in listed if t.reference_number in references}
        # Not listed any more: Revoked (rare while waiting), so ask for each.
        for reference in references - infos.keys():
            infos[reference] = await self.get_token(reference)
        return infos

    # -- permissions -----------------------------------------------------------

    @property
    def permissions(self) -> Permissions:
        """Grants, revocations and queries of /permissions in this context."""
        from ksefctl.ksef.permissions import Permissions  # imported when grants are managed

        return Permissions(self)

    # -- KSeF certificates -----------------------------------------------------

    @property
    def certificates(self) -> Certificates:
        """The KSeF certificates of the subject that logged in (not of the context)."""

        async def call(operation: str, path: str, **kwargs: Any) -> httpx.Response:
            # Each certificates operation has its own counter at the documented default limits.
            return await self._call(Endpoint(operation), path, **kwargs)

        from ksefctl.ksef.certificates import Certificates  # imported when certificates are managed

        return Certificates(call, self.context)

    # -- ending ----------------------------------------------------------------

    async def end_session(self, reference_number: str) -> bool:
        """End another session of this context (``DELETE /auth/sessions/{ref}``).

        Its refresh token dies at once.  Returns False when KSeF no longer
        knows an active session by that reference (already ended or expired).
        """
        path = f"/auth/sessions/{quote(reference_number, safe='')}"
        try:
            await self._call(endpoints.END_SESSION, path, idempotent=True, ok=(204,))
        except (NotFound, ValidationFailed):
            return False
        return True

    async def close(self) -> None:
        """End the session on KSeF's side (its refresh token dies). Idempotent.

        Transport failures are swallowed: the access token dies on its own soon,
        and a run that already did its work must not fail on the way out.
        """
        if self._closed:
            return
        try:
            await self._call(
                endpoints.END_CURRENT_SESSION,
                "/auth/sessions/current",
                idempotent=True,
                ok=(204,),
            )
        except (TransportError, NotAuthenticated) as error:
            log.debug("could not end the KSeF session of %s: %s", self.context, error)
        finally:
            self._closed = True
