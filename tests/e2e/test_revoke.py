"""Stories of ``ksefctl revoke``: break-glass after a leak."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime, timedelta

import hvac
import pytest

from ksefctl.ksef.pacing import WindowLimits, minimum_duration
from ksefctl.manifest import marker
from ksefctl.manifest.model import Marker
from tests.support.world import NIPS, World
from tests.support.world import log_in_as_stranger as _log_in_as_stranger
from tests.support.world import metadata as _metadata
from tests.support.world import statuses as _statuses

NIP = NIPS[0]

# These stories check the tests' own view of KSeF often; only the 30-token
# story below runs (and is checked) at limits of its own.
pytestmark = pytest.mark.usefixtures("roomy_limits")


MANIFEST = """\
contexts:
  - nip: "5265877635"
    tokens:
      - name: erp
        permissions: [InvoiceRead, InvoiceWrite]
      - name: reader
        permissions: [InvoiceRead]
"""


def _no_terminal(monkeypatch: pytest.MonkeyPatch, answer: str | None = None) -> None:
    stdin = io.StringIO(answer or "")
    if answer is not None:
        stdin.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stdin", stdin)


def test_revoke_one_token_soft_deletes_its_secret_and_apply_issues_a_new_one(
    world: World,
) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    leaked = world.secret(NIP, "erp")["data"]["referenceNumber"]
    reader = world.secret(NIP, "reader")["data"]["referenceNumber"]

    result = world.ksefctl(
        "revoke", "-f", str(manifest), "--nip", NIP, "--token", "erp", "--reason", "leaked in CI"
    )
    assert result.code == 0, result
    assert f"Nip:{NIP} (acme): erp: Revoked" in result.out
    assert "Revoked 1 of 1 tokens." in result.out
    assert _statuses(world)[leaked] == "Revoked"
    assert _statuses(world)[reader] == "Active"
    with pytest.raises(hvac.exceptions.InvalidPath):
        world.secret(NIP, "erp")  # soft-deleted: the current version is gone
    custom = _metadata(world, NIP, "erp")["custom_metadata"]
    assert custom["deletedReason"] == "break-glass: leaked in CI"
    assert world.secret(NIP, "reader")["data"]["referenceNumber"] == reader

    # A break-glass revocation is not a retirement: the next apply issues a fresh token.
    again = world.ksefctl("apply", "-f", str(manifest), "--auto-approve")
    assert again.code == 0, again
    assert "1 created" in again.out
    assert world.secret(NIP, "erp")["data"]["referenceNumber"] != leaked


def test_revoke_refuses_unknown_names_and_contexts_in_one_line(world: World) -> None:
    manifest = world.manifest(MANIFEST)
    unknown = world.ksefctl("revoke", "-f", str(manifest), "--nip", NIP, "--token", "erp")
    assert unknown.code == 1
    assert unknown.err == (
        f"Error: no live token named 'erp' of this manifest's owner under NIP {NIP}\n"
    )
    elsewhere = world.ksefctl("revoke", "-f", str(manifest), "--nip", NIPS[1], "--all-managed")
    assert elsewhere.code == 1
    assert elsewhere.err == f"Error: no context with NIP {NIPS[1]} in the manifest\n"


def test_revoke_all_needs_the_nip_typed_back(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    handmade = world.sim.mint_token(NIP, ["InvoiceRead"], description="made by hand")
    other = marker.encode("BI", Marker("globex", "bi", marker.new_nonce()))
    foreign = world.sim.mint_token(NIP, ["InvoiceRead"], description=other)

    # In a pipeline there is nobody to type the NIP: refused before KSeF is contacted.
    _no_terminal(monkeypatch)
    world.sim.admin("POST", "/stats/reset")
    refused = world.ksefctl("revoke", "-f", str(manifest), "--nip", NIP, "--all")
    assert refused.code == 1
    assert refused.err == (
        "Error: revoke --all needs the NIP typed back on a terminal, or --auto-approve\n"
    )
    assert not world.sim.stats()["requests"]

    # On a terminal, a wrong answer cancels.
    _no_terminal(monkeypatch, "7762811692\n")
    cancelled = world.ksefctl("revoke", "-f", str(manifest), "--nip", NIP, "--all")
    assert cancelled.code == 1 and "Revocation cancelled." in cancelled.err
    assert set(_statuses(world).values()) == {"Active"}

    _no_terminal(monkeypatch, f"{NIP}\n")
    done = world.ksefctl("revoke", "-f", str(manifest), "--nip", NIP, "--all")
    assert done.code == 0, done
    assert f"{handmade.reference_number} (not managed by this manifest)" in done.out
    assert "Revoked 4 of 4 tokens." in done.out
    statuses = _statuses(world)
    assert len(statuses) == 4 and set(statuses.values()) == {"Revoked"}
    assert statuses[foreign.reference_number] == "Revoked"


def test_revoke_all_without_credentials_manage_is_refused_by_ksef_and_said_so(
    world: World,
) -> None:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    handmade = world.sim.mint_token(NIP, ["InvoiceRead"], description="made by hand")
    # This login may see every token (CredentialsRead) but not revoke others' ones.
    _log_in_as_stranger(world, ["InvoiceRead", "InvoiceWrite", "CredentialsRead"])

    result = world.ksefctl("revoke", "-f", str(manifest), "--nip", NIP, "--all", "--yes")
    assert result.code == 1, result
    errors = [line for line in result.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 3, result.err
    assert all("403" in line and "CredentialsManage" in line for line in errors), errors
    assert "Traceback" not in result.err
    assert "Revoked 0 of 3 tokens." in result.out
    assert _statuses(world)[handmade.reference_number] == "Active"


# KSeF's windows at a scale a test can afford: the per-second limit binds, and at half
# the documented 10/s, so only the limits the client learns from GET /rate-limits keep
# the run free of 429s; 300/min and 3000/h never bind (a minute window would cost the
# suite a minute of waiting; tests/ksef/test_pacing.py checks every window on a clock).
TEST_LIMITS = WindowLimits(per_second=5, per_minute=300, per_hour=3000)


def test_break_glass_over_thirty_tokens_stays_inside_the_rate_limits(world: World) -> None:
    """A whole company's 30 tokens revoked under limits configured for the test: no 429.

    The tokens are seeded through the simulator's admin API (with this owner's
    markers, and their values in Vault as apply would leave them) so that the
    windows start empty; 30 revocations at 5/s cannot go out unpaced without
    KSeF refusing some, so "0 throttled" says the run was paced.
    """
    names = [f"app{i:02d}" for i in range(30)]
    body = "".join(f"      - name: {n}\n        permissions: [InvoiceRead]\n" for n in names)
    manifest = world.manifest(f'contexts:\n  - nip: "{NIP}"\n    tokens:\n{body}')
    for name in names:
        description = marker.encode("", Marker("acme", name, marker.new_nonce()))
        minted = world.sim.mint_token(NIP, ["InvoiceRead"], description=description)
        path = f"ksef/sim/{NIP}/{name}"
        world.vault.secrets.kv.v2.create_or_update_secret(
            path=path,
            mount_point=world.bao.mount,
            secret={"token": minted.token, "referenceNumber": minted.reference_number},
        )
    handmade = world.sim.mint_token(NIP, ["InvoiceRead"], description="made by hand")
    limits = [TEST_LIMITS.per_second, TEST_LIMITS.per_minute, TEST_LIMITS.per_hour]
    world.sim.set_limits(enabled=True, limits={"other": limits})
    world.sim.admin("POST", "/stats/reset")

    started = time.monotonic()
    result = world.ksefctl(
        "revoke", "-f", str(manifest), "--nip", NIP, "--all-managed", "--reason", "leak"
    )
    elapsed = time.monotonic() - started
    assert result.code == 0, result
    assert "Revoked 30 of 30 tokens." in result.out
    assert world.sim.stats()["throttled"] == 0
    statuses = _statuses(world)
    assert [statuses[handmade.reference_number]] == ["Active"]
    assert (
        sorted(s for r, s in statuses.items() if r != handmade.reference_number) == ["Revoked"] * 30
    )
    for name in names[:3]:
        assert (
            _metadata(world, NIP, name)["custom_metadata"]["deletedReason"] == "break-glass: leak"
        )
    floor = minimum_duration(TEST_LIMITS, 30)
    print(f"break-glass: 30 tokens revoked in {elapsed:.1f} s (floor {floor:.1f} s), 0 throttled")


UNUSED_POLICY = """\
contexts:
  - nip: "5265877635"
    tokens:
      - name: erp
        permissions: [InvoiceRead, InvoiceWrite]
        revokeIfUnusedFor: {limit}
