"""The KSeF login dance: challenge, signed or encrypted proof, poll, redeem.

Each step is a function over :class:`Transport`; :class:`KsefClient` strings
them together for the two login methods.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx
import jwt

from ksefctl.ksef import pacing
from ksefctl.ksef.errors import AuthenticationFailed, UnexpectedResponse
from ksefctl.ksef.models import AuthStatus, Fields
from ksefctl.ksef.transport import Transport
from ksefctl.secret import Secret
from ksefctl.vocabulary import ContextId

IN_PROGRESS = 100
SUCCESS = 200


@dataclass(frozen=True)
class Challenge:
    challenge: str
    timestamp_ms: int


@dataclass(frozen=True)
class PendingAuth:
    """An authentication operation KSeF accepted and is still deciding on."""

    reference_number: str
    token: Secret  # the authenticationToken: only good for polling and redeeming


@dataclass(frozen=True)
class IssuedToken:
    """An access or refresh JWT and when it dies, on this machine's monotonic clock."""

    token: Secret
    valid_until: datetime
    lifetime_s: float  # as KSeF reckons it, from its own clock (Date header)
    received_at: float  # time.monotonic() when it arrived

    @property
    def expires_at(self) -> float:
        return self.received_at + self.lifetime_s


def json_of(response: httpx.Response, where: str) -> object:
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise UnexpectedResponse(
            f"KSeF {response.status_code} answer to {where} is not JSON ({kind})",
            status=response.status_code,
        ) from None


def _server_now(response: httpx.Response) -> datetime:
    # Measuring lifetimes against KSeF's own clock makes a skewed local clock
    # harmless.  Date has whole seconds, so KSeF's instant was up to 1 s later:
    # assume the latest, and never think a token lives longer than it does.
    date = response.headers.get("date")
    if date:
        try:
            parsed = parsedate_to_datetime(date)
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            return parsed + timedelta(seconds=1)
        except (TypeError, ValueError):
            pass
    return datetime.now(UTC)


def _jwt_expiry(token: Secret) -> datetime | None:
    # Only to learn when KSeF will refuse the token; KSeF itself checks the signature.
    try:
        claims = jwt.decode(token.reveal(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return datetime.fromtimestamp(exp, UTC)
    return None


def issued_token(f: Fields, key: str, response: httpx.Response) -> IssuedToken:
    """A token with its lifetime: the earlier of ``validUntil`` and the JWT's own ``exp``."""
    item = f.obj(key)
    token = item.secret("token")
    valid_until = item.moment("validUntil")
    expiry = _jwt_expiry(token)
    if expiry is not None and expiry < valid_until:
        valid_until = expiry
    lifetime = (valid_until - _server_now(response)).total_seconds()
    return IssuedToken(token, valid_until, max(0.0, lifetime), time.monotonic())


async def challenge(transport: Transport) -> Challenge:
    where = "POST /auth/challenge"
    response = await transport.request(
        pacing.CHALLENGE, "/auth/challenge", context=None, idempotent=True
    )
    f = Fields(json_of(response, where), where)
    return Challenge(f.text("challenge"), f.integer("timestampMs"))


def _pending(response: httpx.Response, where: str) -> PendingAuth:
    f = Fields(json_of(response, where), where)
    return PendingAuth(f.text("referenceNumber"), f.obj("authenticationToken").secret("token"))


async def start_with_token(
    transport: Transport,
    context: ContextId,
    challenge: Challenge,
    encrypted_token: str,
    public_key_id: str,
) -> PendingAuth:
    body = {
        "challenge": challenge.challenge,
        "contextIdentifier": {"type": context.type, "value": context.value},
        "encryptedToken": encrypted_token,
        "publicKeyId": public_key_id,
    }
    response = await transport.request(
        pacing.KSEF_TOKEN_LOGIN,
        "/auth/ksef-token",
        context=context,
        idempotent=False,  # the challenge is single use: a new login starts over
        ok=(202,),
        json=body,
    )
    return _pending(response, "POST /auth/ksef-token")


async def start_with_signature(
    transport: Transport, context: ContextId, signed_document: bytes
) -> PendingAuth:
    response = await transport.request(
        pacing.XADES_LOGIN,
        "/auth/xades-signature",
        context=context,
        idempotent=False,
        ok=(202,),
        content=signed_document,
        headers={"Content-Type": "application/xml"},
    )
    return _pending(response, "POST /auth/xades-signature")


async def await_outcome(
    transport: Transport, context: ContextId, pending: PendingAuth, deadline_s: float
) -> None:
    """Poll until KSeF decides; raise :class:`AuthenticationFailed` unless it says 200."""
    path = f"/auth/{quote(pending.reference_number, safe='')}"
    where = f"GET {path}"
    deadline = time.monotonic() + deadline_s
    delay = 0.05
    while True:
        response = await transport.request(
            pacing.AUTH_STATUS, path, context=context, idempotent=True, bearer=pending.token
        )
        status = AuthStatus.parse(json_of(response, where), where)
        if status.code == SUCCESS:
            return
        if status.code != IN_PROGRESS:
            details = f": {'; '.join(status.details)}" if status.details else ""
            raise AuthenticationFailed(
                f"KSeF login into {context} failed with status {status.code} "
                f"{status.description}{details} (auth {pending.reference_number})",
                status=response.status_code,
                codes=[status.code],
                description=status.description,
                details=status.details,
            )
        if time.monotonic() + delay > deadline:
            raise AuthenticationFailed(
                f"KSeF login into {context} still in progress after {deadline_s:g} s "
                f"(auth {pending.reference_number})",
                status=response.status_code,
                codes=[status.code],
                description=status.description,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def redeem(
    transport: Transport, context: ContextId, pending: PendingAuth
) -> tuple[IssuedToken, IssuedToken]:
    """The (access, refresh) tokens; KSeF hands them out only once per login."""
    where = "POST /auth/token/redeem"
    response = await transport.request(
        pacing.REDEEM,
        "/auth/token/redeem",
        context=context,
        idempotent=False,
        bearer=pending.token,
    )
    f = Fields(json_of(response, where), where)
    return issued_token(f, "accessToken", response), issued_token(f, "refreshToken", response)


async def refresh(transport: Transport, context: ContextId, refresh_token: Secret) -> IssuedToken:
    where = "POST /auth/token/refresh"
    response = await transport.request(
        pacing.REFRESH,
        "/auth/token/refresh",
        context=context,
        idempotent=True,  # every refresh just mints another access token
        bearer=refresh_token,
    )
    return issued_token(Fields(json_of(response, where), where), "accessToken", response)
