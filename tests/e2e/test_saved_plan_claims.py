"""A saved plan is a claim, not an order (SPEC principle 7).

Given a reviewed plan with a create, a replace (with overlap) and a revoke,
when someone edits the file between review and ``apply`` — any field of any
change, a change added, removed or moved to another context or owner — then
``apply`` refuses with one line that says "run plan again", and nothing
changes in KSeF or in Vault.  "Nothing changes" is checked by reading KSeF
(raw HTTP to the simulator) and Vault (hvac) directly, not through ksefctl.
The untouched plan then applies, so the refusals are not a blanket "no".
"""

from __future__ import annotations

import copy
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.world import NIPS, World, settled

NIP, NIP2, NIP3 = NIPS
Edit = Callable[[dict[str, Any]], None]

BEFORE = f"""\
contexts:
  - nip: "{NIP}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
        overlap: 1d
      - name: old
        permissions: [InvoiceRead]
  - nip: "{NIP2}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
"""

AFTER = f"""\
contexts:
  - nip: "{NIP}"
    tokens:
      - name: erp
        permissions: [InvoiceRead, InvoiceWrite]
        overlap: 1d
  - nip: "{NIP2}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
      - name: bi
        permissions: [InvoiceRead]
        description: BI read-only
"""


pytestmark = pytest.mark.usefixtures("roomy_limits")


def change(document: dict[str, Any], action: str, nip: str) -> dict[str, Any]:
    found = [
        c
        for c in document["plan"]["changes"]
        if c["action"] == action and c["context"] == f"Nip:{nip}"
    ]
    assert len(found) == 1, document["plan"]["changes"]
    return found[0]


def creation(d: dict[str, Any]) -> dict[str, Any]:
    return change(d, "create", NIP2)


def replacement(d: dict[str, Any]) -> dict[str, Any]:
    return change(d, "replace", NIP)


def revocation(d: dict[str, Any]) -> dict[str, Any]:
    return change(d, "revoke", NIP)


