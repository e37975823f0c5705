"""A run where contexts failed never ends with "No changes" on stdout (CI summaries show it)."""

from __future__ import annotations

from tests.cli.conftest import World
from tests.e2e.conftest import NIPS

# A valid NIP whose login material is not in Vault: its login fails.
UNSEEDED = "1234563218"

MANIFEST = f"""\
defaults:
  tokens:
    - name: erp
      permissions: [InvoiceRead]
contexts:
  - nip: "{NIPS[0]}"
  - nip: "{UNSEEDED}"
"""


def test_plan_summary_counts_failed_contexts(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--nip", NIPS[0], "--auto-approve").code == 0

    result = world.ksefctl("plan", "-f", str(manifest))
    assert result.code == 1, result
    assert "No changes" not in result.out
    assert result.out.splitlines()[-1] == (
        "Plan: 0 to create, 0 to replace, 0 to revoke; "
        "1 context failed and could not be planned (errors on stderr)."
    )
    assert UNSEEDED in result.err


def test_a_clean_plan_still_says_no_changes(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--nip", NIPS[0], "--auto-approve").code == 0
    result = world.ksefctl("plan", "-f", str(manifest), "--nip", NIPS[0])
    assert result.code == 0, result
    assert result.out.splitlines()[-1] == "No changes. KSeF tokens and Vault match the manifest."


def test_status_total_counts_contexts_not_observed(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    result = world.ksefctl("status", "-f", str(manifest))
    assert result.code == 1, result
    assert result.out.splitlines()[-1].endswith(", 1 context not observed.")
