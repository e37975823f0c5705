"""Stories of plan and apply: changes, drift, crashes and refusals, end to end.

Each story runs the real CLI in-process against the simulator (real HTTP,
contract-checked) and a real OpenBao, and asserts exit codes, what KSeF
lists and what Vault holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import hvac.exceptions
import jsonschema
import pytest

from ksefctl.ksef import Session
from ksefctl.manifest import marker
from ksefctl.vault import VaultStore
from ksefctl.vault.http import VaultHttp
from tests.e2e.conftest import NIPS, World

REPO = Path(__file__).resolve().parents[2]
NIP, NIP2 = NIPS[0], NIPS[1]
UNSEEDED_NIP = "1111111111"  # a valid NIP whose owner certificate is not in Vault

ERP_ONLY = """\
contexts:
  - nip: "{nip}"
    tokens:
      - name: erp
        permissions: [{permissions}]
"""


def erp(nip: str = NIP, permissions: str = "InvoiceRead", extra: str = "") -> str:
    return ERP_ONLY.format(nip=nip, permissions=permissions) + extra


def managed(world: World, nip: str, owner: str = "acme") -> dict[str, dict[str, Any]]:
    """Live tokens of ``owner`` in a context, by reference number."""
    found = {}
    for t in world.tokens(nip):
        mark = marker.decode(t["description"])
        if mark is not None and mark.owner == owner:
            found[t["referenceNumber"]] = t
    return found


def status_of(world: World, nip: str, reference: str) -> str:
    everything = world.tokens(nip, ("Pending", "Active", "Revoking", "Revoked", "Failed"))
    return str(next(t["status"] for t in everything if t["referenceNumber"] == reference))


def metadata(world: World, nip: str, token: str) -> dict[str, Any]:
    response = world.vault.secrets.kv.v2.read_secret_metadata(
        path=f"ksef/sim/{nip}/{token}", mount_point=world.bao.mount
    )
    return dict(response["data"])


def soft_deleted(world: World, nip: str, token: str) -> bool:
    meta = metadata(world, nip, token)
    current = meta["versions"][str(meta["current_version"])]
    return bool(current["deletion_time"]) and not current["destroyed"]


def ok(result: Any, code: int = 0) -> Any:
    assert result.code == code, result
    return result


# -- 2. permission change -------------------------------------------------------


def test_permission_change_replaces_create_before_destroy(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(world.ksefctl("apply", "-f", str(world.manifest(erp())), "--auto-approve"))
    old = world.secret(NIP, "erp")["data"]["referenceNumber"]

    # Record the order of the real calls, without changing them.
    events: list[tuple[str, str]] = []
    write, wait, revoke = VaultStore.write_token, Session.wait_for_status, Session.revoke_token

    async def recording_write(self: VaultStore, ref: Any, **kw: Any) -> int:
        version = await write(self, ref, **kw)
        events.append(("stored", kw["reference_number"]))
        return version

    async def recording_wait(self: Session, reference: str, *a: Any) -> Any:
        info = await wait(self, reference, *a)
        events.append((info.status, reference))
        return info

    async def recording_revoke(self: Session, reference: str) -> None:
        events.append(("revoke", reference))
        await revoke(self, reference)

    monkeypatch.setattr(VaultStore, "write_token", recording_write)
    monkeypatch.setattr(Session, "wait_for_status", recording_wait)
    monkeypatch.setattr(Session, "revoke_token", recording_revoke)

    manifest = world.manifest(erp(permissions="InvoiceRead, InvoiceWrite"))
    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"), 2)
    assert f"~ replace erp  (permissions)  {old}  → [InvoiceRead, InvoiceWrite]" in plan.out
    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve"))

    stored = world.secret(NIP, "erp")
    new = stored["data"]["referenceNumber"]
    assert new != old and stored["metadata"]["version"] == 2
    assert stored["data"]["permissions"] == ["InvoiceRead", "InvoiceWrite"]
    assert events == [("stored", new), ("Active", new), ("revoke", old)]
    assert list(managed(world, NIP)) == [new]
    assert status_of(world, NIP, old) in ("Revoking", "Revoked")
    ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"))


# -- 3. rotation with overlap on a controlled clock -----------------------------


def test_rotation_due_keeps_the_predecessor_for_its_overlap(world: World) -> None:
    manifest = world.manifest(erp(extra="        rotateEvery: 30d\n        overlap: 2d\n"))
    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve"))
    first = world.secret(NIP, "erp")["data"]["referenceNumber"]

    def advance(days: float) -> str:
        now: str = world.sim.admin("POST", "/clock", {"advanceSeconds": days * 86400})["now"]
        return now

    now = advance(29)
    ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode", "--now", now))

    now = advance(2)  # day 31: rotation due
    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode", "--now", now), 2)
    assert f"~ replace erp  (rotation due)  {first}  kept until" in plan.out
    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve", "--now", now))
    second = world.secret(NIP, "erp")["data"]["referenceNumber"]
    assert second != first
    assert set(managed(world, NIP)) == {first, second}  # both serve during the overlap

    now = advance(1)  # inside the overlap: nothing to do, the predecessor is shown as kept
    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode", "--now", now))
    assert f"keeping {first} until" in plan.out

    now = advance(1.5)  # overlap over
    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode", "--now", now), 2)
    assert f"- revoke  erp  (overlap ended)  {first}" in plan.out
    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve", "--now", now))
    assert list(managed(world, NIP)) == [second]
    assert world.secret(NIP, "erp")["data"]["referenceNumber"] == second
    ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode", "--now", now))


# -- 4. removal from the manifest, and --prune ----------------------------------


def test_token_removed_from_manifest_is_revoked_and_its_secret_soft_deleted(
    world: World,
) -> None:
    both = erp(extra="      - name: bi\n        permissions: [InvoiceRead]\n")
    ok(world.ksefctl("apply", "-f", str(world.manifest(both)), "--auto-approve"))
    bi = world.secret(NIP, "bi")["data"]["referenceNumber"]

    manifest = world.manifest(erp())
    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"), 2)
    assert f"- revoke  bi  (no longer declared)  {bi}  and delete" in plan.out
    applied = ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve"))
    assert "1 revoked" in applied.out

    assert status_of(world, NIP, bi) in ("Revoking", "Revoked")
    assert soft_deleted(world, NIP, "bi")
    assert metadata(world, NIP, "bi")["custom_metadata"]["deletedReason"] == "no longer declared"
    assert world.secret(NIP, "erp")["data"]["token"]  # the declared one is untouched
    ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"))


def test_prune_cleans_a_context_that_left_the_manifest(world: World) -> None:
    both = (
        erp()
        + f'  - nip: "{NIP2}"\n    tokens:\n      - name: erp\n        permissions: [InvoiceRead]\n'
    )
    manifest = world.manifest(both)
    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve"))
    gone = world.secret(NIP2, "erp")["data"]["referenceNumber"]
    # A run narrowed to one context never mistakes the others for vanished ones.
    ok(world.ksefctl("plan", "-f", str(manifest), "--prune", "--nip", NIP, "--detailed-exitcode"))

    manifest = world.manifest(erp())
    ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"))  # without --prune
    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--prune", "--detailed-exitcode"), 2)
    assert f"Nip:{NIP2} (owner acme)" in plan.out
    assert f"- revoke  erp  (pruned)  {gone}" in plan.out
    ok(world.ksefctl("apply", "-f", str(manifest), "--prune", "--auto-approve"))

    assert not managed(world, NIP2)
    assert soft_deleted(world, NIP2, "erp")
    assert world.secret(NIP, "erp")["data"]["token"]
    ok(world.ksefctl("plan", "-f", str(manifest), "--prune", "--detailed-exitcode"))


def test_prune_deletes_the_secret_of_a_token_already_revoked_by_hand(world: World) -> None:
    both = (
        erp()
        + f'  - nip: "{NIP2}"\n    tokens:\n      - name: erp\n        permissions: [InvoiceRead]\n'
    )
    ok(world.ksefctl("apply", "-f", str(world.manifest(both)), "--auto-approve"))
    gone = world.secret(NIP2, "erp")["data"]["referenceNumber"]
    owner = world.sim.owner_session(NIP2)
    assert world.sim.client().delete(f"/tokens/{gone}", headers=owner.headers).status_code == 204

    manifest = world.manifest(erp())
    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--prune", "--detailed-exitcode"), 2)
    assert f"- revoke  erp  (token gone)  delete {world.bao.mount}/ksef/sim/{NIP2}/erp only" in (
        plan.out
    )
    ok(world.ksefctl("apply", "-f", str(manifest), "--prune", "--auto-approve"))
    assert soft_deleted(world, NIP2, "erp")
    assert metadata(world, NIP2, "erp")["custom_metadata"]["deletedReason"] == "token gone"
    # Nothing of the owner is left there: the next runs neither change nor visit it.
    again = ok(world.ksefctl("plan", "-f", str(manifest), "--prune", "--detailed-exitcode"))
    assert NIP2 not in again.out


def test_prune_deletes_the_secret_of_an_undeclared_token_already_gone(world: World) -> None:
    both = erp(extra="      - name: bi\n        permissions: [InvoiceRead]\n")
    ok(world.ksefctl("apply", "-f", str(world.manifest(both)), "--auto-approve"))
    bi = world.secret(NIP, "bi")["data"]["referenceNumber"]
    owner = world.sim.owner_session(NIP)
    assert world.sim.client().delete(f"/tokens/{bi}", headers=owner.headers).status_code == 204

    manifest = world.manifest(erp())  # bi no longer declared, and already revoked by hand
    ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"))  # unseen without --prune
    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--prune", "--detailed-exitcode"), 2)
    assert f"- revoke  bi  (token gone)  delete {world.bao.mount}/ksef/sim/{NIP}/bi only" in (
        plan.out
    )
    ok(world.ksefctl("apply", "-f", str(manifest), "--prune", "--auto-approve"))
    assert soft_deleted(world, NIP, "bi")
    assert world.secret(NIP, "erp")["data"]["token"]  # the declared one is untouched
    ok(world.ksefctl("plan", "-f", str(manifest), "--prune", "--detailed-exitcode"))


# -- 5. drift made by hand ------------------------------------------------------


def test_secret_deleted_by_hand_is_replaced(world: World) -> None:
    manifest = world.manifest(erp())
    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve"))
    old = world.secret(NIP, "erp")["data"]["referenceNumber"]
    world.vault.secrets.kv.v2.delete_latest_version_of_secret(
        path=f"ksef/sim/{NIP}/erp", mount_point=world.bao.mount
    )

    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"), 2)
    assert f"~ replace erp  (secret missing)  {old}" in plan.out
    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve"))
    stored = world.secret(NIP, "erp")["data"]
    assert stored["referenceNumber"] != old
    assert list(managed(world, NIP)) == [stored["referenceNumber"]]
    world.sim.login_with_token(stored["token"], ("Nip", NIP))


def test_token_revoked_by_hand_in_ksef_is_recreated(world: World) -> None:
    manifest = world.manifest(erp())
    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve"))
    old = world.secret(NIP, "erp")["data"]["referenceNumber"]
    with world.sim.client(world.sim.owner_session(NIP).headers) as http:
        assert http.delete(f"/tokens/{old}").status_code == 204

    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"), 2)
    assert "+ create  erp" in plan.out
    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve"))
    stored = world.secret(NIP, "erp")
    assert stored["data"]["referenceNumber"] != old and stored["metadata"]["version"] == 2
    assert list(managed(world, NIP)) == [stored["data"]["referenceNumber"]]


# -- 6. hand-made tokens --------------------------------------------------------


def test_hand_made_token_is_untouched_and_reported_only_with_adopt(world: World) -> None:
    handmade = world.sim.mint_token(NIP, ["InvoiceRead"], description="made in the web app")
    manifest = world.manifest(erp())

    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"), 2)
    assert handmade.reference_number not in plan.out and "+ create  erp" in plan.out
    adopt = ok(world.ksefctl("plan", "-f", str(manifest), "--adopt", "--detailed-exitcode"), 2)
    assert f"! adopt   erp  (hand-made {handmade.reference_number})" in adopt.out

    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve"))
    assert status_of(world, NIP, handmade.reference_number) == "Active"
    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"))
    assert handmade.reference_number not in plan.out
    adopt = ok(world.ksefctl("plan", "-f", str(manifest), "--adopt", "--detailed-exitcode"))
    assert f"not managed: {handmade.reference_number}" in adopt.out


# -- 7. a crash between POST /tokens and the Vault write ------------------------


def test_crash_before_the_vault_write_converges_on_the_next_apply(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = world.manifest(erp())

    async def killed(self: VaultStore, ref: Any, **kw: Any) -> int:
        raise KeyboardInterrupt  # the process dies with the token's value in memory only

    with monkeypatch.context() as patch:
        patch.setattr(VaultStore, "write_token", killed)
        crashed = world.ksefctl("apply", "-f", str(manifest), "--auto-approve")
    assert crashed.code == 130, crashed
    (orphan,) = managed(world, NIP)
    with pytest.raises(hvac.exceptions.InvalidPath):
        world.secret(NIP, "erp")

    plan = ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"), 2)
    assert f"~ replace erp  (secret missing)  {orphan}" in plan.out
    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve"))
    stored = world.secret(NIP, "erp")["data"]
    assert list(managed(world, NIP)) == [stored["referenceNumber"]] != [orphan]
    ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"))


# -- 8. Vault refuses the write -------------------------------------------------


def test_cas_conflict_revokes_the_new_token(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = world.manifest(erp())
    write = VaultStore.write_token

    async def raced(self: VaultStore, ref: Any, **kw: Any) -> int:
        # Another writer gets there between our observation and our write.
        world.vault.secrets.kv.v2.create_or_update_secret(
            path=ref.path, mount_point=ref.mount, secret={"note": "written by someone else"}
        )
        return await write(self, ref, **kw)

    monkeypatch.setattr(VaultStore, "write_token", raced)
    applied = world.ksefctl("apply", "-f", str(manifest), "--auto-approve")
    assert applied.code == 1, applied
    assert "could not store the new token in Vault" in applied.err and "revoked it" in applied.err
    assert "1 failed" in applied.out
    assert not managed(world, NIP)  # the new token did not survive
    assert world.secret(NIP, "erp")["data"] == {"note": "written by someone else"}


def test_vault_down_during_the_write_revokes_the_new_token(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = world.manifest(erp(extra="      - name: bi\n        permissions: [InvoiceRead]\n"))
    request = VaultHttp.request

    async def unreachable(self: VaultHttp, method: str, path: str, **kw: Any) -> Any:
        if method == "POST" and "/data/" in path and path.endswith("/erp"):
            raise aiohttp.ServerDisconnectedError()
        return await request(self, method, path, **kw)

    monkeypatch.setattr(VaultHttp, "request", unreachable)
    applied = world.ksefctl("apply", "-f", str(manifest), "--auto-approve")
    assert applied.code == 1, applied
    assert "erp" in applied.err and "revoked it" in applied.err
    assert "1 created" in applied.out and "1 failed" in applied.out
    (bi,) = managed(world, NIP)  # only the token whose secret was stored lives
    assert world.secret(NIP, "bi")["data"]["referenceNumber"] == bi
    with pytest.raises(hvac.exceptions.InvalidPath):
        world.secret(NIP, "erp")


# -- 9. saved plans -------------------------------------------------------------


def test_stale_saved_plan_is_refused_and_a_fresh_one_applies_exactly(world: World) -> None:
    manifest = world.manifest(erp())
    stale, fresh = world.directory / "stale.plan", world.directory / "fresh.plan"
    ok(world.ksefctl("plan", "-f", str(manifest), "--out", str(stale)))
    world.sim.mint_token(NIP, ["InvoiceRead"], description="someone changed KSeF meanwhile")

    refused = world.ksefctl("apply", str(stale))
    assert refused.code == 1 and "changed since" in refused.err, refused
    assert not managed(world, NIP)

    ok(world.ksefctl("plan", "-f", str(manifest), "--out", str(fresh)))
    applied = ok(world.ksefctl("apply", str(fresh)))  # a reviewed plan needs no prompt
    assert "Apply complete: 1 created, 0 replaced, 0 revoked." in applied.out
    assert list(managed(world, NIP)) == [world.secret(NIP, "erp")["data"]["referenceNumber"]]
    refused = world.ksefctl("apply", str(fresh))  # applied once; the world moved on
    assert refused.code == 1 and "changed since" in refused.err, refused


# -- 10. two owners in one context ----------------------------------------------


def test_two_owners_in_one_context_leave_each_other_alone(world: World) -> None:
    acme = world.manifest(erp(), name="acme.yaml", owner="acme")
    beta_tokens = erp().replace("erp", "bi")
    beta = world.manifest(beta_tokens, name="beta.yaml", owner="beta")
    ok(world.ksefctl("apply", "-f", str(acme), "-f", str(beta), "--auto-approve"))
    (acme_token,) = managed(world, NIP, "acme")
    (beta_token,) = managed(world, NIP, "beta")

    # beta drops its token; acme's is neither planned nor touched.
    beta = world.manifest(f'contexts:\n  - nip: "{NIP}"\n    tokens: []\n', "beta.yaml", "beta")
    plan = ok(world.ksefctl("plan", "-f", str(beta), "--detailed-exitcode", "--adopt"), 2)
    assert acme_token not in plan.out.replace(f"not managed: {acme_token}", "")
    ok(world.ksefctl("apply", "-f", str(beta), "--auto-approve"))
    assert not managed(world, NIP, "beta")
    assert status_of(world, NIP, beta_token) in ("Revoking", "Revoked")
    assert list(managed(world, NIP, "acme")) == [acme_token]
    ok(world.ksefctl("plan", "-f", str(acme), "--detailed-exitcode"))


# -- refusals and failures ------------------------------------------------------


def test_apply_without_terminal_or_auto_approve_refuses(world: World) -> None:
    refused = world.ksefctl("apply", "-f", str(world.manifest(erp())))
    assert refused.code == 1 and "--auto-approve" in refused.err, refused
    assert not managed(world, NIP)


def test_one_failing_context_does_not_stop_the_others(world: World) -> None:
    body = erp() + f'  - nip: "{UNSEEDED_NIP}"\n'
    manifest = world.manifest(body)
    plan = world.ksefctl("plan", "-f", str(manifest), "--json")
    assert plan.code == 1, plan
    document = json.loads(plan.out)
    schema = json.loads((REPO / "schemas" / "plan.v1.json").read_text())
    jsonschema.validate(document, schema)
    assert [f["context"] for f in document["failures"]] == [f"Nip:{UNSEEDED_NIP}"]
    assert document["summary"]["create"] == 1

    applied = world.ksefctl("apply", "-f", str(manifest), "--auto-approve")
    assert applied.code == 1, applied
    assert f"Nip:{UNSEEDED_NIP} (acme): login failed" in applied.err
    assert "Apply complete: 1 created, 0 replaced, 0 revoked, 1 failed." in applied.out
    assert world.secret(NIP, "erp")["data"]["token"]


def test_unreachable_vault_is_one_line(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    result = world.ksefctl("plan", "-f", str(world.manifest(erp())))
    assert result.code == 1, result
    assert len(result.err.strip().splitlines()) == 1, result
    assert result.err.startswith("Error: ") and "127.0.0.1:9" in result.err
    assert "Traceback" not in result.err


def test_no_op_plan_makes_at_most_six_requests_per_context(world: World) -> None:
    body = (
        erp()
        + f'  - nip: "{NIP2}"\n    tokens:\n      - name: erp\n        permissions: [InvoiceRead]\n'
    )
    manifest = world.manifest(body)
    ok(world.ksefctl("apply", "-f", str(manifest), "--auto-approve"))
    world.sim.admin("POST", "/stats/reset")
    ok(world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode"))
    requests_sent = world.sim.stats()["requests"]
    total = sum(n for endpoint, n in requests_sent.items() if " /v2/" in endpoint)
    assert total <= 6 * 2, requests_sent
    assert not any("rate-limits" in endpoint for endpoint in requests_sent), requests_sent


# Stories run several applies within a minute in one context; the client
# paces itself per run, and KSeF's per-minute window across runs is not
# what these stories are about.
pytestmark = pytest.mark.usefixtures("roomy_limits")
