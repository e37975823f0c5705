"""KSeF certificates as code, end to end: the real CLI against the simulator and OpenBao.

Given a CertificatePolicy, when ``apply`` runs, then the subject holds the
declared certificates in KSeF, Vault holds each one's certificate and private
key where the manifest says, and the stored pair logs in through an
independent XAdES signer (libxmlsec1).  Renewal, undeclaring, a crash between
enrolment and the Vault write, a full quota and a failed enrolment each end
in the state the docs promise, read back from KSeF and Vault directly.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.certificate_world import (
    apply,
    by_status,
    cert_metadata,
    cert_secret,
    certificate_manifest,
    settled_certificates,
    sim_now,
    subject_certificates,
)
from tests.support.sim_certificates import xades_login
from tests.support.sim_certificates import xmlsec_signer as _xmlsec_signer
from tests.support.world import NIPS, World

NIP, NIP2, _ = NIPS
DAY = 24 * 3600.0


@pytest.fixture(autouse=True)
def _no_server_side_limits(world: World) -> None:
    world.sim.set_limits(enabled=False)
    world.sim.set_faults(enrollment_delay_s=0.05, revocation_delay_s=0.05)


BOTH = f"""\
contexts:
  - nip: "{NIP}"
    certificates:
      - name: login
      - name: legacy
        keyAlgorithm: rsa-2048
