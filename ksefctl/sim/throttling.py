"""KSeF's request limits: sliding windows per second, minute and hour for each
(endpoint, context, client IP), all enforced at once.

Only accepted requests count.  ``Retry-After`` is the time until the fullest
window frees a slot, multiplied by the number of recent repeated violations
(a client that comes back and overruns again waits longer each time).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

WINDOWS = (1.0, 60.0, 3600.0)
WINDOW_NAMES = ("sekundę", "minutę", "godzinę")
# A violation this long after the previous block ended starts the count afresh.
STRIKE_MEMORY_S = 60.0
MAX_STRIKES = 10


@dataclass
class _Bucket:
    windows: tuple[deque[float], deque[float], deque[float]] = field(
        default_factory=lambda: (deque(), deque(), deque())
    )
    strikes: int = 0
    blocked_until: float = 0.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0
    detail: str = ""


ALLOWED = Verdict(True)


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}

    def check(
        self, key: tuple[str, str, str], limits: tuple[int, int, int], now: float | None = None
    ) -> Verdict:
        """Count one request against ``limits`` (per second, minute, hour; 0 = unlimited)."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket()
        wait = 0.0
        violated = -1
        for index, (window, limit) in enumerate(zip(WINDOWS, limits, strict=True)):
            if limit <= 0:
                continue
            stamps = bucket.windows[index]
            horizon = now - window
            while stamps and stamps[0] <= horizon:
                stamps.popleft()
            if len(stamps) >= limit:
                # The slot that frees first is the one `limit` requests back.
                free_at = stamps[len(stamps) - limit] + window
                if free_at - now > wait:
                    wait, violated = free_at - now, index
        if violated < 0:
            for index, limit in enumerate(limits):
                if limit > 0:
                    bucket.windows[index].append(now)
            return ALLOWED
        if now >= bucket.blocked_until:
            recent = now - bucket.blocked_until < STRIKE_MEMORY_S
            bucket.strikes = min(bucket.strikes + 1, MAX_STRIKES) if recent else 1
            retry_after = max(1, math.ceil(wait)) * bucket.strikes
            bucket.blocked_until = now + retry_after
        else:
            retry_after = max(1, math.ceil(bucket.blocked_until - now))
        detail = (
            f"Przekroczono limit {limits[violated]} żądań na {WINDOW_NAMES[violated]}. "
            f"Spróbuj ponownie po {retry_after} sekundach."
        )
        return Verdict(False, retry_after, detail)
