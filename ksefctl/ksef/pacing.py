"""Staying inside KSeF's rate limits without ever provoking a 429.

KSeF counts requests per endpoint and (context, client IP) in sliding
windows of one second, one minute and one hour, all enforced at once
(limity_limity-api.md); public endpoints, called before any context is known,
per client IP alone.  :class:`Endpoint` names each operation this client
calls with its documented limits; a :class:`Limiter` keeps a log of one
endpoint's requests in one context and lets one through only when every
window has room.

Written here rather than taken from a library: ``aiolimiter`` is a single
leaky bucket, and ``limits``' moving windows cannot check several windows
atomically nor say when the next slot frees up.  This class is small and
tested directly (tests/ksef/test_pacing.py).

A request is logged at the moment its *answer* arrives, not when it is sent:
KSeF saw it at some instant before that, so spacing later requests from the
answer keeps them at least a full window apart on KSeF's own clock whatever
the network latency or clock differences.  While a request is in flight its
slot counts as taken in every window.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WindowLimits:
    """Requests allowed per second, minute and hour; ``None`` means not limited."""

    per_second: int | None = None
    per_minute: int | None = None
    per_hour: int | None = None

    def windows(self) -> tuple[tuple[float, int], ...]:
        """(window length in seconds, requests allowed) for each limited window."""
        pairs = ((1.0, self.per_second), (60.0, self.per_minute), (3600.0, self.per_hour))
        return tuple((length, n) for length, n in pairs if n is not None)

    @classmethod
    def from_api(cls, data: Any) -> WindowLimits | None:
        """From one ``EffectiveApiRateLimitValues`` object; None when it is not one."""
        if not isinstance(data, Mapping):
            return None
        values = [data.get(k) for k in ("perSecond", "perMinute", "perHour")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            return None
        return cls(*values)


# The EffectiveApiRateLimits group whose values GET /rate-limits reports for
# /tokens, /rate-limits and session management (there is no group of their own).
OTHER = "other"

# limity_limity-api.md, "Pozostałe": every protected endpoint without limits of
# its own gets these, each with its own counter; public (unauthenticated) ones 60/s per IP.
PROTECTED_DEFAULT = WindowLimits(per_second=10, per_minute=30, per_hour=120)
PUBLIC_DEFAULT = WindowLimits(per_second=60)


@dataclass(frozen=True)
class Endpoint:
    """One KSeF operation as the rate limits see it: its own counter, its own limits.

    KSeF counts each endpoint separately per (context, client IP); ``public``
    endpoints are called before any context is known and counted per IP alone.
    ``group`` names the EffectiveApiRateLimits values GET /rate-limits reports
    for it, which replace ``limits`` for that context once learnt.
    """

    name: str  # method and path template, as open-api.json names the operation
    limits: WindowLimits = PROTECTED_DEFAULT
    group: str | None = OTHER
    public: bool = False


def _public(name: str) -> Endpoint:
    return Endpoint(name, PUBLIC_DEFAULT, group=None, public=True)


def _auth(name: str) -> Endpoint:
    # Authenticated by an authentication or refresh token: the context is
    # known, and open-api.json documents 60/s (x-rate-limits).
    return Endpoint(name, PUBLIC_DEFAULT, group=None)


PUBLIC_KEYS = _public("GET /security/public-key-certificates")
CHALLENGE = _public("POST /auth/challenge")
KSEF_TOKEN_LOGIN = _public("POST /auth/ksef-token")
XADES_LOGIN = _public("POST /auth/xades-signature")
AUTH_STATUS = _auth("GET /auth/{referenceNumber}")
REDEEM = _auth("POST /auth/token/redeem")
REFRESH = _auth("POST /auth/token/refresh")
END_CURRENT_SESSION = Endpoint("DELETE /auth/sessions/current")
END_SESSION = Endpoint("DELETE /auth/sessions/{referenceNumber}")
RATE_LIMITS = Endpoint("GET /rate-limits")
SET_TEST_RATE_LIMITS = Endpoint("POST /testdata/rate-limits")
CREATE_TOKEN = Endpoint("POST /tokens")
LIST_TOKENS = Endpoint("GET /tokens")
GET_TOKEN = Endpoint("GET /tokens/{referenceNumber}")
REVOKE_TOKEN = Endpoint("DELETE /tokens/{referenceNumber}")


def unlisted(method: str, path: str) -> Endpoint:
    """A protected endpoint not named above, at the documented default limits.

    Its counter must be one per operation, not one per resource: path segments
    holding a digit (reference numbers, serial numbers, ids) are taken for
    parameters, so every ``/x/{ref}`` shares one counter.  Calls that name their
    :class:`Endpoint` do not need the guess.
    """
    template = "/".join(
        "{}" if any(c.isdigit() for c in part) else part for part in path.split("/")
    )
    return Endpoint(f"{method.upper()} {template}")


def minimum_duration(limits: WindowLimits, requests: int) -> float:
    """The shortest time in which ``requests`` back-to-back requests fit the limits.

    The time between the first and the last of them when every request goes
    out as early as the windows allow (zero latency).  Benchmarks and tests
    compare real runs against it.
    """
    sent: list[float] = []
    for _ in range(requests):
        t = sent[-1] if sent else 0.0
        for length, n in limits.windows():
            if len(sent) >= n:
                t = max(t, sent[-n] + length)
        sent.append(t)
    return sent[-1] if sent else 0.0


class _Slot:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: float | None = None  # when the answer arrived; None while in flight


class Limiter:
    """A sliding-log limiter over several windows at once, for one (endpoint, context).

    A run holds one per endpoint and context, thousands of them, most never
    contended: the FIFO lock and the wake-up event are made only when a
    request first has to wait.
    """

    __slots__ = ("_blocked_until", "_changed", "_clock", "_margin", "_slots", "_turn", "limits")

    def __init__(
        self,
        limits: WindowLimits,
        *,
        margin_s: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        # A hair of extra spacing: KSeF may compare timestamps with >= where we
        # compute with >, and timers fire a little early or late.
        self._margin = margin_s
        self._clock = clock
        self._slots: list[_Slot] = []
        self._blocked_until = 0.0
        self._turn: asyncio.Lock | None = None  # FIFO: waiters are served in arrival order
        self._changed: asyncio.Event | None = None

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def update(self, limits: WindowLimits) -> None:
        """Adopt the limits KSeF says are in force."""
        self.limits = limits
        self._wake()

    def block_for(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (after a 429's ``Retry-After``)."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)
        self._wake()

    def delay(self) -> float:
        """Seconds until a request may go out now; ``inf`` while only an answer can free one."""
        now = self._clock()
        self._prune(now)
        wait = max(0.0, self._blocked_until - now)
        for length, n in self.limits.windows():
            # In-flight slots count as the newest entries of every window.
            times = sorted(
                math.inf if s.done is None else s.done
                for s in self._slots
                if s.done is None or s.done > now - length
            )
            if len(times) >= n:
                # The request that must leave the window before one more fits.
                wait = max(wait, times[len(times) - n] + length + self._margin - now)
        return wait

    def _prune(self, now: float) -> None:
        longest = max((length for length, _ in self.limits.windows()), default=0.0)
        self._slots = [
            s for s in self._slots if s.done is None or s.done > now - longest - self._margin
        ]

    @asynccontextmanager
    async def slot(self, before_wait: Callable[[float], None] | None = None) -> AsyncIterator[None]:
        """Hold one request slot: waits until every window has room.

        ``before_wait`` hears how long this request is about to wait (it may
        raise to refuse the wait); the fast path — room now — never calls it.
        """
        slot = _Slot()
        if (self._turn is None or not self._turn.locked()) and self.delay() <= 0:
            # Nobody queued and room now: no await between the check and the append.
            self._slots.append(slot)
        else:
            if self._turn is None:
                self._turn = asyncio.Lock()
            if self._changed is None:
                self._changed = asyncio.Event()
            async with self._turn:
                if before_wait is not None and (first := self.delay()) > 0:
                    before_wait(first)
                while (wait := self.delay()) > 0:
                    self._changed.clear()
                    with suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._changed.wait(), None if math.isinf(wait) else wait
                        )
                self._slots.append(slot)
        try:
            yield
        finally:
            slot.done = self._clock()
            self._wake()
