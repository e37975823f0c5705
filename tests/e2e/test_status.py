"""Stories of ``ksefctl status``: everything that can log into a company, flagged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema

from tests.e2e.conftest import NIPS, World

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "status.v1.json").read_text()
)

MANIFEST = """\
defaults:
  tokens:
    - name: erp
      permissions: [InvoiceRead, InvoiceWrite]
      rotateEvery: 90d
contexts:
  - nip: "5265877635"
  - nip: "7762811692"
"""

GROWN = (
    MANIFEST
    + """\
    tokens:
      - name: reader
        permissions: [InvoiceRead]
"""
)


def _validate(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def _moment(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def test_status_lists_every_token_with_ownership_vault_and_flags(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    own, other = NIPS[0], NIPS[1]
    handmade = world.sim.mint_token(own, ["InvoiceRead"], description="made by hand in the web app")
    foreign = world.sim.mint_token(
        own, ["InvoiceRead"], description="BI [ksefctl owner=globex token=bi id=abcdefghij]"
    )
    # The erp token of the first company is used once; the second's secret is lost.
    used = world.secret(own, "erp")["data"]
    world.sim.login_with_token(used["token"], ("Nip", own))
    world.vault.secrets.kv.v2.delete_latest_version_of_secret(
        path=f"ksef/sim/{other}/erp", mount_point=world.bao.mount
    )

    # 100 days on: erp is due for rotation, the hand-made one unused for 100 days.
    text = world.ksefctl(
        "status", "-f", str(manifest), "--unused-for", "30d", "--now", _moment(100)
    )
    assert text.code == 0, text
    lines = text.out.splitlines()
    assert f"Nip:{own} (owner acme)" in lines
    erp_row = next(line for line in lines if used["referenceNumber"] in line)
    assert "Active" in erp_row and "yes" in erp_row and "rotation due since" in erp_row
    assert "never-used" not in erp_row  # it logged in once
    hand_row = next(line for line in lines if handmade.reference_number in line)
    assert "(hand-made)" in hand_row and "unused 100d" in hand_row and "never-used" in hand_row
    assert "globex/bi" in next(line for line in lines if foreign.reference_number in line)
    assert "  3 tokens: 1 managed, 1 of other owners, 1 hand-made; 3 flagged." in lines
    missing_row = next(line for line in lines if "MISSING" in line)
    assert "secret-missing" in missing_row
    assert lines[-1] == (
        "Total: 2 contexts, 4 tokens (2 managed, 1 of other owners, 1 hand-made), 4 flagged."
    )

    result = world.ksefctl(
        "status", "-f", str(manifest), "--json", "--unused-for", "30d", "--now", _moment(100)
    )
    assert result.code == 0, result
    document = json.loads(result.out)
    _validate(document)
    assert document["summary"] == {
        "contexts": 2,
        "tokens": 4,
        "managed": 2,
        "unmanaged": 1,
        "other_owners": 1,
        "flagged": 4,
        "absent": 0,
    }
    rows = {t["reference_number"]: t for c in document["contexts"] for t in c["tokens"]}
    erp = rows[used["referenceNumber"]]
    assert erp["ownership"] == "managed" and erp["name"] == "erp"
    assert erp["secret_in_vault"] is True and erp["last_used"] is not None
    assert erp["flags"] == ["rotation-due", "unused"]  # used once, 100 days ago
    assert erp["author"] == f"Nip:{own}" and erp["age_days"] == 100
    hand = rows[handmade.reference_number]
    assert hand["ownership"] == "unmanaged" and hand["secret_in_vault"] is None
    assert hand["description"] == "made by hand in the web app"
    assert hand["flags"] == ["never-used", "unused"] and hand["unused_days"] == 100
    assert rows[foreign.reference_number]["managed_by"] == "globex"
    lost = next(t for t in document["contexts"][1]["tokens"])
    assert lost["secret_in_vault"] is False and "secret-missing" in lost["flags"]


def test_status_reports_absent_tokens_and_unreachable_contexts(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    # A context whose login certificate nobody stored: its failure is reported,
    # the others are still listed, and the exit code says something is wrong.
    grown = world.manifest(GROWN + '  - nip: "9876543210"\n', name="grown.yaml")

    result = world.ksefctl("status", "-f", str(grown), "--json")
    assert result.code == 1, result
    document = json.loads(result.out)
    _validate(document)
    assert document["contexts"][1]["absent"] == ["reader"]
    assert document["summary"]["absent"] == 1
    assert [f["context"] for f in document["failures"]] == ["Nip:9876543210"]
    assert document["failures"][0]["stage"] == "login"
    assert "Nip:9876543210 (acme): login failed" in result.err

    text = world.ksefctl("status", "-f", str(grown))
    assert "declared but not in KSeF: reader" in text.out
    assert text.out.rstrip().endswith("1 declared but not in KSeF, 1 context not observed.")


def test_status_refuses_a_bad_threshold_in_one_line(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    result = world.ksefctl("status", "-f", str(manifest), "--unused-for", "soon")
    assert result.code == 1
    assert result.err.startswith("Error: --unused-for: 'soon' is not a duration")
    assert "Traceback" not in result.err
