"""An emptied manifest with ``--prune`` does not revoke a whole estate by accident.

Given an owner with three contexts, when its manifest is truncated to
``contexts: []`` and applied with ``--prune``, then apply refuses with one
line and nothing is revoked; ``--allow-mass-prune`` says it is meant.  One
company leaving the manifest is pruned without the flag.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import NIPS, World

ALL = "contexts:\n" + "".join(
    f'  - nip: "{nip}"\n    tokens:\n      - name: erp\n        permissions: [InvoiceRead]\n'
    for nip in NIPS
)


pytestmark = pytest.mark.usefixtures("roomy_limits")


def live(world: World) -> int:
    return sum(len(world.tokens(nip)) for nip in NIPS)


def test_pruning_everything_needs_an_explicit_flag(world: World) -> None:
    assert world.ksefctl("apply", "-f", str(world.manifest(ALL)), "--auto-approve").code == 0
    assert live(world) == 3
    emptied = world.manifest("contexts: []\n")

    refused = world.ksefctl("apply", "-f", str(emptied), "--prune", "--auto-approve")
    assert refused.code == 1, refused
    assert "--prune would clean 3 of owner acme's 3 contexts" in refused.err, refused
    assert "--allow-mass-prune" in refused.err and "Traceback" not in refused.err
    assert live(world) == 3

    meant = world.ksefctl(
        "apply", "-f", str(emptied), "--prune", "--allow-mass-prune", "--auto-approve"
    )
    assert meant.code == 0, meant
    assert live(world) == 0


def test_one_company_leaving_is_pruned_without_the_flag(world: World) -> None:
    assert world.ksefctl("apply", "-f", str(world.manifest(ALL)), "--auto-approve").code == 0
    two = ALL.split(f'  - nip: "{NIPS[2]}"')[0]
    pruned = world.ksefctl("apply", "-f", str(world.manifest(two)), "--prune", "--auto-approve")
    assert pruned.code == 0, pruned
    assert world.tokens(NIPS[2]) == [] and live(world) == 2
