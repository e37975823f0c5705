"""What a kind of KSeF credential provides, so the engine can reconcile it (docs/concepts.md).

Tokens were first; KSeF certificates and permission grants are kinds beside
them.  Each kind is an observer (what KSeF and Vault hold in one context), a
pure planner (declared × observed → changes), the executor's admission rules
for its changes (SPEC principle 7) and executor steps, plus how its changes
read in a plan and in JSON.  Which contexts declare a kind is the manifest's
to say (``DesiredContext.kinds``); ``kinds`` maps each name to its Kind.  The engine, saved plans, locks, the fail-closed
claim check, rendering and exit codes are shared: adding a kind adds one of
these, never a branch in the loop.

The token kind predates this interface and keeps its own modules
(``observe``, ``planner``, ``admission``, ``executor``); its changes are
``Plan.changes``.  Every other kind's changes are ``Plan.kind_changes``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from ksefctl.ksef import Session
from ksefctl.manifest.model import DesiredContext, Policy
from ksefctl.reconcile.model import Action, KindChange, KindNote, PlanOptions
from ksefctl.vault import VaultStore
from ksefctl.vocabulary import ContextId

__all__ = ["Kind", "KindChange", "KindNote", "KindOutcome", "StepSettings"]


@dataclass(frozen=True)
class KindOutcome:
    change: KindChange | None
    ok: bool
    message: str


@dataclass(frozen=True)
class StepSettings:
    """What executor steps of any kind need from the run."""

    environment: str
    clock: Any  # Callable[[], datetime]
    ensure_lock: Any  # Callable[[], None]: raises once the owner's lock is lost
    timeout_s: float = 300.0


class Kind(ABC):
    name: ClassVar[str]
    # Order of execution inside one context: what other kinds rely on goes first
    # (grants give the permissions a token is made with).
    order: ClassVar[int]

    @abstractmethod
    async def observe(
        self, policy: Policy, context: DesiredContext, session: Session, store: VaultStore
    ) -> Any:
        """What KSeF and Vault hold of this kind in the context (reads only)."""

    @abstractmethod
    def fingerprint(self, observed: Any) -> Any:
        """A JSON-ready digest input of ``observed``: what a saved plan must find unchanged."""

    @abstractmethod
    def plan(
        self,
        policy: Policy,
        context: DesiredContext,
        observed: Any,
        now: datetime,
        options: PlanOptions,
    ) -> tuple[Sequence[KindChange], Sequence[KindNote]]:
        """Pure: the changes that make the context match, and notes to show."""

    @abstractmethod
    def refusal(
        self, change: KindChange, policy: Policy, context: DesiredContext, observed: Any
    ) -> str | None:
        """The executor's own check of a change against the policy; None if allowed."""

    @abstractmethod
    async def execute(
        self,
        changes: Sequence[KindChange],
        policy: Policy,
        context: DesiredContext,
        observed: Any,
        session: Session,
        store: VaultStore,
        settings: StepSettings,
    ) -> list[KindOutcome]:
        """Carry out admitted changes of this kind in one context."""

    @abstractmethod
    def text(self, change: KindChange) -> str:
        """The plan line after the action symbol."""

    @abstractmethod
    def to_json(self, change: KindChange) -> dict[str, Any]:
        """The change for ``--json`` and saved plans (``kind``, ``action``, ``owner``,
        ``context`` and ``name`` are added by the caller)."""

    @abstractmethod
    def from_json(
        self,
        action: Action,
        owner: str,
        context: ContextId,
        name: str,
        reason: str,
        data: Mapping[str, Any],
    ) -> KindChange:
        """Read back what :meth:`to_json` wrote (raising TypeError/ValueError/KeyError)."""
