"""KSeF certificates, the hard stories: a crash between enrolment and the Vault write, a full
quota, a failed enrolment, an Offline certificate at login, a TokenPolicy logging in with a
certificate ksefctl manages, an edited saved plan, and private keys kept out of every output.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from ksefctl.reconcile.certificates.observe import read_secret
from ksefctl.vault import VaultStore
from ksefctl.vault.client import VaultClient
from ksefctl.vocabulary import SecretRef
from tests.e2e.conftest import NIPS, World, manifest_header
from tests.support.certificate_world import (
    apply,
    by_status,
    cert_secret,
    certificate_manifest,
    settled_certificates,
    subject_certificates,
)
from tests.support.sim_certificates import xades_login

NIP, NIP2, _ = NIPS

LOGIN = f"""\
contexts:
  - nip: "{NIP}"
    certificates:
      - name: login
"""


@pytest.fixture(autouse=True)
def _fast_sim(world: World) -> None:
    world.sim.set_limits(enabled=False)
    world.sim.set_faults(enrollment_delay_s=0.05, revocation_delay_s=0.05)


def test_a_crash_between_enrolment_and_the_vault_write_is_revoked_by_the_next_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = certificate_manifest(world, LOGIN)
    original = VaultClient.write

    async def killed(self: VaultClient, ref: Any, data: Any, **kwargs: Any) -> Any:
        if kwargs.get("operation") == "write certificate to":
            raise KeyboardInterrupt  # the process dies here: enrolled, key never stored
        return await original(self, ref, data, **kwargs)

    monkeypatch.setattr(VaultClient, "write", killed)
    crashed = apply(world, manifest)
    assert crashed.code == 130, crashed
    (orphan,) = by_status(subject_certificates(world, NIP), "Active")
    monkeypatch.setattr(VaultClient, "write", original)

    planned = world.ksefctl("plan", "-f", str(manifest))
    assert "orphan: its private key is not in Vault" in planned.out, planned
    assert orphan["certificateSerialNumber"] in planned.out
    result = apply(world, manifest)
    assert result.code == 0, result
    assert f"revoked {orphan['certificateSerialNumber']} (orphan" in result.out
    listed = {c["certificateSerialNumber"]: c["status"] for c in settled_certificates(world, NIP)}
    stored = cert_secret(world, NIP, "login")["data"]["serialNumber"]
    assert listed == {orphan["certificateSerialNumber"]: "Revoked", stored: "Active"}


def test_a_full_quota_is_one_clear_line_and_nothing_is_enrolled(world: World) -> None:
    session = world.sim.owner_session(NIP)
    limited = world.sim.client(session.headers).post(
        "/testdata/limits/subject/certificate", json={"certificate": {"maxCertificates": 0}}
    )
    assert limited.status_code == 200, limited.text
    result = apply(world, certificate_manifest(world, LOGIN))
    assert result.code == 1, result
    lines = [line for line in result.err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "certificate quota" in lines[0] and "is full" in lines[0], result
    assert "not enrolled: login" in lines[0]
    assert subject_certificates(world, NIP) == []


def test_a_failed_enrolment_stores_nothing_and_the_next_run_enrols(world: World) -> None:
    manifest = certificate_manifest(world, LOGIN)
    world.sim.set_faults(failed_enrollment_rate=1.0)
    failed = apply(world, manifest)
    assert failed.code == 1, failed
    assert "certificate login: certificate enrolment" in failed.err and "ended 500" in failed.err
    assert subject_certificates(world, NIP) == []
    world.sim.set_faults(failed_enrollment_rate=0.0)
    assert apply(world, manifest).code == 0
    assert cert_secret(world, NIP, "login")["data"]["serialNumber"]


def test_an_offline_certificate_is_stored_but_refused_at_login(world: World) -> None:
    manifest = certificate_manifest(
        world,
        f"""\
        contexts:
          - nip: "{NIP}"
            certificates:
              - name: invoices-offline
                type: Offline
        """,
    )
    assert apply(world, manifest).code == 0
    stored = cert_secret(world, NIP, "invoices-offline")["data"]
    assert stored["type"] == "Offline"
    pair = (stored["certificate"].encode(), stored["privateKey"].encode())
    status, session = xades_login(world.sim, pair, ("Nip", NIP))
    assert session is None and status["code"] == 460, status


def test_a_token_policy_logs_in_with_a_certificate_ksefctl_manages(world: World) -> None:
    # The bootstrap: the seal is used once, to enrol; tokens are then made with the KSeF cert.
    certificates = certificate_manifest(world, LOGIN, owner="acme-certs")
    assert apply(world, certificates).code == 0
    tokens = world.directory / "tokens.yaml"
    header = manifest_header("acme", world.sim.base_url, world.bao.mount).replace(
        'vault: "ksef-admin/{nip}"', 'vault: "ksef-certs/{environment}/{nip}/login"'
    )
    tokens.write_text(
        header
        + f"""\
  contexts:
    - nip: "{NIP}"
      tokens:
        - name: erp
          permissions: [InvoiceRead]
