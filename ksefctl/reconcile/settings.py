"""How one run behaves: parallelism, clocks, the session cache, hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ksefctl.ksef.warnings import SystemWarnings
from ksefctl.vocabulary import ContextId

Key = tuple[str, ContextId]  # (owner, context)
# "use": resume and keep sessions (apply); "read": resume, never write the cache
# (plan, status); "off": neither read nor write; "end": log in afresh, then end
# and forget the cached sessions (break-glass).
SessionCacheMode = Literal["use", "read", "off", "end"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunSettings:
    parallelism: int = 64
    activation_timeout_s: float = 300.0
    ca_bundle: str | None = None
    clock: Callable[[], datetime] = utc_now
    on_context_done: Callable[[Key, bool], None] | None = None
    # httpx event hooks for every KSeF request (tests check them against the contract).
    event_hooks: dict[str, list[Callable[..., Any]]] | None = None
    session_cache: SessionCacheMode = "use"
    # A cached session must outlive the run that resumes it; one nearer its end
    # is replaced by a full login (real KSeF refresh tokens live up to 7 days).
    session_min_life_s: float = 3600.0
    # Raises (LockLost) once this run no longer holds the lock of the owner named:
    # the executor calls it before every write.
    ensure_lock: Callable[[str], None] | None = None
    # Rate-limit waits: longer than max_wait_s fails the context (--max-wait);
    # longer than a few seconds is told to on_wait (context, endpoint, seconds, why).
    max_wait_s: float | None = None
    on_wait: Callable[[str, str, float, str], None] | None = None
    # X-System-Warning values KSeF sent during the run, from every client (told once by the CLI).
    warnings: SystemWarnings = field(default_factory=SystemWarnings)
