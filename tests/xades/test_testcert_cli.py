"""``ksefctl testcert`` writes a usable certificate and a private key only its owner can read."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from ksefctl.cli import main
from ksefctl.ksef.xades_signing import load_identity, sign_auth_request
from ksefctl.sim.xades_verification import verify_auth_request
from tests.xades.conftest import NIP, PESEL, auth_request


def test_seal_certificate_logs_in_as_the_nip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["testcert", "--nip", NIP, "--key", "ec", "--out-dir", str(tmp_path / "out")])

    out = capsys.readouterr().out
    cert, key = (
        (tmp_path / "out" / "cert.pem").read_bytes(),
        (tmp_path / "out" / "key.pem").read_bytes(),
    )
    identity = load_identity(cert, key)
    assert code == 0
    assert stat.S_IMODE((tmp_path / "out" / "key.pem").stat().st_mode) == 0o600
    assert f"fingerprint: {identity.fingerprint}" in out
    assert "PRIVATE KEY" not in out and key.decode().splitlines()[1] not in out
    verified = verify_auth_request(sign_auth_request(auth_request(), identity))
    assert (verified.identity_type, verified.identity_value) == ("Nip", NIP)


def test_pesel_makes_a_personal_certificate(tmp_path: Path) -> None:
    assert main(["testcert", "--pesel", PESEL, "--key", "ec", "--out-dir", str(tmp_path)]) == 0

    certificate = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    serial = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    assert serial == f"PNOPL-{PESEL}"
    assert certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER) == []


def test_existing_files_are_kept_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "key.pem").write_text("precious")
    (tmp_path / "key.pem").chmod(0o644)

    assert main(["testcert", "--nip", NIP, "--key", "ec", "--out-dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "key.pem").read_text() == "precious"

    assert (
        main(["testcert", "--nip", NIP, "--key", "ec", "--out-dir", str(tmp_path), "--force"]) == 0
    )
    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "argv",
    [
        ["testcert"],
        ["testcert", "--kind", "seal", "--pesel", PESEL],
        ["testcert", "--kind", "personal", "--nip", NIP, "--pesel", PESEL],
        ["testcert", "--nip", "123"],
    ],
)
def test_usage_errors_are_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--out-dir", str(tmp_path)]) == 1

    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1
    assert not (tmp_path / "key.pem").exists()
