"""An apply that loses its owner lock stops writing (issue: fail closed).

Given two contexts applied one after the other, when another holder takes the
owner's lock over in Vault after the first context is done, then the run
notices at its next renewal, the second context fails cleanly before its
first write, and KSeF and Vault hold nothing new there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hvac
import pytest

from ksefctl.reconcile import executor
from ksefctl.vault.errors import LockLost
from tests.e2e.conftest import NIPS, World

NIP, NIP2, _ = NIPS
MANIFEST = f"""\
contexts:
  - nip: "{NIP}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
  - nip: "{NIP2}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
"""


pytestmark = pytest.mark.usefixtures("roomy_limits")


def test_no_write_after_the_lock_is_lost(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    run = executor.ContextExecutor.run
    contexts_run: list[str] = []

    async def steal_after_first(self: executor.ContextExecutor, *args: Any, **kw: Any) -> Any:
        contexts_run.append(self.observed.context.value)
        outcomes = await run(self, *args, **kw)
        if len(contexts_run) == 1:
            # Another run takes the lock over: a new version under it, another holder.
            world.vault.secrets.kv.v2.create_or_update_secret(
                path=".ksefctl/locks/acme",
                mount_point=world.bao.mount,
                secret={"owner": "acme", "holder": "thief:1:abc", "expiresAt": "2999-01-01"},
            )
            deadline = asyncio.get_running_loop().time() + 20
            while asyncio.get_running_loop().time() < deadline:
                try:
                    self.settings.ensure_lock()
                except LockLost:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the run never noticed that its lock was taken over")
        return outcomes

    monkeypatch.setattr(executor.ContextExecutor, "run", steal_after_first)
    manifest = world.manifest(MANIFEST)
    result = world.ksefctl(
        "apply", "-f", str(manifest), "--auto-approve", "--parallelism", "1", "--lock-ttl", "1.5"
    )

    assert result.code == 1, result
    assert contexts_run == [NIP, NIP2]
    assert (
        f"Nip:{NIP2} (acme): erp: the lock of owner 'acme' is no longer held by this run"
        in result.err
    ), result
    assert result.err.rstrip().endswith("another run may have acted concurrently"), result
    assert "Traceback" not in result.err
    assert world.secret(NIP, "erp")["data"]["token"]  # done before the loss
    assert world.tokens(NIP2, ("Pending", "Active", "Revoking", "Revoked", "Failed")) == []
    with pytest.raises(hvac.exceptions.InvalidPath):
        world.secret(NIP2, "erp")
