from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import ksefctl.cli

VALID = """\
apiVersion: ksefctl/v1
kind: TokenPolicy
metadata:
  name: acme
spec:
  ksef:
    environment: test
  vault:
    mount: secret
    path: "ksef/{environment}/{nip}/{token}"
  auth:
    certificate:
      vault: "ksef-admin/{nip}"
  permissionSets:
    erp: [InvoiceRead, InvoiceWrite]
  defaults:
    tokens:
      - name: erp
        permissionSet: erp
        rotateEvery: 90d
  contexts:
    - nip: "5265877635"
    - nip: "7762811692"
      tokens:
        - name: reader
          permissions: [InvoiceRead]
          description: "BI read-only"
"""


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
