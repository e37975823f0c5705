from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import ksefctl.cli
from tests.support.manifests import VALID

__all__ = ["VALID"]


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., str]:
    """Write a manifest file and return its path."""

    def _write(text: str | bytes, name: str = "m.yaml") -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return str(path)

    return _write


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """``ksefctl.cli.main`` with only the validate command, independent of other commands."""
    monkeypatch.setattr(ksefctl.cli, "COMMANDS", ("validate",))
    return ksefctl.cli.main
