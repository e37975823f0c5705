"""The typed certificate calls against the simulator: enrol (EC and RSA), wait, retrieve, log in
with what was issued, query, revoke, and each refusal as its KsefError."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from ksefctl.ksef import KsefClient
from ksefctl.ksef.certificates import EnrollmentData
from ksefctl.ksef.csr import KeyAlgorithm, build_csr, generate_key, private_key_pem
from ksefctl.ksef.errors import (
    CertificateQuotaExceeded,
    EnrollmentFailed,
    EnrollmentTimeout,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from ksefctl.ksef.session import Session
from ksefctl.ksef.xades_signing import load_identity
from ksefctl.secret import Secret
from ksefctl.testcert import make_seal_certificate
from tests.ksef.conftest import NIP, mint, set_faults
from tests.support.sim import SimHandle

SPKI = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


async def seal_login(client: KsefClient, nip: str = NIP) -> Session:
    return await client.login_with_certificate(
        "Nip", nip, load_identity(*make_seal_certificate(nip))
    )


@pytest.mark.parametrize("algorithm", ["ec-p256", "rsa-2048"])
async def test_enrol_retrieve_log_in_with_it_and_revoke(
    client: KsefClient, sim: SimHandle, algorithm: KeyAlgorithm, secrets_seen: list[Secret]
) -> None:
    set_faults(sim, enrollment_delay_s=0.05, revocation_delay_s=0.05)
    async with await seal_login(client) as seal:
        certificates = seal.certificates
        limits = await certificates.limits()
        assert limits.can_request and limits.certificate.limit == 100
        data = await certificates.enrollment_data()
        assert data.organization_identifier == f"VATPL-{NIP}"
        key = generate_key(algorithm)
        secrets_seen.append(private_key_pem(key))
        reference = await certificates.enroll(
            "ksefctl managed 01", "Authentication", build_csr(data, key)
        )
        status = await certificates.wait_for_enrollment(reference, deadline_s=30)
        assert status.code == 200 and status.serial_number is not None
        serial = status.serial_number
        (retrieved,) = await certificates.retrieve([serial, "0123456789ABCDEF"])
        assert retrieved.serial_number == serial and retrieved.type == "Authentication"
        assert retrieved.certificate.public_key().public_bytes(
            *SPKI
        ) == key.public_key().public_bytes(*SPKI)
        assert serial in repr(retrieved) and "BEGIN" not in repr(retrieved)

    identity = load_identity(retrieved.pem, private_key_pem(key).reveal())
    async with await client.login_with_certificate("Nip", NIP, identity) as renewed:
        again = await renewed.certificates.enrollment_data()
        assert again == data  # the KSeF certificate can enrol its own successor
        (info,) = await renewed.certificates.query(serial_number=serial)
        assert info.status == "Active" and info.subject_value == NIP and info.last_used is not None
        await renewed.certificates.revoke(serial, "Superseded")
        statuses = {i.status for i in await renewed.certificates.query(serial_number=serial)}
        assert statuses <= {"Blocked", "Revoked"}
        with pytest.raises(ValidationFailed) as twice:
            await renewed.certificates.revoke(serial)
        assert twice.value.codes == [25009]


async def test_query_pages_through_everything_with_filters(
    client: KsefClient, sim: SimHandle
) -> None:
    set_faults(sim, enrollment_delay_s=0)
    async with await seal_login(client) as seal:
        data = await seal.certificates.enrollment_data()
        for i in range(12):
            reference = await seal.certificates.enroll(
                f"bulk {i:02d}",
                "Offline" if i == 5 else "Authentication",
                build_csr(data, generate_key()),
            )
            await seal.certificates.wait_for_enrollment(reference, deadline_s=30)
        every = await seal.certificates.query(page_size=10)
        assert [c.name for c in every] == [f"bulk {i:02d}" for i in reversed(range(12))]
        offline = await seal.certificates.query(certificate_type="Offline")
        assert [c.name for c in offline] == ["bulk 05"]
        assert await seal.certificates.query(name="bulk 1", status="Revoked") == []


async def test_refusals_map_into_the_error_tree(client: KsefClient, sim: SimHandle) -> None:
    async with await seal_login(client) as seal:
        certificates = seal.certificates
        data = await certificates.enrollment_data()
        bad_dn = EnrollmentData(**{**data.__dict__, "common_name": "Not Me"})
        with pytest.raises(ValidationFailed) as mismatch:
            await certificates.enroll(
                "mismatch", "Authentication", build_csr(bad_dn, generate_key())
            )
        assert mismatch.value.codes == [25003]
        with pytest.raises(NotFound):
            await certificates.revoke("0123456789ABCDEF")
        with pytest.raises(NotFound):
            await certificates.enrollment_status("20260101-EH-0000000000-0000000000-00")

        set_faults(sim, failed_enrollment_rate=1.0, enrollment_delay_s=0)
        failing = await certificates.enroll(
            "will fail", "Authentication", build_csr(data, generate_key())
        )
        with pytest.raises(EnrollmentFailed) as failed:
            await certificates.wait_for_enrollment(failing, deadline_s=30)
        assert failed.value.codes == [500]

        set_faults(sim, failed_enrollment_rate=0.0, enrollment_delay_s=3600)
        slow = await certificates.enroll(
            "slow one", "Authentication", build_csr(data, generate_key())
        )
        with pytest.raises(EnrollmentTimeout):
            await certificates.wait_for_enrollment(slow, deadline_s=0.3, first_poll_s=0.05)


async def test_a_full_quota_is_its_own_error(client: KsefClient, sim: SimHandle) -> None:
    from tests.ksef.conftest import admin

    admin(sim, "/faults", {"enrollment_delay_s": 0}, method="PUT")
    async with await seal_login(client) as seal:
        data = await seal.certificates.enrollment_data()
        first = await seal.certificates.enroll(
            "only one", "Authentication", build_csr(data, generate_key())
        )
        await seal.certificates.wait_for_enrollment(first, deadline_s=30)
    # The TEST limit override is a plain call outside the typed API.
    import httpx

    session_data = admin(
        sim,
        "/sessions",
        {"context": {"type": "Nip", "value": NIP}, "identity": {"type": "Nip", "value": NIP}},
    )
    httpx.post(
        f"{sim.base_url}/testdata/limits/subject/certificate",
        json={"certificate": {"maxCertificates": 1}},
        headers={"Authorization": f"Bearer {session_data['accessToken']['token']}"},
        timeout=10,
    ).raise_for_status()
    async with await seal_login(client) as seal:
        limits = await seal.certificates.limits()
        assert not limits.can_request and limits.certificate.remaining == 0
        data = await seal.certificates.enrollment_data()
        with pytest.raises(CertificateQuotaExceeded) as full:
            await seal.certificates.enroll(
                "second", "Authentication", build_csr(data, generate_key())
            )
        assert full.value.codes == [25007] and "25007" in str(full.value)


async def test_token_sessions_cannot_enrol_or_revoke(client: KsefClient, sim: SimHandle) -> None:
    _, token = mint(sim)
    async with await client.login_with_token("Nip", NIP, token) as session:
        with pytest.raises(ValidationFailed) as refused:
            await session.certificates.enrollment_data()
        assert refused.value.codes == [25001]
        with pytest.raises(PermissionDenied):
            await session.certificates.revoke("0123456789ABCDEF")


def test_the_private_key_never_shows() -> None:
    key = generate_key("rsa-2048")
    pem = private_key_pem(key)
    assert pem.reveal().startswith("-----BEGIN PRIVATE KEY-----")
    assert "PRIVATE" not in repr(pem) and "PRIVATE" not in f"{pem}"
    with pytest.raises(ValueError):
        generate_key("rsa-4096")  # type: ignore[arg-type]
