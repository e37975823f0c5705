"""Grants, the safety stories: lock-out protection, refusals, tokens that lose their backing,
and saved plans edited between review and apply.

ksefctl logs into the company as a person (a PESEL certificate) who holds
CredentialsManage there by grant — the setup where a careless manifest could
revoke the very permission ksefctl needs.  KSeF is read directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ksefctl.testcert import make_personal_certificate
from tests.e2e.conftest import NIPS, World
from tests.sim.permissions_helpers import operate, persons

NIP = NIPS[0]
ADMIN = "15062788702"
ADMIN_PERSON = f'person: {{pesel: "{ADMIN}", firstName: Jan, lastName: Kowalski}}'
AS_ADMIN = '  auth: {certificate: {vault: "ksef-person/{nip}"}}\n'


@pytest.fixture(autouse=True)
def _setup(world: World) -> None:
    world.sim.set_limits(enabled=False)
    certificate, key = make_personal_certificate(pesel=ADMIN)
    world.vault.secrets.kv.v2.create_or_update_secret(
        path=f"ksef-person/{NIP}",
        mount_point=world.bao.mount,
        secret={"certificate": certificate.decode(), "privateKey": key.decode()},
    )


def held(world: World) -> list[tuple[str, str]]:
    session = world.sim.owner_session(NIP)
    with world.sim.client() as api:
        return sorted(
            (g["authorizedIdentifier"]["value"], g["permissionScope"])
            for g in persons(api, session)
        )


def manifest(world: World, grants: str, *, as_admin: bool, tokens: str = "") -> str:
    body = f'contexts:\n  - nip: "{NIP}"\n'
    if as_admin:
        body += "  " + AS_ADMIN
    body += "    grants:" + ("\n" if grants else " []\n")
    body += "".join(f"      {line}\n" for line in grants.splitlines())
    if tokens:
        body += "    tokens:\n" + "".join(f"      {line}\n" for line in tokens.splitlines())
    return str(world.manifest(body))


ADMIN_GRANT = f"""\
- {ADMIN_PERSON}
  permissions: [CredentialsManage, InvoiceRead, InvoiceWrite]
  description: ksefctl admin"""


def admin_in_place(world: World) -> None:
    """The company's owner (seal) grants the admin person, through ksefctl."""
    applied = world.ksefctl(
        "apply", "-f", manifest(world, ADMIN_GRANT, as_admin=False), "--auto-approve"
    )
    assert applied.code == 0, applied
    assert held(world) == [
        (ADMIN, "CredentialsManage"),
        (ADMIN, "InvoiceRead"),
        (ADMIN, "InvoiceWrite"),
    ]


def test_lockout_is_refused_unless_allowed(world: World) -> None:
    admin_in_place(world)
    # Logged in as the admin, a manifest that drops the admin's CredentialsManage.
    path = manifest(
        world,
        f"- {ADMIN_PERSON}\n  permissions: [InvoiceRead, InvoiceWrite]\n  description: ksefctl admin",
        as_admin=True,
    )
    plan = world.ksefctl("plan", "-f", path)
    assert plan.code == 0, plan
    assert "LOCK-OUT: it removes the CredentialsManage ksefctl logs into this context with" in (
        plan.out
    )
    refused = world.ksefctl("apply", "-f", path, "--auto-approve")
    assert refused.code == 1, refused
    lines = [line for line in refused.err.splitlines() if "allow-lockout" in line]
    assert len(lines) == 1, refused.err
    assert "refused revoke of grants" in lines[0]
    assert "nothing done in this context" in lines[0]
    assert len(held(world)) == 3  # nothing changed in KSeF

    allowed = world.ksefctl("apply", "-f", path, "--auto-approve", "--allow-lockout")
    assert allowed.code == 0, allowed
    assert held(world) == [(ADMIN, "InvoiceRead"), (ADMIN, "InvoiceWrite")]


def test_last_credentials_manage_holder_is_kept(world: World) -> None:
    admin_in_place(world)
    # Logged in as the owner: removing the only CredentialsManage grant is a lock-out too.
    path = manifest(world, "", as_admin=False)
    refused = world.ksefctl("apply", "-f", path, "--auto-approve")
    assert refused.code == 1, refused
    assert "the last CredentialsManage holder in this context" in refused.err
    assert len(held(world)) == 3


def test_refused_operation_names_the_ksef_code(world: World) -> None:
    # EnforcementOperations only for a bailiff's context: KSeF ends the operation 430.
    path = manifest(
        world,
        f"- {ADMIN_PERSON}\n  permissions: [EnforcementOperations]",
        as_admin=False,
    )
    applied = world.ksefctl("apply", "-f", path, "--auto-approve")
    assert applied.code == 1, applied
    failure = [line for line in applied.err.splitlines() if "refused [430]" in line]
    assert len(failure) == 1, applied.err
    assert failure[0].startswith(f"Error: Nip:{NIP}")
    assert "1 failed" in applied.out
    assert held(world) == []


def test_token_lost_with_its_authors_permission_is_recreated(world: World) -> None:
    admin_in_place(world)
    path = manifest(
        world,
        ADMIN_GRANT,
        as_admin=True,
        tokens="- name: erp\n  permissions: [InvoiceRead, InvoiceWrite]",
    )
    assert world.ksefctl("apply", "-f", path, "--auto-approve").code == 0
    [token] = world.tokens(NIP)
    assert token["authorIdentifier"] == {"type": "Pesel", "value": ADMIN}

    # Someone takes InvoiceWrite from the admin by hand: KSeF revokes the admin's token.
    owner = world.sim.owner_session(NIP)
    with world.sim.client() as api:
        [write] = [g for g in persons(api, owner) if g["permissionScope"] == "InvoiceWrite"]
        gone = operate(api, owner, "DELETE", f"/permissions/common/grants/{write['id']}")
        assert gone["code"] == 200, gone
    assert world.tokens(NIP) == []

    plan = world.ksefctl("plan", "-f", path)
    assert f"+ create  grant person Pesel:{ADMIN} (Jan Kowalski): InvoiceWrite" in plan.out
    assert "+ create  erp" in plan.out
    # One apply: the grant goes first, so the new token can carry InvoiceWrite.
    applied = world.ksefctl("apply", "-f", path, "--auto-approve")
    assert applied.code == 0, applied
    [fresh] = world.tokens(NIP, ("Active",))
    assert fresh["referenceNumber"] != token["referenceNumber"]
    assert world.secret(NIP, "erp")["data"]["referenceNumber"] == fresh["referenceNumber"]
    assert world.ksefctl("plan", "-f", path, "--detailed-exitcode").code == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("permissions", ["CredentialsManage", "InvoiceRead"]),
        ("subject", "22271569167"),
        ("action", "adopt"),
        ("allow_lockout", True),
        ("description", "other text"),
    ],
)
def test_edited_saved_plan_grant_is_refused(world: World, field: str, value: object) -> None:
    path = manifest(world, f"- {ADMIN_PERSON}\n  permissions: [InvoiceRead]", as_admin=False)
    saved = Path(world.directory) / "grants.plan"
    assert world.ksefctl("plan", "-f", path, "--out", str(saved)).code == 0
    document = json.loads(saved.read_text())
    [change] = document["plan"]["kind_changes"]
    change[field] = value
    saved.write_text(json.dumps(document))
    refused = world.ksefctl("apply", str(saved))
    assert refused.code == 1, refused
    assert "run plan again" in refused.err
    assert held(world) == []
