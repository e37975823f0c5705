"""``status --certificates``: the auditor's view of every KSeF certificate per context."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.conftest import REPO
from tests.support.certificate_world import apply, certificate_manifest, subject_certificates
from tests.support.sim_certificates import issue, new_key, xades_login
from tests.support.world import NIPS, World

NIP = NIPS[0]
ONE = f"""\
contexts:
  - nip: "{NIP}"
    certificates:
      - name: login
"""


@pytest.fixture(autouse=True)
def _no_server_side_limits(world: World) -> None:
    world.sim.set_limits(enabled=False)
    world.sim.set_faults(enrollment_delay_s=0.05, revocation_delay_s=0.05)


def test_status_lists_managed_and_hand_made_certificates(world: World) -> None:
    seal = world.vault.secrets.kv.v2.read_secret_version(
        path=f"ksef-admin/{NIP}", mount_point=world.bao.mount, raise_on_deleted_version=True
    )["data"]["data"]
    _, session = xades_login(world.sim, (seal["certificate"].encode(), seal["privateKey"].encode()))
    assert session is not None
    handmade, _ = issue(world.sim, session, new_key(), name="made by hand")
    manifest = certificate_manifest(world, ONE)
    assert apply(world, manifest).code == 0
    (managed,) = [
        c["certificateSerialNumber"]
        for c in subject_certificates(world, NIP)
        if c["certificateSerialNumber"] != handmade
    ]

    text = world.ksefctl("status", "-f", str(manifest), "--certificates")
    assert text.code == 0, text
    row = next(line for line in text.out.splitlines() if managed in line)
    assert "login" in row and "yes" in row and "managed" in row
    assert any(handmade in line and "unmanaged" in line for line in text.out.splitlines())

    result = world.ksefctl("status", "-f", str(manifest), "--certificates", "--json")
    document = json.loads(result.out)
    jsonschema.validate(document, json.loads((REPO / "schemas" / "status.v1.json").read_text()))
    rows = {r["serial_number"]: r for r in document["certificates"]}
    assert rows[managed]["ownership"] == "managed" and rows[managed]["in_vault"] is True
    assert rows[managed]["renewal_due_at"] is not None
    assert rows[handmade]["ownership"] == "unmanaged" and rows[handmade]["in_vault"] is None
    assert "PRIVATE KEY" not in result.out + text.out
