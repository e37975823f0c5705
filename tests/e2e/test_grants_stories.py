"""Grants as code, end to end: the real CLI against the simulator (real HTTP) and OpenBao.

Given a manifest with person and entity grants in several companies, when
apply runs, then KSeF lists exactly those grants with ksefctl's marker; a
second plan is a no-op; changing, removing and letting grants expire
revokes what must go; a hand-made grant is left alone and reported until
``--adopt`` takes it over.  KSeF is read directly (raw HTTP as each
company's owner), not through ksefctl.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.e2e.conftest import NIPS, World
from tests.sim.permissions_helpers import grant_persons, persons

NIP, NIP2, NIP3 = NIPS
STATUS_SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "status.v1.json").read_text()
)
PESEL = "15062788702"
OTHER_PESEL = "22271569167"
OFFICE = "5260181596"

ANNA = f"""person: {{pesel: "{PESEL}", firstName: Anna, lastName: Kowalska}}"""
BIURO = f"""entity: {{nip: "{OFFICE}", name: "Biuro Rachunkowe Sp. z o.o."}}"""


pytestmark = pytest.mark.usefixtures("roomy_limits")


def held(world: World, nip: str) -> list[tuple[str, str, str, bool, str]]:
    """(subject, permission, description, canDelegate, kind) of every grant in the context."""
    session = world.sim.owner_session(nip)
    with world.sim.client() as api:
        found = persons(api, session)
        auths = api.post(
            "/permissions/query/authorizations/grants",
            headers=session.headers,
            params={"pageSize": 100},
            json={"queryType": "Granted"},
        ).json()["authorizationGrants"]
    rows = [
        (
            f"{g['authorizedIdentifier']['type']}:{g['authorizedIdentifier']['value']}",
            g["permissionScope"],
            g["description"],
            g["canDelegate"],
            "entity" if "subjectEntityDetails" in g else "person",
        )
        for g in found
    ]
    rows += [
        (
            f"{a['authorizedEntityIdentifier']['type']}:{a['authorizedEntityIdentifier']['value']}",
            a["authorizationScope"],
            a["description"],
            False,
            "authorization",
        )
        for a in auths
    ]
    return sorted(rows)


def manifest(world: World, contexts: str, defaults: str = "") -> str:
    body = "permissionSets:\n  books: [InvoiceRead, InvoiceWrite]\n"
    if defaults:
        body += "defaults:\n  grants:\n" + _indent(defaults, 4)
    body += "contexts:\n" + _indent(contexts, 2)
    return str(world.manifest(body))


def _indent(text: str, width: int) -> str:
    return "".join(" " * width + line + "\n" for line in text.strip("\n").splitlines())


def test_grant_no_op_change_remove_expire(world: World) -> None:
    path = manifest(
        world,
        f"""\
- nip: "{NIP}"
- nip: "{NIP2}"
  grants:
    - {BIURO}
      permissions: [InvoiceRead]
      canDelegate: true
      authorizations: [SelfInvoicing]
- nip: "{NIP3}"
  inheritDefaults: false
""",
        defaults=f"""\
- {ANNA}
  permissionSet: books
  description: Anna, bookkeeping
""",
    )
    plan = world.ksefctl("plan", "-f", path, "--detailed-exitcode")
    assert plan.code == 2, plan
    assert f"+ create  grant person Pesel:{PESEL} (Anna Kowalska): InvoiceRead, InvoiceWrite" in (
        plan.out
    )
    assert (
        f"+ create  grant entity Nip:{OFFICE} (Biuro Rachunkowe Sp. z o.o.): InvoiceRead (canDelegate)"
        in plan.out
    )
    applied = world.ksefctl("apply", "-f", path, "--auto-approve")
    assert applied.code == 0, applied
    marker = "[ksefctl owner=acme grant]"
    anna = [
        (f"Pesel:{PESEL}", p, f"Anna, bookkeeping {marker}", False, "person")
        for p in ("InvoiceRead", "InvoiceWrite")
    ]
    assert held(world, NIP) == anna
    assert held(world, NIP2) == sorted(
        [
            *anna,
            (f"Nip:{OFFICE}", "InvoiceRead", marker, True, "entity"),
            (f"Nip:{OFFICE}", "SelfInvoicing", marker, False, "authorization"),
        ]
    )
    assert held(world, NIP3) == []  # no grants section reaches it: not governed

    again = world.ksefctl("plan", "-f", path, "--detailed-exitcode")
    assert again.code == 0, again
    assert "No changes" in again.out

    # Anna only reads now; the office loses its authorization; all expire in NIP.
    path = manifest(
        world,
        f"""\
- nip: "{NIP}"
  grants:
    - {ANNA}
      permissions: [InvoiceRead]
      description: Anna, bookkeeping
      expires: "2030-01-31"
