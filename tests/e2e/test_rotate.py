"""Stories of ``ksefctl rotate``: forced rotation, create before destroy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.world import NIPS, World
from tests.support.world import log_in_as_stranger as _log_in_as_stranger
from tests.support.world import statuses as _statuses

NIP = NIPS[0]
GOING = ("Revoking", "Revoked")  # KSeF revokes asynchronously
MANIFEST = """\
contexts:
  - nip: "5265877635"
    tokens:
      - name: erp
        permissions: [InvoiceRead, InvoiceWrite]
        overlap: 1d
      - name: reader
        permissions: [InvoiceRead]
"""


# Pacing is tested in test_revoke.py.
pytestmark = pytest.mark.usefixtures("roomy_limits")


def _words(text: str) -> str:
    return " ".join(text.split())  # plan columns are padded


def _held(world: World, name: str) -> str:
    return str(world.secret(NIP, name)["data"]["referenceNumber"])


def test_rotate_one_token_without_overlap_revokes_the_old_one_after_the_new_is_stored(
    world: World,
) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    old_erp, reader = _held(world, "erp"), _held(world, "reader")

    result = world.ksefctl("rotate", "-f", str(manifest), "--token", "erp", "--no-overlap", "--yes")
    assert result.code == 0, result
    assert f"~ replace erp (forced rotation) {old_erp}" in _words(result.out)
    assert "Apply complete: 0 created, 1 replaced, 0 revoked." in result.out
    new_erp = _held(world, "erp")
    assert new_erp != old_erp
    statuses = _statuses(world)
    assert statuses[old_erp] in GOING and statuses[new_erp] == "Active"
    assert _held(world, "reader") == reader and statuses[reader] == "Active"
    # The stored value is the new token, and it logs in.
    world.sim.login_with_token(world.secret(NIP, "erp")["data"]["token"], ("Nip", NIP))


def test_rotate_honours_the_overlap_and_a_later_apply_finishes_it(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    old_erp, old_reader = _held(world, "erp"), _held(world, "reader")

    result = world.ksefctl("rotate", "-f", str(manifest), "--nip", NIP, "--auto-approve")
    assert result.code == 0, result
    assert "1 replaced" not in result.out and "2 replaced" in result.out
    assert f"the previous erp ({old_erp}) stays valid for the overlap" in result.out
    statuses = _statuses(world)
    # reader has no overlap: gone at once; erp's predecessor still works for a day.
    assert statuses[old_reader] in GOING
    assert statuses[old_erp] == "Active"
    new_erp = _held(world, "erp")
    assert statuses[new_erp] == "Active"

    today = world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert today.code == 0, today  # inside the overlap nothing is due
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    plan = world.ksefctl("plan", "-f", str(manifest), "--now", later, "--detailed-exitcode")
    assert plan.code == 2, plan
    assert f"- revoke erp (overlap ended) {old_erp}" in _words(plan.out)
    applied = world.ksefctl("apply", "-f", str(manifest), "--now", later, "--auto-approve")
    assert applied.code == 0, applied
    assert _statuses(world)[old_erp] in GOING
    assert _held(world, "erp") == new_erp


def test_rotate_without_the_permissions_surfaces_ksef_26001_and_keeps_the_old_token(
    world: World,
) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    old_erp = _held(world, "erp")
    # ksefctl now logs in with an identity that may not issue invoices.
    _log_in_as_stranger(world, ["InvoiceRead", "CredentialsRead"])

    result = world.ksefctl("rotate", "-f", str(manifest), "--token", "erp", "--yes")
    assert result.code == 1, result
    assert "26001" in result.err, result.err
    assert "Traceback" not in result.err
    assert _held(world, "erp") == old_erp
    assert _statuses(world)[old_erp] == "Active"


def test_rotate_refuses_unknown_names_and_unconfirmed_runs(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = world.manifest(MANIFEST)
    unknown = world.ksefctl("rotate", "-f", str(manifest), "--token", "billing", "--yes")
    assert unknown.code == 1
    assert unknown.err == "Error: no declared token named billing in the selected contexts\n"

    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    monkeypatch.setattr("sys.stdin", open("/dev/null"))  # noqa: SIM115 - closed with the test
    refused = world.ksefctl("rotate", "-f", str(manifest))
    assert refused.code == 1
    assert "refusing to apply without confirmation" in refused.err
    assert set(_statuses(world).values()) == {"Active"}


def test_a_rotation_whose_new_token_fails_puts_the_old_token_back_in_vault(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    old_erp = _held(world, "erp")
    old_value = world.secret(NIP, "erp")["data"]["token"]

    world.sim.set_faults(failed_activation_rate=1.0)
    result = world.ksefctl("rotate", "-f", str(manifest), "--token", "erp", "--no-overlap", "--yes")
    assert result.code == 1, result
    assert "ended Failed" in result.err and f"Vault holds {old_erp} again" in result.err

    # Consumers reading the current secret still get a token that logs in.
    current = world.secret(NIP, "erp")
    assert current["data"]["referenceNumber"] == old_erp
    assert current["metadata"]["version"] == 3  # original, failed successor, restored
    assert _statuses(world)[old_erp] == "Active"
    world.sim.login_with_token(current["data"]["token"], ("Nip", NIP))
    assert current["data"]["token"] == old_value
    assert current["data"]["restoredFrom"] == 1

    # Once KSeF activates tokens again, a plain rotation converges.
    world.sim.set_faults(failed_activation_rate=0.0)
    again = world.ksefctl("rotate", "-f", str(manifest), "--token", "erp", "--no-overlap", "--yes")
    assert again.code == 0, again
    assert _held(world, "erp") != old_erp
    settled = world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert settled.code == 0, settled