"""


def test_enrol_ec_and_rsa_store_in_vault_and_log_in_with_an_independent_signer(
    world: World,
) -> None:
    manifest = certificate_manifest(world, BOTH)
    planned = world.ksefctl("plan", "-f", str(manifest))
    assert planned.code == 0, planned
    assert "+ create  certificate legacy  (Authentication, rsa-2048)" in planned.out
    assert "+ create  certificate login  (Authentication, ec-p256)" in planned.out

    result = apply(world, manifest)
    assert result.code == 0, result
    assert "certificate login: enrolled" in result.out

    listed = subject_certificates(world, NIP)
    active = by_status(listed, "Active")
    assert sorted(c["name"].split(" ")[0] for c in active) == ["legacy", "login"]
    for name, key_type in (("login", ec.EllipticCurvePrivateKey), ("legacy", rsa.RSAPrivateKey)):
        data = cert_secret(world, NIP, name)
        stored = data["data"]
        certificate = x509.load_pem_x509_certificate(stored["certificate"].encode())
        assert format(certificate.serial_number, "016X") == stored["serialNumber"]
        assert stored["serialNumber"] in {c["certificateSerialNumber"] for c in active}
        assert stored["type"] == "Authentication" and stored["context"] == f"Nip:{NIP}"
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(stored["privateKey"].encode(), None)
        assert isinstance(key, key_type)
        metadata = cert_metadata(world, NIP, name)["custom_metadata"]
        assert metadata["managedBy"] == "ksefctl" and metadata["owner"] == "acme"
        assert metadata["serialNumber"] == stored["serialNumber"]
        # The stored pair logs in as the subject, signed by libxmlsec1 rather than ksefctl.
        pair = (stored["certificate"].encode(), stored["privateKey"].encode())
        status, session = xades_login(world.sim, pair, ("Nip", NIP), sign=_xmlsec_signer)
        assert status["code"] == 200 and session is not None, status

    again = world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert again.code == 0, again
    assert "No changes" in again.out


def test_renewal_creates_first_and_revokes_the_old_one_after_the_overlap(world: World) -> None:
    manifest = certificate_manifest(
        world,
        f"""\
        contexts:
          - nip: "{NIP}"
            certificates:
              - name: login
                renewBefore: 30d
                overlap: 2d
        """,
    )
    assert apply(world, manifest).code == 0
    first = cert_secret(world, NIP, "login")["data"]["serialNumber"]
    valid_to = datetime.fromisoformat(
        cert_secret(world, NIP, "login")["data"]["validTo"].replace("Z", "+00:00")
    )

    # 29 days before expiry: renewal is due.
    moment = valid_to - timedelta(days=29)
    world.sim.advance_clock((moment - sim_now(world)).total_seconds())
    renewed = apply(world, manifest, "--now", moment.isoformat())
    assert renewed.code == 0, renewed
    assert "renewed" in renewed.out and "kept until" in renewed.out
    second = cert_secret(world, NIP, "login")["data"]["serialNumber"]
    assert second != first
    assert {
        c["certificateSerialNumber"] for c in by_status(subject_certificates(world, NIP), "Active")
    } == {first, second}

    # Inside the overlap nothing changes; after it, the old one is revoked (Superseded).
    inside = world.ksefctl(
        "plan", "-f", str(manifest), "--now", (moment + timedelta(days=1)).isoformat()
    )
    assert inside.code == 0 and "No changes" in inside.out and "keeping " + first in inside.out, (
        inside
    )
    later = moment + timedelta(days=3)
    world.sim.advance_clock(3 * DAY)
    done = apply(world, manifest, "--now", later.isoformat())
    assert done.code == 0, done
    assert f"revoked {first} (superseded)" in done.out
    listed = {c["certificateSerialNumber"]: c["status"] for c in settled_certificates(world, NIP)}
    assert listed == {first: "Revoked", second: "Active"}
    assert (
        world.ksefctl("plan", "-f", str(manifest), "--now", later.isoformat()).out.count(
            "No changes"
        )
        == 1
    )


def test_an_undeclared_certificate_is_revoked_and_its_secret_soft_deleted(world: World) -> None:
    manifest = certificate_manifest(world, BOTH)
    assert apply(world, manifest).code == 0
    legacy = cert_secret(world, NIP, "legacy")["data"]["serialNumber"]
    fewer = certificate_manifest(
        world,
        f"""\
        contexts:
          - nip: "{NIP}"
            certificates:
              - name: login
        """,
    )
    planned = world.ksefctl("plan", "-f", str(fewer))
    assert f"- revoke  certificate legacy  (no longer declared)  {legacy}" in planned.out, planned
    result = apply(world, fewer)
    assert result.code == 0, result
    listed = {c["certificateSerialNumber"]: c["status"] for c in settled_certificates(world, NIP)}
    assert listed[legacy] == "Revoked"
    metadata = cert_metadata(world, NIP, "legacy")
    current = metadata["versions"][str(metadata["current_version"])]
    assert current["deletion_time"] and not current["destroyed"]
    assert "no longer declared" in metadata["custom_metadata"]["deletedReason"]


def test_certificates_ksefctl_did_not_make_are_reported_and_never_touched(world: World) -> None:
    from tests.support.sim_certificates import issue, new_key

    seal = world.vault.secrets.kv.v2.read_secret_version(
        path=f"ksef-admin/{NIP}", mount_point=world.bao.mount, raise_on_deleted_version=True
    )["data"]["data"]
    _, session = xades_login(world.sim, (seal["certificate"].encode(), seal["privateKey"].encode()))
    assert session is not None
    serial, _ = issue(world.sim, session, new_key(), name="made by hand")
    manifest = certificate_manifest(world, BOTH)
    result = apply(world, manifest)
    assert result.code == 0, result
    planned = world.ksefctl("plan", "-f", str(manifest))
    assert f"certificate 'made by hand' {serial}" in planned.out and "never touched" in planned.out
    listed = {c["certificateSerialNumber"]: c["status"] for c in subject_certificates(world, NIP)}
    assert listed[serial] == "Active"


def test_after_the_bootstrap_the_managed_certificate_renews_itself(world: World) -> None:
    body = f"""\
        contexts:
          - nip: "{NIP}"
            certificates:
              - name: login
        """
    assert apply(world, certificate_manifest(world, body)).code == 0
    first = cert_secret(world, NIP, "login")["data"]
    # Every later run logs in with the managed certificate itself.
    manifest = certificate_manifest(world, body)
    manifest.write_text(
        manifest.read_text().replace(
            'vault: "ksef-admin/{nip}"', 'vault: "ksef-certs/{environment}/{nip}/login"'
        )
    )
    assert world.ksefctl("plan", "-f", str(manifest), "--detailed-exitcode").code == 0
    valid_to = datetime.fromisoformat(first["validTo"].replace("Z", "+00:00"))
    moment = valid_to - timedelta(days=10)
    world.sim.advance_clock((moment - sim_now(world)).total_seconds())
    renewed = apply(world, manifest, "--now", moment.isoformat())
    assert renewed.code == 0, renewed
    assert f"revoked {first['serialNumber']} (Superseded)" in renewed.out
    second = cert_secret(world, NIP, "login")["data"]
    assert second["serialNumber"] != first["serialNumber"]
    again = world.ksefctl("plan", "-f", str(manifest), "--now", moment.isoformat())
    assert again.code == 0 and "No changes" in again.out, again
