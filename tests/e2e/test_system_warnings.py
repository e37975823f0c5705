"""KSeF's X-System-Warning reaches the user once per run, grouped, with its endpoints."""

from __future__ import annotations

from tests.e2e.conftest import NIPS, World

MANIFEST = f"""\
contexts:
  - nip: "{NIPS[0]}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
  - nip: "{NIPS[1]}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
"""


def test_each_warning_is_printed_once_on_stderr_with_the_endpoints_that_drew_it(
    world: World,
) -> None:
    world.sim.set_faults(system_warning="[W42]: Naglowek X bedzie wymagany")
    manifest = world.manifest(MANIFEST)
    result = world.ksefctl("apply", "-f", str(manifest), "--auto-approve")
    assert result.code == 0, result
    lines = [line for line in result.err.splitlines() if line.startswith("Warning: KSeF:")]
    assert len(lines) == 1, result
    (line,) = lines
    assert line.startswith("Warning: KSeF: [W42] Naglowek X bedzie wymagany (")
    for endpoint in ("POST /auth/challenge", "POST /tokens", "GET /tokens"):
        assert endpoint in line
    assert "W42" not in result.out  # stdout stays the plan and the report


def test_a_run_without_warnings_prints_none(world: World) -> None:
    result = world.ksefctl("plan", "-f", str(world.manifest(MANIFEST)))
    assert result.code in (0, 2), result
    assert "Warning: KSeF" not in result.err


def test_json_outputs_carry_the_warnings(world: World) -> None:
    import json

    import jsonschema

    from tests.conftest import REPO

    world.sim.set_faults(system_warning="[W42]: Naglowek X bedzie wymagany")
    manifest = world.manifest(MANIFEST)
    for command, schema in (("plan", "plan.v1.json"), ("status", "status.v1.json")):
        result = world.ksefctl(command, "-f", str(manifest), "--json")
        assert result.code in (0, 2), result
        document = json.loads(result.out)
        jsonschema.validate(document, json.loads((REPO / "schemas" / schema).read_text()))
        (warning,) = document["warnings"]
        assert warning["code"] == "W42" and warning["count"] >= 2, warning
        assert "POST /auth/challenge" in warning["endpoints"]