"""


def _days_on(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def test_unused_token_is_revoked_and_stays_revoked_until_its_policy_changes(
    world: World,
) -> None:
    manifest = world.manifest(UNUSED_POLICY.format(limit="60d"))
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    stored = world.secret(NIP, "erp")["data"]
    # Used once, ten days after it was made (the simulator's clock moves, ours is --now).
    world.sim.advance_clock(10 * 86400)
    world.sim.login_with_token(stored["token"], ("Nip", NIP))

    fresh = world.ksefctl("plan", "-f", str(manifest), "--now", _days_on(69))
    assert "No changes" in fresh.out, fresh  # 59 days unused: not yet
    plan = world.ksefctl("plan", "-f", str(manifest), "--now", _days_on(84), "--detailed-exitcode")
    assert plan.code == 2, plan
    assert f"- revoke erp (unused 74 days) {stored['referenceNumber']}" in " ".join(
        plan.out.split()
    )

    applied = world.ksefctl("apply", "-f", str(manifest), "--now", _days_on(84), "--auto-approve")
    assert applied.code == 0, applied
    assert _statuses(world)[stored["referenceNumber"]] in ("Revoking", "Revoked")
    custom = _metadata(world, NIP, "erp")["custom_metadata"]
    assert custom["deletedReason"] == "unused 74 days"

    # The abandoned integration stays without access: no re-creation...
    for days in (85, 400):
        later = world.ksefctl(
            "apply", "-f", str(manifest), "--now", _days_on(days), "--auto-approve"
        )
        assert later.code == 0, later
        assert "stays revoked for disuse" in later.out
        assert "created" not in later.out
    assert not world.tokens(NIP)
    status = world.ksefctl("status", "-f", str(manifest), "--json")
    assert json.loads(status.out)["contexts"][0]["absent"] == ["erp"]

    # ...until someone changes its definition.
    relaxed = world.manifest(UNUSED_POLICY.format(limit="120d"))
    plan = world.ksefctl("plan", "-f", str(relaxed), "--detailed-exitcode")
    assert plan.code == 2 and "+ create erp" in " ".join(plan.out.split()), plan
    assert world.ksefctl("apply", "-f", str(relaxed), "--auto-approve").code == 0
    assert world.secret(NIP, "erp")["data"]["referenceNumber"] != stored["referenceNumber"]
