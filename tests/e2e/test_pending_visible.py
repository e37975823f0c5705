"""Consumers can tell a stored token that is not Active yet (docs/consumers.md).

A new token goes to Vault before KSeF activates it (SPEC principle 3), so the
current version's ``custom_metadata.status`` says ``Pending`` until the token
is Active, then ``Active`` with ``activatedAt``.  After a rotation, nothing
of the previous version's activation is left on the path while the new one
waits.
"""

from __future__ import annotations

from typing import Any

import pytest

from ksefctl.ksef import Session
from tests.e2e.conftest import NIPS, World

NIP = NIPS[0]
ERP = f"""\
contexts:
  - nip: "{NIP}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
"""


pytestmark = pytest.mark.usefixtures("roomy_limits")


def test_status_is_pending_until_the_token_is_active(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_while_waiting: list[dict[str, Any]] = []
    wait = Session.wait_for_status

    async def watched(self: Session, *args: Any, **kwargs: Any) -> Any:
        seen_while_waiting.append(dict(world.secret(NIP, "erp")["metadata"]["custom_metadata"]))
        return await wait(self, *args, **kwargs)

    monkeypatch.setattr(Session, "wait_for_status", watched)
    manifest = world.manifest(ERP)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    after = world.secret(NIP, "erp")["metadata"]["custom_metadata"]
    assert after["status"] == "Active" and after["activatedAt"]

    rotated = world.ksefctl("rotate", "-f", str(manifest), "--nip", NIP, "--auto-approve")
    assert rotated.code == 0, rotated

    first, second = seen_while_waiting
    for pending in (first, second):
        assert pending["status"] == "Pending" and "activatedAt" not in pending, pending
    assert second["referenceNumber"] != first["referenceNumber"]
    final = world.secret(NIP, "erp")
    assert final["metadata"]["custom_metadata"]["status"] == "Active"
    assert final["data"]["referenceNumber"] == second["referenceNumber"]
