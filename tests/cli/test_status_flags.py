"""``status``: a fresh apply is not an alert — ``never-used`` is information, not a flag."""

from __future__ import annotations

import json

from ksefctl.reconcile.inventory import inventory
from tests.cli.conftest import World
from tests.e2e.conftest import NIPS
from tests.reconcile.world import NIP_A, NOW, Spec, desired, policy
from tests.reconcile.world import World as PureWorld

MANIFEST = """\
contexts:
  - nip: "5265877635"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
"""


def test_never_used_alone_does_not_count_as_flagged() -> None:
    acme = policy("acme", {NIP_A: [Spec("erp")]})
    world = PureWorld()
    fresh = world.add_token(NIP_A, owner="acme")
    world.store(acme.secret_for(NIP_A, "erp"), fresh)
    stray = world.add_token(NIP_A, owner="acme", name="legacy")
    want = desired(acme)
    inv = inventory(want, world.observe(want), NOW)
    found = {r.reference_number: r for r in inv.rows}
    assert found[fresh.reference_number].flags == ("never-used",)
    assert not found[fresh.reference_number].flagged
    # A warning next to never-used still counts.
    assert "not-declared" in found[stray.reference_number].flags
    assert found[stray.reference_number].flagged
    assert inv.contexts[0].flagged == 1


def test_the_alert_recipe_stays_quiet_after_an_apply(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    result = world.ksefctl("status", "-f", str(manifest), "--json")
    assert result.code == 0, result
    document = json.loads(result.out)
    tokens = [t for c in document["contexts"] for t in c["tokens"]]
    assert [t["name"] for t in tokens] == ["erp"]
    assert tokens[0]["status"] == "Active" and tokens[0]["flags"] == ["never-used"]
    # `jq -e '.summary.flagged == 0'` from docs/status-json.md
    assert document["summary"]["flagged"] == 0
    text = world.ksefctl("status", "-f", str(manifest))
    assert (
        text.out.splitlines()[-1]
        == "Total: 1 context, 1 token (1 managed, 0 of other owners, 0 hand-made), 0 flagged."
    )
    assert f"Nip:{NIPS[0]} (owner acme)" in text.out
