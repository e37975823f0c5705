"""Every invalid manifest fails where its first line says; every shipped example is valid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))


def _is_policy(path: Path) -> bool:
    try:
        docs = list(yaml.safe_load_all(path.read_text("utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError):
        return False
    return any(isinstance(d, dict) and d.get("apiVersion") == "ksefctl/v1" for d in docs)


VALID = sorted(ROOT.glob("manifests/*.yaml")) + sorted(
    p for p in ROOT.glob("examples/**/*.y*ml") if _is_policy(p)
)


def test_corpus_is_large() -> None:
    assert len(INVALID) >= 30


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_is_refused_at_its_location(
    path: Path, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    header = path.read_bytes().split(b"\n", 1)[0].decode()
    assert header.startswith("# expect: ")
    expected = header.removeprefix("# expect: ")
    location, _, field = expected.partition(" ")
    prefix = f"{path}:{location}: {field}:" if field else f"{path}:{location}: "

    assert cli(["validate", "-f", str(path)]) == 1

    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.splitlines()
    assert any(line.startswith(prefix) for line in lines), out.err
    assert all(line.startswith(f"{path}:") for line in lines), out.err
    assert "Traceback" not in out.err


@pytest.mark.parametrize("path", VALID, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_examples_are_valid(
    path: Path, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["validate", "-f", str(path)]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith("Valid: ")


@pytest.mark.parametrize("path", sorted(ROOT.glob("manifests/*.yaml")), ids=lambda p: p.name)
def test_examples_reference_the_schema(path: Path) -> None:
    first = path.read_text("utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/tokenpolicy.v1.json"
