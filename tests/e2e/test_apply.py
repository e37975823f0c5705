"""Stories of plan and apply against the simulator and a real OpenBao."""

from __future__ import annotations

from tests.e2e.conftest import NIPS, World

TWO_CONTEXTS = """\
permissionSets:
  erp: [InvoiceRead, InvoiceWrite]
defaults:
  tokens:
    - name: erp
      permissionSet: erp
contexts:
  - nip: "5265877635"
  - nip: "7762811692"
    tokens:
      - name: reader
        permissions: [InvoiceRead]
        description: BI read-only
"""


def test_first_apply_creates_every_token_and_second_plan_is_empty(world: World) -> None:
    manifest = world.manifest(TWO_CONTEXTS)

    plan = world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert plan.code == 2, plan
    assert "Plan: 3 to create, 0 to replace, 0 to revoke." in plan.out

    applied = world.ksefctl("apply", "-f", str(manifest), "--auto-approve")
    assert applied.code == 0, applied
    assert "3 created" in applied.out

    for nip, name in [(NIPS[0], "erp"), (NIPS[1], "erp"), (NIPS[1], "reader")]:
        stored = world.secret(nip, name)
        assert stored["data"]["context"] == f"Nip:{nip}"
        assert stored["metadata"]["custom_metadata"]["managedBy"] == "ksefctl"
        # The stored value logs in: the secret is real.
        world.sim.login_with_token(stored["data"]["token"], ("Nip", nip))

    world.sim.admin("POST", "/stats/reset")
    again = world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert again.code == 0, again
    assert "No changes" in again.out
    writes = {
        k: v
        for k, v in world.sim.stats()["requests"].items()
        if k.startswith(("POST /v2/tokens", "DELETE /v2/tokens"))
    }
    assert not writes, writes
