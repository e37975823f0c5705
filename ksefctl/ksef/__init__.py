"""The async KSeF API 2.0 client: login (KSeF token or XAdES), tokens, rate limits.

async with KsefClient("https://api-test.ksef.mf.gov.pl/v2") as client:
    async with await client.login_with_token("Nip", nip, Secret(token)) as session:
        tokens = await session.list_tokens(statuses=["Active"])
"""

from ksefctl.ksef.client import KsefClient
from ksefctl.ksef.errors import (
    AmbiguousTokenCreation,
    AuthenticationFailed,
    InsecureEndpoint,
    KsefError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    TokenStatusTimeout,
    TransportError,
    UnexpectedResponse,
    ValidationFailed,
    WaitTooLong,
)
from ksefctl.ksef.models import GeneratedToken, TokenInfo, parse_datetime
from ksefctl.ksef.pacing import Endpoint, Limiter, WindowLimits, minimum_duration
from ksefctl.ksef.session import Session
from ksefctl.ksef.settings import ClientSettings
from ksefctl.ksef.transport import ClientStats
from ksefctl.ksef.warnings import SystemWarning, SystemWarnings
from ksefctl.retry import RetryPolicy

__all__ = [
    "AmbiguousTokenCreation",
    "AuthenticationFailed",
    "ClientSettings",
    "ClientStats",
    "Endpoint",
    "GeneratedToken",
    "InsecureEndpoint",
    "KsefClient",
    "KsefError",
    "Limiter",
    "NotAuthenticated",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "Session",
    "SystemWarning",
    "SystemWarnings",
    "TokenInfo",
    "TokenStatusTimeout",
    "TransportError",
    "UnexpectedResponse",
    "ValidationFailed",
    "WaitTooLong",
    "WindowLimits",
    "minimum_duration",
    "parse_datetime",
]
