"""``apply --json``: one document with the plan, each change's outcome and the failures."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.conftest import REPO
from tests.e2e.conftest import NIPS, World

SCHEMA = json.loads((REPO / "schemas" / "apply.v1.json").read_text())
PLAN_SCHEMA = json.loads((REPO / "schemas" / "plan.v1.json").read_text())
BODY = f"""\
contexts:
  - nip: "{NIPS[0]}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
  - nip: "1111111111"
"""


@pytest.fixture(autouse=True)
def _no_server_side_limits(world: World) -> None:
    world.sim.set_limits(enabled=False)


def test_apply_json_reports_outcomes_and_failures(world: World) -> None:
    result = world.ksefctl("apply", "-f", str(world.manifest(BODY)), "--auto-approve", "--json")
    assert result.code == 1, result  # the unseeded context cannot log in
    document = json.loads(result.out)
    jsonschema.validate(document, SCHEMA)
    jsonschema.validate(document["plan"], PLAN_SCHEMA)
    (outcome,) = document["outcomes"]
    assert outcome["kind"] == "token" and outcome["action"] == "create" and outcome["ok"]
    assert outcome["context"] == f"Nip:{NIPS[0]}" and outcome["name"] == "erp"
    assert [f["context"] for f in document["failures"]] == ["Nip:1111111111"]
    assert document["summary"] == {"done": 1, "failed": 1, "ok": False}
    assert world.secret(NIPS[0], "erp")["data"]["token"] not in result.out


def test_apply_json_without_approval_is_refused(world: World) -> None:
    refused = world.ksefctl("apply", "-f", str(world.manifest(BODY)), "--json")
    assert refused.code == 1 and "--auto-approve" in refused.err, refused
