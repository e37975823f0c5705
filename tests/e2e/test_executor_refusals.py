"""The executor refuses on its own, whatever its caller hands it (SPEC principle 7).

The engine's ``apply`` is given forged plans directly — no saved-plan check
in front — over the simulator and OpenBao.  Each hostile change is a clean
failure of its context naming why, nothing is done in that context (not even
the legitimate changes beside the forged one), the other contexts go on, and
KSeF and Vault are unchanged where refused (read directly, not through ksefctl).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from ksefctl.manifest import marker
from ksefctl.manifest.load import load_manifests
from ksefctl.manifest.model import ContextId, Marker, SecretRef
from ksefctl.reconcile.engine import ApplyReport, Engine, RunSettings
from ksefctl.reconcile.model import Action, Change, Plan
from ksefctl.vault import VaultStore
from tests.support.world import NIPS, World, settled

NIP, NIP2, NIP3 = NIPS
MANIFEST = f"""\
contexts:
  - nip: "{NIP}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
        revokeIfUnusedFor: 30d
      - name: old
        permissions: [InvoiceRead]
  - nip: "{NIP2}"
    tokens:
      - name: erp
        permissions: [InvoiceRead]
"""


pytestmark = pytest.mark.usefixtures("roomy_limits")


async def apply_forged(manifest: Path, changes: list[Change]) -> ApplyReport:
    desired = load_manifests([str(manifest)])
    async with (
        VaultStore.from_environment(desired) as store,
        Engine(desired, store, RunSettings(session_cache="off")) as engine,
    ):
        await engine.observe()
        return await engine.apply(Plan(changes=tuple(changes)))


def held(world: World, nip: str, name: str) -> str:
    return str(world.secret(nip, name)["data"]["referenceNumber"])


def secret(world: World, path: str) -> SecretRef:
    return SecretRef(world.bao.mount, path)


def revoke(world: World, nip: str, name: str, reference: str | None, path: str) -> Change:
    return Change(
        Action.REVOKE,
        "acme",
        ContextId("Nip", nip),
        name,
        reason="no longer declared",
        reference_number=reference,
        secret=secret(world, path),
        delete_secret=True,
    )


def create(world: World, nip: str, name: str, permissions: set[str]) -> Change:
    return Change(
        Action.CREATE,
        "acme",
        ContextId("Nip", nip),
        name,
        permissions=frozenset(permissions),
        secret=secret(world, f"ksef/sim/{nip}/{name}"),
    )


Hostile = Callable[[World, dict[str, str]], Change]

HOSTILE: dict[str, tuple[Hostile, str]] = {
    "a hand-made token": (
        lambda w, t: revoke(w, NIP, "erp", t["handmade"], f"ksef/sim/{NIP}/erp"),
        "is not managed by owner 'acme'",
    ),
    "another owner's token": (
        lambda w, t: revoke(w, NIP, "erp", t["beta"], f"ksef/sim/{NIP}/erp"),
        "is not managed by owner 'acme'",
    ),
    "our token, deleting login material": (
        lambda w, t: revoke(w, NIP, "old", t["old"], f"ksef-admin/{NIP}"),
        "holds login material",
    ),
    "our token, deleting another name's secret": (
        lambda w, t: revoke(w, NIP, "old", t["old"], f"ksef/sim/{NIP}/erp"),
        "is not where owner 'acme' keeps token 'old'",
    ),
    "the held token of a declared name": (
        lambda w, t: revoke(w, NIP, "old", t["old"], f"ksef/sim/{NIP}/old"),
        "revoked only for disuse",
    ),
    "a disuse revoke under another definition": (
        lambda w, t: replace(
            revoke(w, NIP, "erp", t["erp"], f"ksef/sim/{NIP}/erp"), policy_digest="0" * 64
        ),
        "revoked only for disuse",
    ),
    "undeclared permissions": (
        lambda w, t: create(w, NIP, "erp", {"InvoiceRead", "CredentialsManage"}),
        "permissions of token 'erp' differ",
    ),
    "an undeclared token": (
        lambda w, t: create(w, NIP, "backdoor", {"InvoiceRead"}),
        "'backdoor' is not declared",
    ),
    "a change for a context not observed": (
        lambda w, t: create(w, NIP3, "erp", {"InvoiceRead"}),
        "not observed in this run",
    ),
    "a change naming another context than its own": (
        lambda w, t: replace(
            revoke(w, NIP2, "erp", t["erp2"], f"ksef/sim/{NIP}/erp"),
            context=ContextId("Nip", NIP),
        ),
        f"is not in Nip:{NIP}",
    ),
}


@pytest.fixture
def tokens(world: World) -> dict[str, str]:
    manifest = world.manifest(MANIFEST)
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve").code == 0
    beta = marker.encode("", Marker("beta", "erp", marker.new_nonce()))
    return {
        "erp": held(world, NIP, "erp"),
        "old": held(world, NIP, "old"),
        "erp2": held(world, NIP2, "erp"),
        "handmade": world.sim.mint_token(
            NIP, ["InvoiceRead"], description="by hand"
        ).reference_number,
        "beta": world.sim.mint_token(NIP, ["InvoiceRead"], description=beta).reference_number,
    }


@pytest.mark.parametrize("what", list(HOSTILE))
async def test_a_hostile_change_is_refused_and_its_context_untouched(
    world: World, tokens: dict[str, str], what: str
) -> None:
    forge, why = HOSTILE[what]
    hostile = forge(world, tokens)
    before = settled(world)

    report = await apply_forged(world.directory / "tokens.yaml", [hostile])

    assert not report.ok
    (failure,) = report.failures
    assert failure.context == hostile.context and why in failure.message, failure
    assert "\n" not in failure.message
    assert settled(world) == before


async def test_one_forged_change_stops_its_context_but_not_the_others(
    world: World, tokens: dict[str, str]
) -> None:
    forged = revoke(world, NIP, "erp", tokens["handmade"], f"ksef-admin/{NIP}")
    honest_nip = create(world, NIP, "erp", {"InvoiceRead"})
    honest_nip = replace(
        honest_nip, action=Action.REPLACE, reason="rotation due", reference_number=tokens["erp"]
    )
    honest_nip2 = replace(
        create(world, NIP2, "erp", {"InvoiceRead"}),
        action=Action.REPLACE,
        reason="rotation due",
        reference_number=tokens["erp2"],
    )
    report = await apply_forged(world.directory / "tokens.yaml", [honest_nip, forged, honest_nip2])
    assert [f.context.value for f in report.failures] == [NIP]
    assert held(world, NIP, "erp") == tokens["erp"]  # nothing done in the forged context
    assert held(world, NIP2, "erp") != tokens["erp2"]  # the other context went on
    (outcome,) = report.outcomes[("acme", ContextId("Nip", NIP2))]
    assert outcome.ok, outcome


async def test_a_bug_inside_one_context_is_that_context_failure(
    world: World,
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from ksefctl.reconcile import executor

    run = executor.ContextExecutor.run

    async def buggy(self: executor.ContextExecutor, *args: object, **kwargs: object) -> object:
        if self.observed.context.value == NIP:
            raise ZeroDivisionError("division by zero")
        return await run(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(executor.ContextExecutor, "run", buggy)
    changes = [
        replace(
            create(world, nip, "erp", {"InvoiceRead"}),
            action=Action.REPLACE,
            reason="rotation due",
            reference_number=tokens[key],
        )
        for nip, key in ((NIP, "erp"), (NIP2, "erp2"))
    ]
    caplog.set_level(logging.DEBUG, logger="ksefctl.engine")
    report = await apply_forged(world.directory / "tokens.yaml", changes)
    (failure,) = report.failures
    assert failure.context.value == NIP and failure.stage == "apply"
    assert failure.message == "unexpected error (ZeroDivisionError: division by zero)"
    assert "Traceback" in caplog.text  # -vv shows where
    assert held(world, NIP2, "erp") != tokens["erp2"]


def test_a_bug_is_one_line_on_the_command_line(
    world: World, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ksefctl.reconcile import executor

    async def buggy(*args: object, **kwargs: object) -> object:
        raise KeyError("surprise")

    monkeypatch.setattr(executor.ContextExecutor, "run", buggy)
    manifest = world.manifest(
        MANIFEST.replace("[InvoiceRead]\n        revoke", "[InvoiceWrite]\n        revoke")
    )
    result = world.ksefctl("apply", "-f", str(manifest), "--auto-approve")
    assert result.code == 1, result
    assert "Traceback" not in result.err
    assert f"Nip:{NIP} (acme): apply failed: unexpected error (KeyError: 'surprise')" in result.err
