"""One run of ksefctl against KSeF and Vault: log in, observe, plan, execute.

The engine wires the shared parts together — connections and the session
cache (``connections``), ``--prune`` discovery (``prune``), the bounded
per-context fan-out (``fanout``) — around the kinds of credential it
reconciles: tokens (``observe``, ``planner``, ``admission``, ``executor``)
and every :class:`~ksefctl.reconcile.kind.Kind` a context declares
(``DesiredContext.kinds``, looked up in ``kinds``).

Contexts run concurrently, bounded by ``parallelism``; one context failing
never stops the others — its failure is reported and the run exits 1.  A
no-op run is observation only: login (or one refresh of a cached session),
one token list and one read per kind that the context declares.  The
context's rate limits are asked for only before its first write.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import TypeVar

from ksefctl.errors import KsefctlError
from ksefctl.ksef import Session
from ksefctl.manifest.model import Desired, DesiredContext, Policy
from ksefctl.reconcile import planner
from ksefctl.reconcile.admission import Scope
from ksefctl.reconcile.connections import Connections
from ksefctl.reconcile.executor import ContextExecutor, ExecutorSettings, Outcome
from ksefctl.reconcile.fanout import Failure, Staged, each
from ksefctl.reconcile.kind import KindOutcome, StepSettings
from ksefctl.reconcile.kinds import NAMES, kind_named
from ksefctl.reconcile.model import (
    Change,
    KindChange,
    KindNote,
    Note,
    NoteKind,
    Observed,
    ObservedContext,
    Plan,
    PlanOptions,
)
from ksefctl.reconcile.observe import observe_context
from ksefctl.reconcile.prune import PruneScope, find_vanished
from ksefctl.reconcile.settings import Key, RunSettings, SessionCacheMode, utc_now
from ksefctl.vault import VaultStore

__all__ = [
    "ApplyReport",
    "Engine",
    "Failure",
    "Key",
    "ObservedRun",
    "PruneScope",
    "RunSettings",
    "SessionCacheMode",
    "utc_now",
]

log = logging.getLogger("ksefctl.engine")
T = TypeVar("T")


@dataclass
class ObservedRun:
    """What one observation pass found, per context, and where it failed."""

    desired: Desired  # only the contexts observed successfully
    observed: Observed
    failures: list[Failure] = field(default_factory=list)


@dataclass
class ApplyReport:
    outcomes: dict[Key, list[Outcome | KindOutcome]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and all(o.ok for os in self.outcomes.values() for o in os)


class Engine:
    def __init__(
        self,
        desired: Desired,
        store: VaultStore,
        settings: RunSettings,
        prune: PruneScope | None = None,
    ) -> None:
        self.desired = desired
        self.store = store
        self.settings = settings
        self.prune = prune
        self.connections = Connections(store, settings)
        self._contexts: dict[Key, tuple[Policy, DesiredContext]] = {
            (p.owner, c.context): (p, c) for p in desired.policies for c in p.contexts
        }
        self._observed: dict[Key, ObservedContext] = {}
        self._pruned_names: dict[Key, set[str]] = {}  # token names of vanished contexts' secrets

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.connections.close()

    def session(self, key: Key) -> Session:
        return self.connections.sessions[key]

    def observed_context(self, key: Key) -> ObservedContext:
        return self._observed[key]

    async def _each(
        self,
        keys: Sequence[Key],
        work: Callable[[Key], Awaitable[T]],
        stage: str,
        failures: list[Failure],
    ) -> dict[Key, T]:
        return await each(
            keys,
            work,
            stage,
            failures,
            parallelism=self.settings.parallelism,
            on_done=self.settings.on_context_done,
        )

    # -- observe and plan ---------------------------------------------------------
    async def observe(self) -> ObservedRun:
        failures: list[Failure] = []
        if self.prune is not None:
            vanished = await find_vanished(self.desired, self.store, self.prune)
            self._contexts.update(vanished.contexts)
            self._pruned_names = vanished.names
        self.connections.expect_logins(
            context
            for key, (_, context) in self._contexts.items()
            if key not in self.connections.sessions
        )

        async def observe_one(key: Key) -> ObservedContext:
            policy, context = self._contexts[key]
            try:
                session = await self.connections.session(policy, context)
            except KsefctlError as error:
                raise Staged("login", error) from None
            names = {t.name for t in context.tokens} | self._pruned_names.get(key, set())
            if context.token_policy:
                seen = await observe_context(policy, context.context, names, session, self.store)
            else:  # only other kinds are declared here: its tokens are not ours to judge
                seen = ObservedContext(policy.owner, context.context, (), {})
            kinds = {
                kind.name: await kind.observe(policy, context, session, self.store)
                for kind in map(kind_named, context.kinds)
                if kind is not None
            }
            return replace(seen, kinds=kinds) if kinds else seen

        observed = await self._each(list(self._contexts), observe_one, "observe", failures)
        self._observed = observed
        ok = set(observed)
        desired = Desired(
            policies=tuple(
                replace(p, contexts=tuple(c for c in p.contexts if (p.owner, c.context) in ok))
                for p in self.desired.policies
            )
        )
        return ObservedRun(desired=desired, observed=Observed(contexts=observed), failures=failures)

    def plan(self, run: ObservedRun, options: PlanOptions, now: datetime | None = None) -> Plan:
        moment = now or self.settings.clock()
        tokens = planner.plan(run.desired, run.observed, moment, options)
        changes: list[KindChange] = []
        notes: list[KindNote] = []
        digests: list[list[object]] = []
        for policy in run.desired.policies:
            for context in policy.contexts:
                seen = run.observed.contexts[(policy.owner, context.context)]
                for name, observed in seen.kinds.items():
                    kind = kind_named(name)
                    if kind is None:
                        continue
                    more, shown = kind.plan(policy, context, observed, moment, options)
                    changes.extend(more)
                    notes.extend(shown)
                    digests.append(
                        [policy.owner, str(context.context), kind.name, kind.fingerprint(observed)]
                    )
        if not digests:
            return tokens
        # The other kinds' observations join the tokens' in the plan's fingerprint.
        canonical = json.dumps([tokens.fingerprint, digests], sort_keys=True, ensure_ascii=False)
        return replace(
            tokens,
            fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
            kind_changes=tuple(sorted(changes, key=_kind_order)),
            kind_notes=tuple(notes),
        )

    # -- apply ------------------------------------------------------------------
    async def apply(self, plan: Plan) -> ApplyReport:
        report = ApplyReport()
        changes: dict[Key, list[Change]] = {}
        kind_changes: dict[Key, list[KindChange]] = {}
        notes: dict[Key, list[Note]] = {}
        for change in plan.changes:
            changes.setdefault((change.owner, change.context), []).append(change)
        for other in plan.kind_changes:
            kind_changes.setdefault((other.owner, other.context), []).append(other)
        for note in plan.notes:
            # Only a Pending token to wait for needs the executor; other notes are for reading.
            if note.kind is NoteKind.WAITING:
                notes.setdefault((note.owner, note.context), []).append(note)
        # Login material of every context in the run: no change may write or delete it.
        protected = frozenset(context.auth.secret for _, context in self._contexts.values())

        async def apply_one(key: Key) -> list[Outcome | KindOutcome]:
            if key not in self._observed or key not in self.connections.sessions:
                # A change for a context this run did not observe (a forged or stale plan).
                raise KsefctlError("not observed in this run; nothing done (run plan again)")
            policy, context = self._contexts[key]
            session = self.connections.sessions[key]
            seen = self._observed[key]
            check = self.settings.ensure_lock
            ensure_lock = partial(check, policy.owner) if check else _held
            mine = kind_changes.get(key, [])
            # Every change of every kind is admitted before anything is done here.
            for other in mine:
                kind = kind_named(other.kind)
                why = (
                    "not observed in this run"
                    if kind is None or kind.name not in seen.kinds
                    else kind.refusal(other, policy, context, seen.kinds[kind.name])
                )
                if why is not None:
                    raise KsefctlError(
                        f"refused {other.action.name.lower()} of {other.kind} {other.name!r}: "
                        f"{why}; nothing done in this context"
                    )
            executor = ContextExecutor(
                session,
                self.store,
                Scope(policy, context, seen, protected),
                ExecutorSettings(
                    environment=policy.environment,
                    activation_timeout_s=self.settings.activation_timeout_s,
                    clock=self.settings.clock,
                    ensure_lock=ensure_lock,
                ),
            )
            executor.admit(changes.get(key, []))
            # Creations and revocations burst through the context's limits: pace them
            # by what KSeF says is in force (defaults if it will not say).
            await session.learn_rate_limits()
            outcomes: list[Outcome | KindOutcome] = []
            steps = StepSettings(
                environment=policy.environment,
                clock=self.settings.clock,
                ensure_lock=ensure_lock,
                timeout_s=self.settings.activation_timeout_s,
            )
            present = [k for n in NAMES if n in seen.kinds and (k := kind_named(n)) is not None]
            for kind in sorted(present, key=lambda k: k.order):
                of_kind = [c for c in mine if c.kind == kind.name]
                if of_kind:
                    outcomes += await kind.execute(
                        of_kind, policy, context, seen.kinds[kind.name], session, self.store, steps
                    )
            outcomes += await executor.run(changes.get(key, []), notes.get(key, []))
            return outcomes

        keys = sorted(set(changes) | set(kind_changes) | set(notes), key=lambda k: (k[0], k[1]))
        report.outcomes = await self._each(keys, apply_one, "apply", report.failures)
        return report


def _kind_order(change: KindChange) -> tuple[str, str, str, str, str]:
    return (change.owner, str(change.context), change.kind, change.name, change.action.name)


def _held() -> None:
    return None
