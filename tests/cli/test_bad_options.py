"""Mistyped options are one clear ``Error:`` line and exit 1, before anything is contacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from ksefctl import cli
from tests.cli.conftest import World
from tests.e2e.conftest import NIPS

MANIFEST = f"""\
defaults:
  tokens:
    - name: erp
      permissions: [InvoiceRead]
contexts:
  - nip: "{NIPS[0]}"
"""
ABSENT_NIP = "1234563218"  # valid check digit, not in the manifest


def one_error(err: str, *fragments: str) -> None:
    assert err.count("\n") == 1 and err.startswith("Error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_a_nip_not_in_the_manifest_is_refused(world: World) -> None:
    manifest = str(world.manifest(MANIFEST))
    for command in ("plan", "apply", "status", "rotate"):
        result = world.ksefctl(command, "-f", manifest, "--nip", ABSENT_NIP)
        assert result.code == 1, (command, result)
        one_error(result.err, f"--nip {ABSENT_NIP}", "no such context")
        assert result.out == ""


def test_prune_may_name_a_context_that_left_the_manifest(world: World) -> None:
    manifest = str(world.manifest(MANIFEST))
    result = world.ksefctl("plan", "-f", manifest, "--prune", "--nip", ABSENT_NIP)
    assert result.code == 0, result
    assert "no such context" not in result.err


def test_match_must_name_a_declared_token(world: World) -> None:
    manifest = str(world.manifest(MANIFEST))
    result = world.ksefctl("plan", "-f", manifest, "--adopt", "--match", "nosuch=xyz")
    assert result.code == 1, result
    one_error(result.err, "--match nosuch", "no token of that name is declared")
    declared = world.ksefctl("plan", "-f", manifest, "--adopt", "--match", "erp=xyz")
    assert declared.code == 0, declared


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_parallelism_must_be_a_positive_number(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main(["plan", "-f", str(tmp_path / "t.yaml"), "--parallelism", value])
    assert exit.value.code == 1  # never 2: that is "changes pending" to --detailed-exitcode
    one_error(capsys.readouterr().err, "--parallelism")


def test_parallelism_from_the_environment_is_checked_too(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KSEFCTL_PARALLELISM", "0")
    result = world.ksefctl("plan", "-f", str(world.manifest(MANIFEST)))
    assert result.code == 1
    one_error(result.err, "KSEFCTL_PARALLELISM", "at least 1")


@pytest.mark.parametrize(
    ("option", "value", "why"),
    [
        ("--nip", "1234567890", "not a valid NIP"),
        ("--nip", "12345", "10 digits"),
        ("--pesel", "44051401358", "not a valid PESEL"),
        ("--pesel", "4405140135", "11 digits"),
    ],
)
def test_testcert_refuses_an_invalid_identifier(
    option: str, value: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["testcert", option, value, "--out-dir", str(tmp_path)])
    assert code == 1
    one_error(capsys.readouterr().err, option, why)
    assert not list(tmp_path.iterdir())


def test_testcert_accepts_a_valid_pesel(tmp_path: Path) -> None:
    assert cli.main(["testcert", "--pesel", "44051401359", "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "cert.pem").exists()


def test_apply_names_a_saved_plan_given_after_f(world: World) -> None:
    manifest = str(world.manifest(MANIFEST))
    saved = str(world.directory / "reviewed.plan")
    assert world.ksefctl("plan", "-f", manifest, "--out", saved).code == 0
    result = world.ksefctl("apply", "-f", manifest, saved)
    assert result.code == 1, result
    one_error(result.err, f"{saved} is a saved plan, not a manifest", f"ksefctl apply {saved}")
    assert world.tokens(NIPS[0]) == []  # nothing was applied