def set_field(pick: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        pick(document)[key] = value

    return edit


def add(new: Callable[[dict[str, Any], World], dict[str, Any]]) -> Callable[[World], Edit]:
    def bind(world: World) -> Edit:
        def edit(document: dict[str, Any]) -> None:
            document["plan"]["changes"].append(new(document, world))

        return edit

    return bind


def forged_revoke(context_nip: str, reference: str, secret_path: str) -> dict[str, Any]:
    return {
        "action": "revoke",
        "owner": "acme",
        "context": f"Nip:{context_nip}",
        "token": "erp",
        "reason": "no longer declared",
        "reference_number": reference,
        "permissions": [],
        "description": "",
        "secret": {"mount": "MOUNT", "path": secret_path},
        "delete_secret": True,
        "keep_until": None,
        "policy_digest": "",
    }


def _handmade_with_login_material(document: dict[str, Any], world: World) -> dict[str, Any]:
    handmade = next(
        t["referenceNumber"] for t in world.tokens(NIP) if "made by hand" in t["description"]
    )
    forged = forged_revoke(NIP, handmade, f"ksef-admin/{NIP}")
    forged["secret"]["mount"] = world.bao.mount
    return forged


def _other_contexts_held_token(document: dict[str, Any], world: World) -> dict[str, Any]:
    held = world.secret(NIP2, "erp")["data"]["referenceNumber"]
    forged = forged_revoke(NIP2, held, f"ksef/sim/{NIP2}/erp")
    forged["secret"]["mount"] = world.bao.mount
    return forged


def _remove_creation(document: dict[str, Any]) -> None:
    document["plan"]["changes"].remove(creation(document))


def _move(key: str, value: str) -> Edit:
    return set_field(creation, key, value)


def _future(document: dict[str, Any]) -> None:
    document["plan"]["created_at"] = "2099-01-01T00:00:00Z"


EDITS: dict[str, Edit | Callable[[World], Edit]] = {
    "action": set_field(creation, "action", "adopt"),
    "owner": set_field(replacement, "owner", "beta"),
    "context": set_field(creation, "context", f"Nip:{NIP3}"),
    "token": set_field(creation, "token", "bi2"),
    "reference_number": set_field(replacement, "reference_number", "20250101-EE-0000000000-00"),
    "permissions": set_field(creation, "permissions", ["InvoiceRead", "CredentialsManage"]),
    "description": set_field(creation, "description", "innocent"),
    "secret mount": set_field(revocation, "secret", {"mount": "secret", "path": "ksef/x"}),
    "secret path": set_field(
        revocation, "secret", {"mount": "MOUNT", "path": f"ksef/sim/{NIP}/erp"}
    ),
    "delete_secret": set_field(revocation, "delete_secret", False),
    "keep_until": set_field(replacement, "keep_until", None),
    "policy_digest": set_field(revocation, "policy_digest", "0" * 64),
    "reason": set_field(revocation, "reason", "unused 400 days"),
    "added: hand-made token and login material": add(_handmade_with_login_material),
    "added: another context's held token": add(_other_contexts_held_token),
    "removed change": _remove_creation,
    "moved to another context": _move("context", f"Nip:{NIP3}"),
    "moved to another owner": _move("owner", "beta"),
    "created in the future": _future,
}


@pytest.fixture
def reviewed(world: World) -> tuple[Path, dict[str, Any]]:
    manifest = world.manifest(BEFORE)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    world.sim.mint_token(NIP, ["InvoiceRead"], description="made by hand in the web app")
    manifest = world.manifest(AFTER)
    saved = world.directory / "reviewed.plan"
    made = world.ksefctl("plan", "-f", str(manifest), "--out", str(saved))
    assert made.code == 0, made
    document = json.loads(saved.read_text())
    assert sorted(c["action"] for c in document["plan"]["changes"]) == [
        "create",
        "replace",
        "revoke",
    ]
    assert replacement(document)["keep_until"] is not None
    return saved, document


@pytest.mark.parametrize("what", list(EDITS))
def test_an_edited_plan_is_refused_and_nothing_changes(
    world: World, reviewed: tuple[Path, dict[str, Any]], what: str
) -> None:
    _, document = reviewed
    edit = EDITS[what]
    if what.startswith("added"):
        edit = edit(world)  # type: ignore[call-arg]
    tampered = copy.deepcopy(document)
    edit(tampered)  # type: ignore[call-arg]
    text = json.dumps(tampered).replace('"MOUNT"', json.dumps(world.bao.mount))
    assert text != json.dumps(document)
    forged = world.directory / "forged.plan"
    forged.write_text(text)
    before = settled(world)

    refused = world.ksefctl("apply", str(forged), "--auto-approve")

    assert refused.code == 1, refused
    assert "run plan again" in refused.err, refused
    assert "Traceback" not in refused.err
    assert len(refused.err.strip().splitlines()) == 1, refused
    assert settled(world) == before


def test_the_issue_story_on_a_converged_manifest(world: World) -> None:
    """plan --out on a converged manifest, a forged revoke added: refused, nothing done."""
    manifest = world.manifest(BEFORE)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    world.sim.mint_token(NIP, ["InvoiceRead"], description="made by hand in the web app")
    saved = world.directory / "empty.plan"
    assert world.ksefctl("plan", "-f", str(manifest), "--out", str(saved)).code == 0
    document = json.loads(saved.read_text())
    assert document["plan"]["changes"] == []
    for forge in (_handmade_with_login_material, _other_contexts_held_token):
        tampered = copy.deepcopy(document)
        tampered["plan"]["changes"].append(forge(tampered, world))
        saved.write_text(json.dumps(tampered))
        before = settled(world)
        refused = world.ksefctl("apply", str(saved), "--auto-approve")
        assert refused.code == 1 and "is not in a fresh plan" in refused.err, refused
        assert settled(world) == before
    assert world.vault.secrets.kv.v2.read_secret_version(
        path=f"ksef-admin/{NIP}", mount_point=world.bao.mount, raise_on_deleted_version=True
    )["data"]["data"]["privateKey"]


def test_the_reviewed_plan_applies_and_its_file_is_private(
    world: World, reviewed: tuple[Path, dict[str, Any]]
) -> None:
    saved, _ = reviewed
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    text = saved.read_text()
    for nip in (NIP, NIP2):
        assert world.secret(nip, "erp")["data"]["token"] not in text

    applied = world.ksefctl("apply", str(saved))
    assert applied.code == 0, applied
    assert "Apply complete: 1 created, 1 replaced, 1 revoked." in applied.out
    assert world.secret(NIP2, "bi")["data"]["token"]


def test_a_saved_plan_applies_from_another_directory(
    world: World, reviewed: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    saved, _ = reviewed
    elsewhere = world.directory / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert world.ksefctl("apply", str(saved)).code == 0


def test_a_plan_of_stdin_cannot_be_saved(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    body = world.manifest(BEFORE).read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO(body))
    refused = world.ksefctl("plan", "-f", "-", "--out", str(world.directory / "p.plan"))
    assert refused.code == 1 and "stdin" in refused.err, refused
    assert not (world.directory / "p.plan").exists()
