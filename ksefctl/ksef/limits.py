"""Staying inside KSeF's rate limits without ever provoking a 429.

KSeF counts requests per (context, client IP) in sliding windows of one
second, one minute and one hour, all enforced at once.  A :class:`Limiter`
keeps a log of its own requests and lets one through only when every window
has room.

Written here rather than taken from a library: ``aiolimiter`` is a single
leaky bucket, and ``limits``' moving windows cannot check several windows
atomically nor say when the next slot frees up.  This class is small and
tested directly (tests/ksef/test_limits.py).

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

# The endpoint groups of KSeF's rate limits this client talks to.  ``other``
# governs /tokens, /rate-limits and session management (EffectiveApiRateLimits
# has no group of its own for them); ``auth`` is /auth/* login and public keys.
OTHER = "other"
AUTH = "auth"


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


# KSeF's documented limits (NOTES.md), used until GET /rate-limits says otherwise.
DEFAULT_LIMITS: Mapping[str, WindowLimits] = {
    OTHER: WindowLimits(per_second=10, per_minute=30, per_hour=120),
    AUTH: WindowLimits(per_second=60),
}


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
    """A sliding-log limiter over several windows at once, for one (context, group)."""

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
        self._turn = asyncio.Lock()  # FIFO: waiters are served in arrival order
        self._changed = asyncio.Event()

    def update(self, limits: WindowLimits) -> None:
        """Adopt the limits KSeF says are in force."""
        self.limits = limits
        self._changed.set()

    def block_for(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (after a 429's ``Retry-After``)."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)
        self._changed.set()

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
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot: waits until every window has room."""
        async with self._turn:
            while (wait := self.delay()) > 0:
                self._changed.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), None if math.isinf(wait) else wait)
            slot = _Slot()
            self._slots.append(slot)
        try:
            yield
        finally:
            slot.done = self._clock()
            self._changed.set()
