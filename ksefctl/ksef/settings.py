"""How a :class:`~ksefctl.ksef.KsefClient` talks to KSeF: one frozen value per client.

Only what a caller has a reason to choose is here.  The rest is fixed in the
modules that use it (login deadline and attempts in ``client.py``, the access
token's refresh margin in ``session.py``, pool size and timeouts in
``transport.py``): nobody has ever needed another value, and every knob is
one more path to test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from ksefctl.ksef.warnings import SystemWarnings
from ksefctl.retry import RetryPolicy

EventHook = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class ClientSettings:
    # PEM bundle to verify KSeF's TLS certificate with, instead of the system's.
    ca_bundle: str | None = None
    # httpx event hooks for every request (tests check each against the contract).
    event_hooks: Mapping[str, Sequence[EventHook]] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Ask for RFC 7807 error bodies (X-Error-Format); both formats are parsed anyway.
    problem_details: bool = True
    # Ask GET /rate-limits right after each login; the engine asks before a
    # context's first write instead, so a no-op run spends nothing on it.
    learn_rate_limits: bool = True
    # After a POST /tokens whose answer was lost, wait this long before the second look.
    ambiguity_recheck_s: float = 2.0
    # Tests put an httpx.MockTransport here; by default aiohttp's pool carries requests.
    transport: httpx.AsyncBaseTransport | None = None
    # Where X-System-Warning values go; one sink may serve every client of a run.
    warnings: SystemWarnings | None = None
    # A request that would wait longer than this for a rate limit (pacing or a
    # 429's Retry-After) fails instead, saying when to retry (--max-wait).
    max_wait_s: float | None = None
    # Told of every wait longer than ``announce_wait_s``: (context, endpoint,
    # seconds, why) — the CLI prints it, so no run sits silent for minutes.
    on_wait: Callable[[str, str, float, str], None] | None = None
    announce_wait_s: float = 5.0
