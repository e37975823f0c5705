"""HTTP plumbing shared by every endpoint: authentication, rate limits, statistics,
error formats, and the fault-injection layer in front of the whole app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ksefctl.sim.model import AuthOperation
from ksefctl.sim.problems import (
    ERROR_FORMAT_HEADER,
    ApiError,
    BadRequest,
    InternalError,
    TooManyRequests,
)
from ksefctl.sim.service import Simulator

SYSTEM_WARNING_HEADER = "x-system-warning"
TEST_SYSTEM_WARNING_HEADER = "x-test-system-warning"
# The rate-limit group of every /v2 endpoint ("auth" = the public 60 req/s), by route name.
RATE_GROUPS: dict[str, str] = {}

# Set by the server's protocol so a fault can close the socket without an answer.
TRANSPORT_EXTENSION = "ksefctl.sim.transport"
DROP_FLAG = "ksefctl.sim.drop"


class ConnectionDropped(Exception):
    """A fault closed the client's connection; nothing more must be sent."""


@dataclass
class Call:
    """One API request as a handler sees it."""

    sim: Simulator
    request: Request
    client_ip: str
    auth: AuthOperation | None

    @property
    def session(self) -> AuthOperation:
        assert self.auth is not None, "route declared without authentication"
        return self.auth

    async def json(self) -> dict[str, Any]:
        raw = await self.request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            raise BadRequest(21405, "Treść żądania nie jest poprawnym dokumentem JSON.") from None
        if not isinstance(body, dict):
            raise BadRequest(21405, "Treść żądania musi być obiektem JSON.")
        return body

    def drop_after_commit(self) -> None:
        """Answer nothing: the work is done but the client never hears of it."""
        self.request.scope[DROP_FLAG] = True


Handler = Callable[[Call], Awaitable[Response]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def api_route(
    sim: Simulator,
    method: str,
    path: str,
    handler: Handler,
    *,
    group: str,
    credential: str | tuple[str, ...] | None,
) -> Route:
    """An endpoint under /v2: ``credential`` is the JWT kind it needs, ``group`` its rate-limit group."""
    name = f"{method} /v2{path}"
    RATE_GROUPS[name] = group

    async def endpoint(request: Request) -> Response:
        problem = request.headers.get(ERROR_FORMAT_HEADER, "").lower() == "problem-details"
        client_ip = request.client.host if request.client else "0.0.0.0"
        context = None
        counted = False
        try:
            auth = None
            if credential is not None:
                auth = sim.authenticate(request.headers.get("authorization"), credential, client_ip)
                context = auth.context if auth.context[0] else None
            sim.count(name, context)
            counted = True
            if sim.config.rate_limits_enabled:
                # limity_limity-api.md: every endpoint has its own counter per (context, IP);
                # the group only says which values apply.
                key = (name, f"{context[0]}:{context[1]}" if context else "", client_ip)
                verdict = sim.limiter.check(key, sim.limits_for(group, context))
                if not verdict.allowed:
                    sim.stats.throttled += 1
                    raise TooManyRequests(verdict.retry_after, verdict.detail)
            # Grant changes take effect (and revoke unbacked tokens) before anything reads them.
            sim.settle_permissions()
            response = await handler(Call(sim, request, client_ip, auth))
        except ApiError as error:
            if not counted:
                sim.count(name, None)
            status, headers, body = error.render(request.url.path, problem)
            response = Response(body, status_code=status, headers=headers)
        warning = system_warning(request.headers.get(TEST_SYSTEM_WARNING_HEADER), sim)
        if warning:
            response.headers[SYSTEM_WARNING_HEADER] = warning
        sim.stats.statuses[str(response.status_code)] += 1
        return response

    return Route(f"/v2{path}", endpoint, methods=[method], name=name)


def system_warning(requested: str | None, sim: Simulator) -> str:
    """X-System-Warning (API 2.6): the ``system_warning`` fault, then what the request forced
    with X-Test-System-Warning (TEST echoes it), ASCII-folded as the contract says; several
    warnings are joined with " | " as in its ``[code]: message | [code]: message`` format."""
    if requested:
        # Header bytes arrive as latin-1; a UTF-8 sender meant something else.
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            requested = requested.encode("latin-1").decode("utf-8")
    parts = [part for part in (sim.faults.system_warning, requested) if part]
    return " | ".join(ascii_fold(part) for part in parts)


def ascii_fold(text: str) -> str:
    # NFKD strips accents but leaves Polish ł/Ł (no decomposition), so they are mapped first.
    text = text.replace("ł", "l").replace("Ł", "L")
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in folded if " " <= c <= "~").strip()


class FaultLayer:
    """Latency, injected 5xx, 429 storms and dropped connections in front of the API."""

    def __init__(self, app: ASGIApp, sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        faults = self.sim.faults
        path: str = scope["path"]
        if path.startswith(faults.path_prefix) and path.startswith("/v2"):
            rng = self.sim.rng
            delay = faults.latency_ms + (
                rng.uniform(0, faults.jitter_ms) if faults.jitter_ms else 0
            )
            if delay > 0:
                await asyncio.sleep(delay / 1000)
            if faults.drop_rate and rng.random() < faults.drop_rate:
                self.sim.stats.injected["drops"] += 1
                _drop(scope)
                # Finish the ASGI cycle into the closed socket so the server does not log an error.
                await Response(status_code=500)(scope, receive, send)
                return
            error: ApiError | None = None
            if faults.error_rate and rng.random() < faults.error_rate:
                self.sim.stats.injected["errors"] += 1
                error = InternalError()
            elif faults.storm_rate and rng.random() < faults.storm_rate:
                self.sim.stats.injected["storms"] += 1
                self.sim.stats.throttled += 1
                detail = f"Przekroczono limit żądań. Spróbuj ponownie po {faults.storm_retry_after} sekundach."
                error = TooManyRequests(faults.storm_retry_after, detail)
            if error is not None:
                problem = _header(scope, ERROR_FORMAT_HEADER).lower() == "problem-details"
                status, headers, body = error.render(path, problem)
                self.sim.stats.statuses[str(status)] += 1
                await Response(body, status_code=status, headers=headers)(scope, receive, send)
                return

        async def guarded_send(message: Message) -> None:
            if scope.get(DROP_FLAG) and message["type"] == "http.response.start":
                self.sim.stats.injected["dropsAfterCommit"] += 1
                _drop(scope)
            # After a drop the transport is closed, so what follows goes nowhere.
            await send(message)

        await self.app(scope, receive, guarded_send)


def _drop(scope: Scope) -> None:
    get_transport = scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
    transport = get_transport() if get_transport else None
    if transport is None:
        raise ConnectionDropped("the simulator dropped this connection on purpose")
    transport.abort()


def _header(scope: Scope, name: str) -> str:
    wanted = name.encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return ""
