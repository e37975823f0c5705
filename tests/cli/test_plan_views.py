"""What a platform team reads: show PLAN, Markdown for reviews, compact views, names, validate --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from tests.cli.conftest import World
from tests.conftest import REPO
from tests.e2e.conftest import NIPS

PLAN_SCHEMA = json.loads((REPO / "schemas" / "plan.v1.json").read_text())
STATUS_SCHEMA = json.loads((REPO / "schemas" / "status.v1.json").read_text())

MANIFEST = f"""\
defaults:
  tokens:
    - name: erp
      permissions: [InvoiceRead]
contexts:
  - nip: "{NIPS[0]}"
    name: "Acme | Sp. z o.o."
    tokens:
      - name: bi
        permissions: [InvoiceRead]
  - nip: "{NIPS[1]}"
    name: Globex S.A.
  - nip: "{NIPS[2]}"
"""


def _valid(document: dict[str, Any], schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, errors


def test_plan_names_the_companies_the_manifest_names(world: World) -> None:
    manifest = str(world.manifest(MANIFEST))
    text = world.ksefctl("plan", "-f", manifest)
    assert text.code == 0, text
    assert f"Nip:{NIPS[0]} (Acme | Sp. z o.o.; owner acme)" in text.out.splitlines()
    assert f"Nip:{NIPS[1]} (Globex S.A.; owner acme)" in text.out.splitlines()
    assert f"Nip:{NIPS[2]} (owner acme)" in text.out.splitlines()

    document = json.loads(world.ksefctl("plan", "-f", manifest, "--json").out)
    _valid(document, PLAN_SCHEMA)
    named = {c["context"]: c.get("context_name") for c in document["changes"]}
    assert named == {
        f"Nip:{NIPS[0]}": "Acme | Sp. z o.o.",
        f"Nip:{NIPS[1]}": "Globex S.A.",
        f"Nip:{NIPS[2]}": None,
    }


def test_status_names_the_companies_too(world: World) -> None:
    manifest = str(world.manifest(MANIFEST))
    assert world.ksefctl("apply", "-f", manifest, "--auto-approve").code == 0
    text = world.ksefctl("status", "-f", manifest)
    assert f"Nip:{NIPS[1]} (Globex S.A.; owner acme)" in text.out.splitlines()
    document = json.loads(world.ksefctl("status", "-f", manifest, "--json").out)
    _valid(document, STATUS_SCHEMA)
    assert {c["context"]: c.get("name") for c in document["contexts"]} == {
        f"Nip:{NIPS[0]}": "Acme | Sp. z o.o.",
        f"Nip:{NIPS[1]}": "Globex S.A.",
        f"Nip:{NIPS[2]}": None,
    }


def test_compact_plan_is_one_line_per_context(world: World) -> None:
    result = world.ksefctl("plan", "-f", str(world.manifest(MANIFEST)), "--compact")
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert sorted(lines[:3]) == sorted(
        [
            f"+2 ~0 -0  Nip:{NIPS[0]} (Acme | Sp. z o.o.; owner acme)",
            f"+1 ~0 -0  Nip:{NIPS[1]} (Globex S.A.; owner acme)",
            f"+1 ~0 -0  Nip:{NIPS[2]} (owner acme)",
        ]
    )
    assert lines[3:] == ["", "Plan: 4 to create, 0 to replace, 0 to revoke."]


def test_markdown_plan_for_a_pull_request_comment(world: World) -> None:
    manifest = str(world.manifest(MANIFEST))
    result = world.ksefctl("plan", "-f", manifest, "--format", "markdown")
    assert result.code == 0, result
    out = result.out
    assert out.startswith("### ksefctl plan\n\n**Plan: 4 to create, 0 to replace, 0 to revoke.**")
    # A name with a pipe stays in its cell.
    assert f"| `Nip:{NIPS[0]}` | Acme \\| Sp. z o.o. | acme | 2 | 0 | 0 | 0 |" in out
    assert f"| `Nip:{NIPS[2]}` |  | acme | 1 | 0 | 0 | 0 |" in out
    assert "<details><summary>Full plan</summary>" in out and "```diff\n" in out
    assert "  + create  erp  [InvoiceRead]" in out
    assert world.ksefctl("plan", "-f", manifest, "--markdown").out == out


def test_markdown_carries_failures_and_never_says_no_changes(world: World) -> None:
    body = MANIFEST + '  - nip: "1234563218"\n    name: Nobody\n'
    result = world.ksefctl("plan", "-f", str(world.manifest(body)), "--markdown")
    assert result.code == 1
    assert "1 context failed" in result.out and "No changes" not in result.out
    assert "**Errors**" in result.out and "Nip:1234563218 (acme): login failed" in result.out


def test_show_prints_a_saved_plan_every_way(world: World) -> None:
    manifest = str(world.manifest(MANIFEST))
    saved = str(world.directory / "reviewed.plan")
    planned = world.ksefctl("plan", "-f", manifest, "--out", saved, "--nip", NIPS[1])
    assert planned.code == 0, planned
    world.sim.admin("POST", "/stats/reset")

    text = world.ksefctl("show", saved)
    assert text.code == 0, text
    assert text.out.startswith(f"Plan {saved}, made at ")
    assert f"with --nip {NIPS[1]}" in text.out
    assert f"Apply exactly it with: ksefctl apply {saved}" in text.out
    assert f"Nip:{NIPS[1]} (Globex S.A.; owner acme)" in text.out
    assert text.out.rstrip().endswith("Plan: 1 to create, 0 to replace, 0 to revoke.")

    document = json.loads(world.ksefctl("show", saved, "--json").out)
    _valid(document, PLAN_SCHEMA)
    on_disk = json.loads(Path(saved).read_text())["plan"]
    assert document["fingerprint"] == on_disk["fingerprint"]
    assert [c["token"] for c in document["changes"]] == [c["token"] for c in on_disk["changes"]]

    markdown = world.ksefctl("show", saved, "--markdown").out
    assert markdown.startswith(f"### ksefctl plan ({saved})")
    compact = world.ksefctl("show", saved, "--compact").out
    assert compact.splitlines()[0] == f"+1 ~0 -0  Nip:{NIPS[1]} (Globex S.A.; owner acme)"
    # show reads the file only.
    assert not world.sim.stats()["requests"]


def test_show_refuses_what_is_not_a_plan(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    result = world.ksefctl("show", str(manifest))
    assert result.code == 1
    assert result.err.startswith("Error: ") and "not a ksefctl plan file" in result.err


def test_one_output_format_at_a_time(world: World) -> None:
    manifest = str(world.manifest(MANIFEST))
    both = world.ksefctl("plan", "-f", manifest, "--json", "--markdown")
    assert both.code == 1 and "choose one output format" in both.err
    compact = world.ksefctl("plan", "-f", manifest, "--json", "--compact")
    assert compact.code == 1 and "--compact" in compact.err


def test_validate_json_reports_counts_or_every_located_error(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    ok = world.ksefctl("validate", "-f", str(manifest), "--json")
    assert ok.code == 0, ok
    document = json.loads(ok.out)
    assert document["valid"] is True and document["errors"] == []
    assert document["summary"] == {"owners": 1, "contexts": 3, "tokens": 4}
    by_context = {c["context"]: c for c in document["contexts"]}
    assert by_context[f"Nip:{NIPS[0]}"] == {
        "owner": "acme",
        "context": f"Nip:{NIPS[0]}",
        "name": "Acme | Sp. z o.o.",
        "tokens": ["bi", "erp"],
    }

    broken = manifest.with_name("broken.yaml")
    broken.write_text(manifest.read_text().replace(f'nip: "{NIPS[2]}"', 'nip: "1234567890"'))
    bad = world.ksefctl("validate", "-f", str(broken), "--json")
    assert bad.code == 1 and bad.err == ""
    report = json.loads(bad.out)
    assert report["valid"] is False
    (error,) = report["errors"]
    assert error["file"] == str(broken) and error["line"] > 1 and error["column"] >= 1
    assert "not a valid NIP" in error["message"]
