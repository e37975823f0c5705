"""How often and how patiently transient failures are retried (KSeF and Vault alike)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    max_attempts: int = 4  # per call, for transport errors and 5xx on idempotent calls
    max_rate_limited: int = 6  # 429s tolerated per call before giving up
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    # When set, attempts go on (max_attempts aside) until this much time has passed
    # since the first failure: for outages measured in seconds, not in attempts.
    patience_s: float | None = None

    def gives_up(self, attempt: int, waited_s: float) -> bool:
        """Whether a call that failed ``attempt`` times over ``waited_s`` seconds stops now."""
        if self.patience_s is not None:
            return waited_s >= self.patience_s
        return attempt >= self.max_attempts

    def backoff(self, attempt: int) -> float:
        """Exponential with 'equal jitter': never immediate, never synchronised."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)
