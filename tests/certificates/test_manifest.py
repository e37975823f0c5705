"""kind: CertificatePolicy — schema, expansion beside TokenPolicy, located errors, the marker."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ksefctl.manifest import ManifestErrors, parse_manifests
from ksefctl.manifest.certificates import MAX_NAME, certificate_name, decode, name_problem
from ksefctl.manifest.model import ContextId, Desired
from ksefctl.manifest.schema import schema
from ksefctl.manifest.sources import Source

ROOT = Path(__file__).resolve().parents[2]
NIP, NIP2 = "5265877635", "7762811692"

CERTS = f"""\
apiVersion: ksefctl/v1
kind: CertificatePolicy
metadata:
  name: acme
spec:
  ksef:
    environment: test
  auth:
    certificate:
      vault: "ksef-admin/{{nip}}"
  defaults:
    certificates:
      - name: login
  contexts:
    - nip: "{NIP}"
      certificates:
        - name: offline
          type: Offline
          keyAlgorithm: rsa-2048
          renewBefore: 60d
          overlap: 7d
    - nip: "{NIP2}"
"""

TOKENS = f"""\
apiVersion: ksefctl/v1
kind: TokenPolicy
metadata:
  name: acme
spec:
  ksef:
    environment: test
  auth:
    certificate:
      vault: "ksef-admin/{{nip}}"
  contexts:
    - nip: "{NIP}"
      tokens:
        - name: erp
          permissions: [InvoiceRead]
"""


def load(*texts: str) -> Desired:
    return parse_manifests([Source(f"m{i}.yaml", t.encode()) for i, t in enumerate(texts)])


def errors(*texts: str) -> list[str]:
    with pytest.raises(ManifestErrors) as caught:
        load(*texts)
    return [str(issue) for issue in caught.value.issues]


def test_editor_schema_is_the_packaged_schema_and_shares_the_token_definitions() -> None:
    packaged = ROOT / "ksefctl/schemas/certificatepolicy.v1.json"
    assert (ROOT / "schemas/certificatepolicy.v1.json").read_bytes() == packaged.read_bytes()
    mine = schema("certificatepolicy.v1.json")
    jsonschema.Draft202012Validator.check_schema(mine)
    tokens = schema()
    for name in ("ksef", "vaultAuth", "auth", "certificateAuth", "ksefTokenAuth", "duration"):
        assert mine["$defs"][name] == tokens["$defs"][name], name
    assert json.loads(packaged.read_text())["properties"]["kind"]["const"] == "CertificatePolicy"


def test_a_context_both_kinds_declare_is_one_context_with_one_login() -> None:
    desired = load(TOKENS, CERTS)
    assert desired == load(CERTS, TOKENS)  # document order does not matter
    (policy,) = desired.policies
    shared, alone = policy.contexts
    assert shared.context == ContextId("Nip", NIP) and shared.token_policy
    assert [t.name for t in shared.tokens] == ["erp"]
    assert shared.certificates is not None
    login, offline = shared.certificates.items
    assert (login.name, login.type, login.key_algorithm) == ("login", "Authentication", "ec-p256")
    assert login.renew_before == timedelta(days=30) and login.overlap == timedelta(0)
    assert (offline.type, offline.key_algorithm) == ("Offline", "rsa-2048")
    assert offline.overlap == timedelta(days=7)
    assert str(offline.secret) == f"secret/ksef-certs/test/{NIP}/offline"
    # Declared only by the CertificatePolicy: its tokens are not governed here.
    assert alone.context == ContextId("Nip", NIP2) and not alone.token_policy
    assert alone.tokens == () and alone.certificates is not None
    assert [c.name for c in alone.certificates.items] == ["login"]


def test_a_certificate_policy_alone_makes_an_owner() -> None:
    (policy,) = load(CERTS).policies
    assert policy.owner == "acme" and all(not c.token_policy for c in policy.contexts)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("name: offline", "name: Off line"),
            "m1.yaml:17:17: spec.contexts[0].certificates[0].name",
        ),
        (("type: Offline", "type: Seal"), "spec.contexts[0].certificates[0].type: unknown value"),
        (("overlap: 7d", "overlap: 70d"), "overlap: must be shorter than renewBefore (60d)"),
        (("renewBefore: 60d", "renewBefore: 2mo"), "spec.contexts[0].certificates[0].renewBefore"),
        (
            ('    - nip: "7762811692"', '    - nip: "5265877635"'),
            "duplicate context Nip:5265877635",
        ),
        (
            ("kind: CertificatePolicy\n", "kind: CertificatePolicy\nextra: 1\n"),
            "extra: unknown field",
        ),
        (("environment: test", "environment: demo"), "with a different spec.ksef"),
        (
            ("keyAlgorithm: rsa-2048", "keyAlgorithm: rsa-4096"),
            "expected one of: ec-p256, rsa-2048",
        ),
    ],
)
def test_errors_name_file_line_and_field(edit: tuple[str, str], expected: str) -> None:
    found = errors(TOKENS, CERTS.replace(*edit))
    assert any(expected in line for line in found), found


def test_a_shared_context_must_log_in_the_same_way() -> None:
    other = CERTS.replace('vault: "ksef-admin/{nip}"', 'vault: "other/{nip}"')
    (line,) = errors(TOKENS, other)
    assert line.startswith("m1.yaml:15:7: spec.contexts[0]: context Nip:5265877635 logs in")


def test_a_certificate_secret_path_may_not_be_a_token_secret_path() -> None:
    clash = CERTS.replace(
        "  auth:\n", '  vault:\n    path: "ksef/{environment}/{nip}/{certificate}"\n  auth:\n', 1
    ).replace("name: offline", "name: erp")
    found = errors(TOKENS, clash)
    assert any("secret path secret/ksef/test/5265877635/erp" in line for line in found), found


def test_a_name_too_long_for_the_marker_is_refused() -> None:
    long_name = "n" * 63
    owner = "o" * 40
    text = CERTS.replace("name: acme", f"name: {owner}").replace(
        "name: offline", f"name: {long_name}"
    )
    found = errors(text)
    assert any("certificateName would have" in line for line in found), found


names = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,62}", fullmatch=True)
owners = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)
contexts = st.one_of(
    st.just(ContextId("Nip", NIP)), st.just(ContextId("InternalId", f"{NIP}-00042"))
)


@given(names, owners, contexts)
def test_marker_round_trips_whenever_it_fits(name: str, owner: str, context: ContextId) -> None:
    if name_problem(name, owner, context) is not None:
        return
    text = certificate_name(name, owner, context)
    assert 5 <= len(text) <= MAX_NAME
    marker = decode(text)
    assert marker is not None
    assert (marker.name, marker.owner, marker.context) == (name, owner, context.value)
    # KSeF's certificateName alphabet: letters, digits, '_', '-' and spaces only.
    assert all(ch.isalnum() or ch in "_- " for ch in text)


@given(st.text(max_size=120))
def test_arbitrary_names_decode_to_nothing_or_a_consistent_marker(text: str) -> None:
    marker = decode(text)
    if marker is not None:
        assert marker.render() == text


def test_hand_made_names_are_not_markers() -> None:
    assert decode("my certificate") is None
    assert decode("login ksefctl_acme_5265877635_short") is None
    assert decode(textwrap.dedent("login ksefctl_acme_5265877635_abcdefghij x")) is None


def test_the_expander_dispatches_on_the_kinds_own_name() -> None:
    from ksefctl.manifest.certificates import KIND
    from ksefctl.manifest.expand import CERTIFICATE_POLICY

    assert CERTIFICATE_POLICY == KIND
