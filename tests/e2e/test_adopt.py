"""Stories of adoption: bringing hand-made tokens under management."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.world import NIPS, World
from tests.support.world import metadata as _metadata
from tests.support.world import statuses as _statuses

NIP = NIPS[0]
GOING = ("Revoking", "Revoked")
MANIFEST = """\
contexts:
  - nip: "5265877635"
    tokens:
      - name: erp
        permissions: [InvoiceRead, InvoiceWrite]
        overlap: {overlap}
"""


# Pacing is tested in test_revoke.py.
pytestmark = pytest.mark.usefixtures("roomy_limits")


def _words(text: str) -> str:
    return " ".join(text.split())


def _rows(world: World, manifest: Any) -> dict[str, dict[str, Any]]:
    result = world.ksefctl("status", "-f", str(manifest), "--json")
    assert result.code == 0, result
    return {t["reference_number"]: t for t in json.loads(result.out)["contexts"][0]["tokens"]}


def test_adopt_replaces_a_hand_made_token_and_revokes_it_after_the_overlap(
    world: World,
) -> None:
    manifest = world.manifest(MANIFEST.format(overlap="1d"))
    handmade = world.sim.mint_token(
        NIP, ["InvoiceRead", "InvoiceWrite"], description="ERP made by Jan"
    )
    unrelated = world.sim.mint_token(NIP, ["InvoiceRead"], description="BI by hand")

    plain = world.ksefctl("plan", "-f", str(manifest))
    assert "+ create erp" in _words(plain.out), plain
    offered = world.ksefctl("plan", "-f", str(manifest), "--adopt")
    assert offered.code == 0, offered
    text = _words(offered.out)
    assert f"! adopt erp (hand-made {handmade.reference_number})" in text
    assert f"not managed: {unrelated.reference_number}" in text
    assert "1 to adopt" in text

    applied = world.ksefctl("apply", "-f", str(manifest), "--adopt", "--auto-approve")
    assert applied.code == 0, applied
    assert "1 adopted" in applied.out
    custom = _metadata(world, NIP, "erp")["custom_metadata"]
    assert custom["adoptedFrom"] == handmade.reference_number
    successor = world.secret(NIP, "erp")["data"]["referenceNumber"]
    # People still using Jan's token have a day to switch over.
    rows = _rows(world, manifest)
    assert rows[handmade.reference_number]["status"] == "Active"
    assert "adopting" in rows[handmade.reference_number]["flags"]
    assert rows[successor]["ownership"] == "managed"
    assert world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode").code == 0

    # After the overlap any apply (even without --adopt) completes the adoption.
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    done = world.ksefctl("apply", "-f", str(manifest), "--now", later, "--auto-approve")
    assert done.code == 0, done
    assert f"- revoke erp (adoption complete) {handmade.reference_number}" in _words(done.out)
    statuses = _statuses(world)
    assert statuses[handmade.reference_number] in GOING
    assert statuses[unrelated.reference_number] == "Active"  # never touched
    assert statuses[successor] == "Active"


def test_adopt_with_match_takes_a_token_by_its_description(world: World) -> None:
    manifest = world.manifest(MANIFEST.format(overlap="0s"))
    # Made by hand with fewer permissions than declared: no permission match...
    handmade = world.sim.mint_token(NIP, ["InvoiceRead"], description="Comarch ERP export")
    assert "+ create erp" in _words(world.ksefctl("plan", "-f", str(manifest), "--adopt").out)

    # ...but the user says which one it is.
    plan = world.ksefctl("plan", "-f", str(manifest), "--adopt", "--match", "erp=comarch")
    assert f"! adopt erp (hand-made {handmade.reference_number})" in _words(plan.out), plan

    applied = world.ksefctl(
        "apply", "-f", str(manifest), "--adopt", "--match", "erp=COMARCH", "--auto-approve"
    )
    assert applied.code == 0, applied
    # No overlap: the hand-made token goes as soon as its successor is Active and stored.
    assert _statuses(world)[handmade.reference_number] in GOING
    stored = world.secret(NIP, "erp")["data"]
    assert stored["permissions"] == ["InvoiceRead", "InvoiceWrite"]


def test_match_is_refused_without_adopt_or_when_malformed(world: World) -> None:
    manifest = world.manifest(MANIFEST.format(overlap="0s"))
    alone = world.ksefctl("plan", "-f", str(manifest), "--match", "erp=comarch")
    assert alone.code == 1 and alone.err == "Error: --match only makes sense with --adopt\n"
    bad = world.ksefctl("apply", "-f", str(manifest), "--adopt", "--match", "erp")
    assert bad.code == 1
    assert bad.err == ("Error: --match takes NAME=TEXT with at least 3 characters of text: 'erp'\n")
