"""An interrupted ``rotate --no-overlap`` is finished as asked, not as a one-day overlap.

Given a token with ``overlap: 1d``, when ``rotate --no-overlap`` stops after
the new token is stored but before the old one is revoked, then the next plain
``apply`` revokes the old token at once ("forced rotation without overlap"),
because the rotation's intent was recorded in Vault before it started.
"""

from __future__ import annotations

import time
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
        overlap: 1d
"""


@pytest.fixture(autouse=True)
def _no_server_side_limits(world: World) -> None:
    world.sim.set_limits(enabled=False)


def active(world: World, reference: str) -> None:
    """Until KSeF has activated the new token (the simulator's activation delay)."""
    deadline = time.monotonic() + 30
    while reference not in {t["referenceNumber"] for t in world.tokens(NIP, ("Active",))}:
        assert time.monotonic() < deadline, "the new token never became Active"
        time.sleep(0.05)


def test_an_interrupted_no_overlap_rotation_is_finished_without_overlap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = world.manifest(ERP)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    old = world.secret(NIP, "erp")["data"]["referenceNumber"]

    async def stopped(self: Session, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the runner was stopped")  # after the Vault write, before activation

    with monkeypatch.context() as patch:
        patch.setattr(Session, "wait_for_status", stopped)
        interrupted = world.ksefctl(
            "rotate", "-f", str(manifest), "--nip", NIP, "--no-overlap", "--auto-approve"
        )
    assert interrupted.code == 1, interrupted
    new = world.secret(NIP, "erp")["data"]["referenceNumber"]
    assert new != old
    assert {t["referenceNumber"] for t in world.tokens(NIP, ("Pending", "Active"))} == {old, new}
    active(world, new)

    plan = world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert plan.code == 2, plan
    assert f"(forced rotation without overlap)  {old}" in plan.out, plan
    assert "overlap until" not in plan.out
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    assert [t["referenceNumber"] for t in world.tokens(NIP, ("Pending", "Active"))] == [new]
    again = world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert again.code == 0, again


def test_an_interrupted_rotation_with_overlap_keeps_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = world.manifest(ERP)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    old = world.secret(NIP, "erp")["data"]["referenceNumber"]

    async def stopped(self: Session, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the runner was stopped")

    with monkeypatch.context() as patch:
        patch.setattr(Session, "wait_for_status", stopped)
        rotated = world.ksefctl("rotate", "-f", str(manifest), "--nip", NIP, "--auto-approve")
    assert rotated.code == 1, rotated
    active(world, world.secret(NIP, "erp")["data"]["referenceNumber"])
    plan = world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert plan.code == 0, plan  # the old token stays for its overlap
    assert old in {t["referenceNumber"] for t in world.tokens(NIP)}
