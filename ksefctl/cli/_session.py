"""The part of plan and apply that is the same: connect, lock, observe, plan."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ksefctl.cli import _common, _vault_diagnosis
from ksefctl.cli.progress import context_progress
from ksefctl.ksef.warnings import SystemWarnings
from ksefctl.manifest.model import Desired
from ksefctl.reconcile.engine import Engine, Failure, ObservedRun, PruneScope
from ksefctl.reconcile.model import Plan, PlanOptions
from ksefctl.vault import VaultStore
from ksefctl.vault.lock import OwnerLock


@dataclass
class PlanOutcome:
    engine: Engine
    desired: Desired
    observed: ObservedRun
    plan: Plan

    @property
    def failures(self) -> list[Failure]:
        return self.observed.failures

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """The ``warnings`` array of --json outputs: KSeF's X-System-Warning values, grouped."""
        return self.engine.settings.warnings.to_json()


def configure_logging(verbosity: int) -> None:
    if verbosity <= 0:
        return
    logging.basicConfig(
        level=logging.DEBUG if verbosity > 1 else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@asynccontextmanager
async def observe_and_plan(
    args: argparse.Namespace,
    options: PlanOptions,
    *,
    lock: bool,
    desired: Desired | None = None,
    prune: PruneScope | None = None,
    plan_time: datetime | None = None,
) -> AsyncIterator[PlanOutcome]:
    """Lock (``lock``), log in, observe and plan; ``plan_time`` replaces the clock for planning
    (a saved plan is re-planned as of when it was made, so its changes can be compared)."""
    configure_logging(getattr(args, "verbose", 0))
    if desired is None:
        desired = _common.load_selected(args)
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(VaultStore.from_environment(desired))
        locks: dict[str, OwnerLock] = {}
        if lock:
            for policy in desired.policies:
                locks[policy.owner] = await stack.enter_async_context(
                    store.lock(
                        policy.owner,
                        timeout=getattr(args, "lock_timeout", 60.0),
                        ttl=getattr(args, "lock_ttl", 60.0),
                    )
                )
        total = len(desired.contexts)
        with context_progress("Observing", total) as progress:
            settings = _common.run_settings(args, progress)
            # Runs after the engine closed (LIFO), so warnings from ending sessions count too.
            stack.callback(print_system_warnings, settings.warnings)
            if not lock and settings.session_cache == "use":
                # plan and status only read: they resume cached sessions but write no Vault.
                settings.session_cache = "read"
            if lock:
                settings.ensure_lock = lambda owner: locks[owner].ensure_held()
            engine = await stack.enter_async_context(
                Engine(desired, store, settings, prune if options.prune else None)
            )
            observed = await engine.observe()
        await _vault_diagnosis.explain_vault_failures(store, observed.failures)
        plan = engine.plan(observed, options, now=plan_time)
        yield PlanOutcome(engine=engine, desired=desired, observed=observed, plan=plan)


def print_system_warnings(warnings: SystemWarnings) -> None:
    """Each distinct X-System-Warning once per run, on stderr, with the endpoints that drew it."""
    for warning in warnings.items():
        print(f"Warning: KSeF: {warning}", file=sys.stderr)


def print_failures(failures: Sequence[Failure]) -> None:
    _vault_diagnosis.print_failures(failures)