- nip: "{NIP2}"
  grants:
    - {BIURO}
      permissions: [InvoiceRead]
      canDelegate: true
""",
        defaults=f"""\
- {ANNA}
  permissions: [InvoiceRead]
  description: Anna, bookkeeping
""",
    )
    changed = world.ksefctl("plan", "-f", path, "--json")
    assert changed.code == 0, changed
    document = json.loads(changed.out)
    reasons = sorted(
        (c["context"], c["action"], c["name"], c["reason"], tuple(c["revoke_permissions"]))
        for c in document["kind_changes"]
    )
    assert reasons == [
        (f"Nip:{NIP}", "revoke", f"person Pesel:{PESEL}", "permissions changed", ("InvoiceWrite",)),
        (f"Nip:{NIP2}", "revoke", f"authorization Nip:{OFFICE}", "no longer declared",
         ("SelfInvoicing",)),
        (f"Nip:{NIP2}", "revoke", f"person Pesel:{PESEL}", "permissions changed",
         ("InvoiceWrite",)),
    ]  # fmt: skip
    assert world.ksefctl("apply", "-f", path, "--auto-approve").code == 0
    assert held(world, NIP) == [anna[0]]
    assert [row[1] for row in held(world, NIP2)] == ["InvoiceRead", "InvoiceRead"]

    # The day after `expires`, Anna's grant in NIP is revoked (ksefctl's clock: --now).
    later = "2030-02-01T08:00:00Z"
    expired = world.ksefctl("apply", "-f", path, "--auto-approve", "--now", later)
    assert expired.code == 0, expired
    assert f"- revoke  grant person Pesel:{PESEL}: InvoiceRead (expired)" in expired.out
    assert held(world, NIP) == []
    assert world.ksefctl("plan", "-f", path, "--detailed-exitcode", "--now", later).code == 0


def test_hand_made_grant_is_reported_then_adopted(world: World) -> None:
    owner = world.sim.owner_session(NIP)
    with world.sim.client() as api:
        assert grant_persons(api, owner, ("Pesel", OTHER_PESEL), ["InvoiceRead"])["code"] == 200
        assert grant_persons(api, owner, ("Pesel", PESEL), ["InvoiceRead"])["code"] == 200
    path = manifest(
        world,
        f"""\
- nip: "{NIP}"
  grants:
    - {ANNA}
      permissionSet: books
""",
    )
    plan = world.ksefctl("plan", "-f", path)
    assert plan.code == 0, plan
    # Anna's InvoiceRead is held by hand: only InvoiceWrite is granted, the rest reported.
    assert f"grant person Pesel:{PESEL} (Anna Kowalska): InvoiceWrite" in plan.out
    assert f"unmanaged grant person Pesel:{OTHER_PESEL} (Anna Testowa): InvoiceRead (hand-made" in (
        plan.out
    )
    assert (
        f"unmanaged grant person Pesel:{PESEL} (Anna Testowa): InvoiceRead (hand-made" in plan.out
    )
    assert world.ksefctl("apply", "-f", path, "--auto-approve").code == 0
    before = held(world, NIP)
    assert (f"Pesel:{OTHER_PESEL}", "InvoiceRead", "grant for a test", False, "person") in before

    adopt = world.ksefctl("apply", "-f", path, "--auto-approve", "--adopt")
    assert adopt.code == 0, adopt
    assert f"! adopt   grant person Pesel:{PESEL} (Anna Kowalska): InvoiceRead (hand-made)" in (
        adopt.out
    )
    marker = "[ksefctl owner=acme grant]"
    assert held(world, NIP) == sorted(
        [
            (f"Pesel:{OTHER_PESEL}", "InvoiceRead", "grant for a test", False, "person"),
            (f"Pesel:{PESEL}", "InvoiceRead", marker, False, "person"),
            (f"Pesel:{PESEL}", "InvoiceWrite", marker, False, "person"),
        ]
    )
    # The other hand-made grant is still only reported; status --grants lists everyone.
    status = world.ksefctl("status", "-f", path, "--grants", "--json")
    assert status.code == 0, status
    document = json.loads(status.out)
    jsonschema.validate(document, STATUS_SCHEMA)
    rows = document["grants"]
    assert {(r["subject"], r["permission"], r["managed"]) for r in rows} == {
        (f"Pesel:{OTHER_PESEL}", "InvoiceRead", False),
        (f"Pesel:{PESEL}", "InvoiceRead", True),
        (f"Pesel:{PESEL}", "InvoiceWrite", True),
    }
    text = world.ksefctl("status", "-f", path, "--grants")
    assert f"person Pesel:{OTHER_PESEL}  Anna Testowa   InvoiceRead" in text.out
    assert "Grants: 3 in 1 contexts (2 managed, 1 not)." in text.out
