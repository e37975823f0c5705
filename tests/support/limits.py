"""Rate limits and retry policies configured for a test, so no test waits out KSeF's real
minute windows or production backoff.

``roomy_limits`` switches the simulator's limits off for stories that are not
about them (they read KSeF often to check what happened); ``ROOMY`` is the same
idea for a simulator started with a config; ``FAST_RETRY`` and
``quick_cli_retries`` keep failure paths quick without changing how many
attempts a call makes (nor that a sealed Vault is waited for, only how long).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ksefctl.retry import RetryPolicy
from tests.support.sim import SimHandle

# Per second, minute and hour: generous limits for a simulator whose tests are not about them.
ROOMY = (1000, 100000, 1000000)
# Fast retries for KsefClient tests, so failure paths do not slow the suite.
FAST_RETRY = RetryPolicy(max_attempts=3, max_rate_limited=3, base_delay_s=0.01, max_delay_s=0.05)
# The production policy's attempts at a hundredth of its delays: what the CLI does on a
# failure is unchanged, only the waits between attempts shrink.
QUICK_CLI_RETRY = dataclasses.replace(RetryPolicy(), base_delay_s=0.0025, max_delay_s=0.08)
# Vault reads wait out a sealed Vault for 30 s in production; a test's patience is shorter.
QUICK_VAULT_READS = dataclasses.replace(
    RetryPolicy(), base_delay_s=0.0025, max_delay_s=0.04, patience_s=0.3
)


@pytest.fixture
def roomy_limits(sim: SimHandle) -> None:
    """The simulator's rate limits off: for stories that check KSeF's view often."""
    sim.set_limits(enabled=False)


@pytest.fixture
def quick_cli_retries(monkeypatch: pytest.MonkeyPatch) -> RetryPolicy:
    """The CLI, run in-process, retries quickly: every KSeF client with
    :data:`QUICK_CLI_RETRY`, every Vault client's reads with :data:`QUICK_VAULT_READS`
    (sealed) and :data:`QUICK_CLI_RETRY` (not answering)."""
    from ksefctl.reconcile import connections
    from ksefctl.vault.client import VaultClient

    original = connections.ClientSettings  # type: ignore[attr-defined]

    def quick(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("retry", QUICK_CLI_RETRY)
        return original(*args, **kwargs)

    # raising=True: if the engine stops building its clients here, this fails loudly
    # instead of letting the tests fall back to the production backoff.
    monkeypatch.setattr(connections, "ClientSettings", quick)

    vault_init = VaultClient.__init__

    def quick_vault(self: VaultClient, *args: Any, **kwargs: Any) -> None:
        vault_init(self, *args, **kwargs)
        if kwargs.get("read_retry") is None:
            # Attributes checked first, so a rename fails here rather than slowing tests.
            assert hasattr(self, "read_retry") and hasattr(self, "quick_retry")
            self.read_retry = QUICK_VAULT_READS
            self.quick_retry = QUICK_CLI_RETRY

    monkeypatch.setattr(VaultClient, "__init__", quick_vault)
    return QUICK_CLI_RETRY
