"""Changing ``spec.vault.path`` moves secrets; it does not replace tokens.

Given tokens stored at ``ksef/{environment}/{nip}/{token}``, when the
manifest moves them to ``companies/{nip}/{token}`` and names the old template
in ``spec.vault.movedFrom``, then the plan says ``> move``, apply writes each
value at the new path and soft-deletes the old one, KSeF's tokens are the same
ones, still Active, and the next plan is empty.
"""

from __future__ import annotations

import hvac
import pytest

from tests.e2e.conftest import NIPS, World

NIP, NIP2 = NIPS[0], NIPS[1]
TOKENS = f"""\
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
OLD = 'path: "ksef/{environment}/{nip}/{token}"'
NEW = 'path: "companies/{nip}/{token}"\n    movedFrom: ["ksef/{environment}/{nip}/{token}"]'


@pytest.fixture(autouse=True)
def _no_server_side_limits(world: World) -> None:
    world.sim.set_limits(enabled=False)


def read(world: World, path: str) -> dict[str, str]:
    answer = world.vault.secrets.kv.v2.read_secret_version(
        path=path, mount_point=world.bao.mount, raise_on_deleted_version=True
    )
    return dict(answer["data"]["data"])


def test_a_path_change_moves_the_secrets_and_keeps_the_tokens(world: World) -> None:
    manifest = world.manifest(TOKENS)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    before = {nip: read(world, f"ksef/sim/{nip}/erp") for nip in (NIP, NIP2)}
    live = {nip: world.tokens(nip) for nip in (NIP, NIP2)}
    manifest.write_text(manifest.read_text().replace(OLD, NEW))

    plan = world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert plan.code == 2, plan
    assert f"> move    erp  (path changed)  {world.bao.mount}/ksef/sim/{NIP}/erp ->" in plan.out
    assert "create" not in plan.out.replace("0 to create", "")
    applied = world.ksefctl("apply", "-f", str(manifest), "--auto-approve")
    assert applied.code == 0, applied
    assert "0 created, 0 replaced, 0 revoked, 2 moved." in applied.out

    for nip in (NIP, NIP2):
        assert read(world, f"companies/{nip}/erp") == before[nip]  # the same token value
        with pytest.raises(hvac.exceptions.InvalidPath):
            read(world, f"ksef/sim/{nip}/erp")  # soft-deleted
        metadata = world.vault.secrets.kv.v2.read_secret_metadata(
            path=f"ksef/sim/{nip}/erp", mount_point=world.bao.mount
        )["data"]["custom_metadata"]
        assert metadata["deletedReason"] == f"moved to {world.bao.mount}/companies/{nip}/erp"
        assert world.tokens(nip) == live[nip]  # KSeF untouched
    again = world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert again.code == 0, again


def test_without_moved_from_a_path_change_replaces(world: World) -> None:
    manifest = world.manifest(TOKENS)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    manifest.write_text(manifest.read_text().replace(OLD, 'path: "companies/{nip}/{token}"'))
    plan = world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert plan.code == 2 and "2 to replace" in plan.out, plan
