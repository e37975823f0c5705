"""The plan as people and machines read it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from ksefctl.reconcile.model import Plan
from ksefctl.reconcile.render import render_json, render_text
from tests.reconcile.world import NOW
from tests.support.sample_plan import OLD, PLAN

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "plan.v1.json").read_text())
GOLDEN = """\
Nip:5265877635 (owner acme)
  + create  bi  [InvoiceRead]
  ~ replace erp  (rotation due)  20251010-EC-1DCE3E3000-12ECB5B36E-45  kept until 2026-06-08T10:00Z
  - revoke  legacy  (no longer declared)  20251010-EC-1DCE3E3000-12ECB5B36E-46  and delete secret/ksef/test/5265877635/legacy
    keeping 20251010-EC-1DCE3E3000-12ECB5B36E-44 until 2026-06-03T10:00Z (overlap)

Nip:7762811692 (owner acme)
  ~ replace erp  (permissions)  20251010-EC-1DCE3E3000-12ECB5B36E-47  → [InvoiceRead, InvoiceWrite]
    waiting for reader to become Active (20251010-EC-1DCE3E3000-12ECB5B36E-48)

InternalId:5265877635-12345 (owner beta)
  ! adopt   erp  (hand-made 20250102-EC-2AAAAAAAAA-BBBBBBBBBB-01)  [InvoiceRead, InvoiceWrite]

Plan: 1 to create, 2 to replace, 1 to revoke, 1 to adopt.
"""


def test_text_reads_like_terraform() -> None:
    assert render_text(PLAN) == GOLDEN


def test_text_without_notes_or_changes() -> None:
    quiet = render_text(PLAN, show_notes=False)
    assert "keeping" not in quiet and "waiting" not in quiet
    waiting_only = Plan((), PLAN.notes[1:], "ab" * 32, NOW)
    assert render_text(waiting_only) == (
        "Nip:7762811692 (owner acme)\n"
        "    waiting for reader to become Active (20251010-EC-1DCE3E3000-12ECB5B36E-48)\n"
        "\n"
        "No changes. KSeF tokens and Vault match the manifest.\n"
    )
    assert render_text(Plan(())) == "No changes. KSeF tokens and Vault match the manifest.\n"


def test_summary_leaves_out_adopt_when_none() -> None:
    plan = Plan(PLAN.changes[:4])
    assert render_text(plan).splitlines()[-1] == "Plan: 1 to create, 2 to replace, 1 to revoke."


def test_colour_only_when_asked() -> None:
    assert "\x1b[" not in render_text(PLAN)
    coloured = render_text(PLAN, color=True)
    assert "\x1b[32m+ create \x1b[0m bi" in coloured
    assert "\x1b[31m- revoke \x1b[0m legacy" in coloured


def test_json_matches_the_published_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    document = render_json(PLAN)
    validator.validate(json.loads(json.dumps(document)))
    assert document["summary"] == {
        "create": 1,
        "replace": 2,
        "revoke": 1,
        "adopt": 1,
        "move": 0,
        "empty": False,
    }
    assert document["created_at"] == "2026-06-01T10:00:00Z"
    replace = document["changes"][1]
    assert replace == {
        "action": "replace",
        "symbol": "~",
        "owner": "acme",
        "context": "Nip:5265877635",
        "token": "erp",
        "reason": "rotation due",
        "reference_number": OLD,
        "permissions": ["InvoiceRead", "InvoiceWrite"],
        "description": "",
        "secret": {"mount": "secret", "path": "ksef/test/5265877635/erp"},
        "delete_secret": False,
        "keep_until": "2026-06-08T10:00:00Z",
        "policy_digest": "",
        "moved_from": None,
    }
    validator.validate(render_json(Plan(())))


def test_schema_rejects_what_the_contract_forbids() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    document = render_json(PLAN)
    document["changes"][0]["reference_number"] = OLD  # a create supersedes nothing
    assert not validator.is_valid(document)
    document = render_json(PLAN)
    document["format_version"] = "2"
    assert not validator.is_valid(document)
