"""The grants section of a manifest: defaults and overrides, and located errors for bad input."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from ksefctl.manifest import load_manifests
from ksefctl.manifest.errors import ManifestErrors
from ksefctl.manifest.grants import encode, max_user_description, owner_of, pesel_problem, user_text
from ksefctl.manifest.model import DesiredGrant

HEADER = """\
apiVersion: ksefctl/v1
kind: TokenPolicy
metadata:
  name: acme
spec:
  ksef:
    environment: test
  auth:
    certificate:
      vault: "ksef-admin/{nip}"
  permissionSets:
    books: [InvoiceRead, InvoiceWrite]
"""
ANNA = 'person: {pesel: "15062788702", firstName: Anna, lastName: Nowak}'


def load(tmp_path: Path, body: str) -> list[tuple[str, tuple[DesiredGrant, ...] | None]]:
    path = tmp_path / "m.yaml"
    path.write_text(HEADER + textwrap.indent(textwrap.dedent(body), "  "))
    desired = load_manifests([str(path)])
    return [(str(c.context), c.grants) for c in desired.contexts]


def errors(tmp_path: Path, body: str) -> str:
    with pytest.raises(ManifestErrors) as raised:
        load(tmp_path, body)
    return str(raised.value)


def test_defaults_overrides_and_ungoverned_contexts(tmp_path: Path) -> None:
    found = dict(
        load(
            tmp_path,
            f"""\
            defaults:
              grants:
                - {ANNA}
                  permissionSet: books
            contexts:
              - nip: "5265877635"
              - nip: "7762811692"
                grants:
                  - {ANNA}
                    permissions: [InvoiceRead]
                    expires: 2026-06-30
                  - entity: {{nip: "5260181596", name: "Biuro Sp. z o.o."}}
                    permissions: [InvoiceRead]
                    canDelegate: true
                    authorizations: [SelfInvoicing, TaxRepresentative]
              - nip: "5260181596"
                inheritDefaults: false
            """,
        )
    )
    [inherited] = found["Nip:5265877635"] or ()
    assert inherited.permissions == {"InvoiceRead", "InvoiceWrite"}
    own = {g.grantee: g for g in found["Nip:7762811692"] or ()}
    assert own["person Pesel:15062788702"].permissions == {"InvoiceRead"}
    assert own["person Pesel:15062788702"].expires == date(2026, 6, 30)
    assert own["entity Nip:5260181596"].can_delegate
    assert own["authorization Nip:5260181596"].permissions == {"SelfInvoicing", "TaxRepresentative"}
    assert found["Nip:5260181596"] is None  # no grants section reaches it: not governed


@pytest.mark.parametrize(
    ("entry", "where", "message"),
    [
        (
            'person: {pesel: "15062788703", firstName: Anna, lastName: Nowak}\n  permissions: [InvoiceRead]',
            "grants[0].person.pesel",
            "not a valid PESEL",
        ),
        (f"{ANNA}\n  permissionSet: nope", "grants[0].permissionSet", "unknown permission set"),
        (f"{ANNA}\n  permissions: [InvoiceRead]\n  canDelegate: true", "grants[0].canDelegate", "entity"),
        (f"{ANNA}\n  permissions: [InvoiceRead]\n  expires: 2026-02-30", "grants[0].expires", "date"),
        (
            'entity: {nip: "5260181596", name: "Biuro Sp. z o.o."}\n  permissions: [CredentialsManage]',
            "grants[0].permissions",
            "only InvoiceRead and InvoiceWrite",
        ),
        (
            'entity: {nip: "5260181597", name: "Biuro Sp. z o.o."}\n  authorizations: [SelfInvoicing]',
            "grants[0].entity.nip",
            "",
        ),
        (f"{ANNA}\n  permissions: [InvoiceRead]\n  description: '{'x' * 230}'", "grants[0].description", "at most"),
        (
            'person: {fingerprint: "' + "A" * 64 + '", firstName: Anna, lastName: Nowak}\n  permissions: [InvoiceRead]',
            "grants[0].person",
            "pesel or nip too",
        ),
    ],
)  # fmt: skip
def test_bad_grants_are_located(tmp_path: Path, entry: str, where: str, message: str) -> None:
    body = 'contexts:\n  - nip: "5265877635"\n    grants:\n' + textwrap.indent(
        f"- {entry}", "      "
    )
    text = errors(tmp_path, body)
    assert "m.yaml:" in text and f"spec.contexts[0].{where}" in text, text
    assert message in text


def test_duplicate_grantee_is_an_error(tmp_path: Path) -> None:
    body = f"""\
    contexts:
      - nip: "5265877635"
        grants:
          - {ANNA}
            permissions: [InvoiceRead]
          - {ANNA}
            permissions: [InvoiceWrite]
    """
    assert "duplicate grant to person Pesel:15062788702" in errors(tmp_path, body)


def test_marker_round_trip() -> None:
    text = encode("Anna, bookkeeping", "acme")
    assert text == "Anna, bookkeeping [ksefctl owner=acme grant]"
    assert owner_of(text) == "acme" and user_text(text).strip() == "Anna, bookkeeping"
    assert owner_of("mentions [ksefctl owner=acme grant] in the middle") is None
    assert owner_of("by hand") is None
    assert len(encode("x" * max_user_description("acme"), "acme")) == 256
    assert pesel_problem("15062788702") is None and pesel_problem("1506278870") is not None
