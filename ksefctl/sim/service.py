"""The simulator's core: state, clock, credentials, permissions and statistics.

HTTP handlers (``routes_*``) translate requests into calls on :class:`Simulator`
and back; everything here runs on the server's event loop thread.
"""

from __future__ import annotations

import ipaddress
import random
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import jwt

from ksefctl.sim.config import Faults, SimConfig
from ksefctl.sim.grants import invalidate_unbacked_tokens
from ksefctl.sim.ids import reference_number
from ksefctl.sim.model import TOKEN_PERMISSIONS, AuthOperation, Context, Identity, Token
from ksefctl.sim.problems import Forbidden, Unauthorized
from ksefctl.sim.store import Store, context_key
from ksefctl.sim.throttling import RateLimiter

ALL_PERMISSIONS = frozenset(TOKEN_PERMISSIONS)
SEE_ALL_TOKENS = frozenset({"CredentialsManage", "CredentialsRead"})


@dataclass
class Challenge:
    timestamp_ms: int
    expires: float


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    contexts: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    tokens_created: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "contexts": dict(self.contexts),
            "statuses": dict(self.statuses),
            "injected": dict(self.injected),
            "throttled": self.throttled,
            "tokensCreated": self.tokens_created,
        }


class Simulator:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.faults: Faults = config.faults
        self.rng = random.Random(config.seed)
        self.store = Store(config.state_file)
        self.limiter = RateLimiter()
        self.stats = Stats()
        self.clock_offset = 0.0
        self.challenges: dict[str, Challenge] = {}
        self._challenge_expiry: deque[tuple[float, str]] = deque()

    # clock: tests move it forward to expire challenges and JWTs without sleeping
    def now(self) -> float:
        return time.time() + self.clock_offset

    # challenges
    def new_challenge(self) -> tuple[str, float, int]:
        now = self.now()
        while self._challenge_expiry and self._challenge_expiry[0][0] <= now:
            self.challenges.pop(self._challenge_expiry.popleft()[1], None)
        challenge = reference_number("CR", now)
        timestamp_ms = int(now * 1000)
        expires = now + self.config.challenge_ttl_s
        self.challenges[challenge] = Challenge(timestamp_ms, expires)
        self._challenge_expiry.append((expires, challenge))
        return challenge, now, timestamp_ms

    def take_challenge(self, challenge: str) -> Challenge | None:
        """Consume a challenge: each one authenticates at most one attempt."""
        found = self.challenges.pop(challenge, None)
        if found is None or found.expires <= self.now():
            return None
        return found

    # credentials (JWT)
    def issue(self, kind: str, session: str, ttl: float) -> tuple[str, float]:
        now = self.now()
        valid_until = now + ttl
        claims = {
            "iss": "ksefctl-sim",
            "typ": kind,
            "sid": session,
            "iat": int(now),
            "exp": int(valid_until),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self.store.jwt_key, algorithm="HS256"), valid_until

    def authenticate(
        self, authorization: str | None, kind: str | tuple[str, ...], client_ip: str
    ) -> AuthOperation:
        """The authentication operation a Bearer credential of ``kind`` (or kinds) belongs to."""
        kinds = (kind,) if isinstance(kind, str) else kind
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized()
        try:
            claims = jwt.decode(
                authorization[7:].strip(),
                self.store.jwt_key,
                algorithms=["HS256"],
                # Both are judged by the simulator's own clock below, which tests move
                # forward; PyJWT would judge them by the real one ("iat" in the future).
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise Unauthorized("Nieprawidłowy token.") from None
        if claims.get("typ") not in kinds:
            raise Unauthorized("Nieprawidłowy rodzaj tokena dla tej operacji.")
        if float(claims.get("exp", 0)) <= self.now():
            raise Unauthorized("Token wygasł.")
        auth = self.store.auths.get(str(claims.get("sid")))
        if auth is None:
            raise Unauthorized("Nieprawidłowy token.")
        if claims.get("typ") == "access" and not ip_allowed(auth.allowed_ips, client_ip):
            raise Forbidden("ip-not-allowed", {"clientIp": client_ip})
        return auth

    # identity and permissions
    def nip_of(self, identity: Identity) -> str | None:
        kind, value = identity
        if kind == "Nip":
            return value
        if kind == "Pesel":
            return self.store.person_nip.get(value)
        return None

    def is_owner(self, identity: Identity, context: Context) -> bool:
        """Whoever logs in with the context's NIP (or a PESEL linked to it) owns it."""
        nip = self.nip_of(identity)
        return nip is not None and context[1][:10] == nip and len(context[1]) >= 10

    def owner_permissions(self, context: Context) -> frozenset[str]:
        """Every token permission but EnforcementOperations, which only a bailiff's context
        (/testdata/person with isBailiff) or an EnforcementAuthority subject's holds."""
        nip = context[1][:10]
        person = self.store.persons.get(nip) or {}
        subject = self.store.subjects.get(nip) or {}
        if person.get("isBailiff") or subject.get("subjectType") == "EnforcementAuthority":
            return ALL_PERMISSIONS
        return ALL_PERMISSIONS - {"EnforcementOperations"}

    def is_deceased(self, identity: Identity | None) -> bool:
        """A person made by /testdata/person with isDeceased: logins end 470, redeem is 21308."""
        nip = self.nip_of(identity) if identity is not None else None
        return bool(nip and (self.store.persons.get(nip) or {}).get("isDeceased"))

    def identity_permissions(self, identity: Identity, context: Context) -> frozenset[str]:
        if self.is_owner(identity, context):
            return self.owner_permissions(context)
        self.settle_permissions()
        granted = self.store.grants.effective(identity, self.nip_of(identity), context)
        return frozenset(granted) & ALL_PERMISSIONS

    def settle_permissions(self) -> None:
        """Apply due permission operations; revoke tokens whose author lost what backs them."""
        grants = self.store.grants
        grants.settle(self.now())
        if grants.lost:
            lost, grants.lost = grants.lost, set()
            invalidate_unbacked_tokens(self, lost)

    def session_permissions(self, auth: AuthOperation) -> frozenset[str]:
        self.settle_permissions()
        if auth.token_permissions is not None:
            return frozenset(auth.token_permissions)
        if auth.identity is None:
            return frozenset()
        return self.identity_permissions(auth.identity, auth.context)

    def same_subject(self, a: Identity, b: Identity) -> bool:
        """Identities are the same person/company, honouring the NIP-PESEL link."""
        if a == b:
            return True
        nip = self.nip_of(a)
        return nip is not None and nip == self.nip_of(b)

    def is_own_token(self, auth: AuthOperation, token: Token) -> bool:
        if auth.token_reference is not None:
            return token.reference_number == auth.token_reference
        return auth.identity is not None and self.same_subject(auth.identity, token.author)

    def can_see(self, auth: AuthOperation, token: Token, permissions: frozenset[str]) -> bool:
        if token.context != auth.context:
            return False
        return bool(permissions & SEE_ALL_TOKENS) or self.is_own_token(auth, token)

    # rate limits
    def limits_for(self, group: str, context: Context | None) -> tuple[int, int, int]:
        if group == "auth":
            return (self.config.auth_per_second, 0, 0)
        if context is not None:
            override = self.store.rate_overrides.get(context)
            if override is not None and group in override:
                return override[group]
        return self.config.rate_limits[group]

    def effective_limits(self, context: Context) -> dict[str, dict[str, int]]:
        result = {}
        for group in self.config.rate_limits:
            per_second, per_minute, per_hour = self.limits_for(group, context)
            result[group] = {"perSecond": per_second, "perMinute": per_minute, "perHour": per_hour}
        return result

    def count(self, route: str, context: Context | None) -> None:
        self.stats.requests[route] += 1
        if context is not None:
            self.stats.contexts[context_key(context)] += 1

    def close(self) -> None:
        self.store.close()


def ip_allowed(policy: dict[str, Any] | None, client_ip: str) -> bool:
    """AuthorizationPolicy.allowedIps: addresses, ranges ``a-b`` and CIDR masks."""
    if not policy:
        return True
    allowed = policy.get("allowedIps") or {}
    addresses = allowed.get("ip4Addresses") or []
    ranges = allowed.get("ip4Ranges") or []
    masks = allowed.get("ip4Masks") or []
    if not (addresses or ranges or masks):
        return True
    try:
        ip = ipaddress.IPv4Address(client_ip)
    except ValueError:
        return False
    if client_ip in addresses:
        return True
    for item in ranges:
        low, _, high = item.partition("-")
        if ipaddress.IPv4Address(low) <= ip <= ipaddress.IPv4Address(high):
            return True
    return any(ip in ipaddress.IPv4Network(mask, strict=False) for mask in masks)