"""
    )
    both = apply(world, certificates, "-f", str(tokens))
    assert both.code == 0, both
    assert world.secret(NIP, "erp")["data"]["token"]
    again = world.ksefctl("plan", "-f", str(certificates), "-f", str(tokens), "--detailed-exitcode")
    assert again.code == 0 and "No changes" in again.out, again
    # Who made the token: the KSeF certificate, not the seal.
    (made,) = world.tokens(NIP)
    assert made["authorIdentifier"]["type"] == "Nip"


def saved_plan(world: World, manifest: Path) -> tuple[Path, dict[str, Any]]:
    saved = world.directory / "reviewed.plan"
    made = world.ksefctl("plan", "-f", str(manifest), "--out", str(saved))
    assert made.code == 0, made
    return saved, json.loads(saved.read_text())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("key_algorithm", "rsa-2048"),
        ("certificate_type", "Offline"),
        ("secret_path", "ksef-admin/5265877635"),
        ("name", "other"),
        ("owner", "mallory"),
    ],
)
def test_an_edited_certificate_change_in_a_saved_plan_is_refused(
    world: World, field: str, value: str
) -> None:
    manifest = certificate_manifest(world, LOGIN)
    saved, document = saved_plan(world, manifest)
    (change,) = document["plan"]["kind_changes"]
    assert change["kind"] == "certificate" and change["action"] == "create"
    change[field] = value
    forged = world.directory / "forged.plan"
    forged.write_text(json.dumps(document))
    refused = world.ksefctl("apply", str(forged), "--auto-approve")
    assert refused.code == 1, refused
    assert "run plan again" in refused.err or "refused" in refused.err, refused
    assert "Traceback" not in refused.err
    assert subject_certificates(world, NIP) == []
    # The reviewed plan itself applies.
    assert world.ksefctl("apply", str(saved), "--auto-approve").code == 0
    assert len(by_status(subject_certificates(world, NIP), "Active")) == 1


def test_private_keys_never_reach_output_logs_plan_files_or_reprs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    manifest = certificate_manifest(
        world,
        f"""\
        contexts:
          - nip: "{NIP}"
            certificates:
              - name: login
              - name: legacy
                keyAlgorithm: rsa-2048
                renewBefore: 800d
        """,
    )
    assert world.ksefctl("apply", "-f", str(manifest), "--auto-approve", "-vv").code == 0
    saved, _ = saved_plan(world, manifest)
    world.ksefctl("plan", "-f", str(manifest), "--json")
    world.ksefctl("status", "-f", str(manifest), "--json")
    keys = [cert_secret(world, NIP, name)["data"]["privateKey"] for name in ("login", "legacy")]
    bodies = [
        line for key in keys for line in key.splitlines() if line and not line.startswith("-----")
    ]
    assert bodies
    texts = [*world.outputs, saved.read_text(), caplog.text]

    async def observed() -> str:
        async with VaultStore() as store:
            state = await read_secret(
                store, SecretRef(world.bao.mount, f"ksef-certs/sim/{NIP}/login")
            )
            return repr(state)

    texts.append(asyncio.run(observed()))
    for text in texts:
        assert "PRIVATE KEY" not in text
        for body in bodies:
            assert body not in text
