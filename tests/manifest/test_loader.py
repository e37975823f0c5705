from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksefctl.manifest import ManifestErrors, load_manifests, parse_manifests
from ksefctl.manifest.durations import parse_duration
from ksefctl.manifest.identifiers import is_valid_nip, nip_check_digit
from ksefctl.manifest.model import ContextId, SecretRef
from ksefctl.manifest.sources import Source
from ksefctl.manifest.templates import TOKEN_PLACEHOLDERS, template_problems
from ksefctl.manifest.vault_auth import KUBERNETES_JWT_FILE, VaultAuthSpec

from .conftest import VALID

Write = Callable[..., str]


def _policy(owner: str, nips: list[str], extra: str = "", env: str = "test") -> str:
    contexts = "".join(f'    - nip: "{nip}"\n' for nip in nips)
    return (
        f"apiVersion: ksefctl/v1\nkind: TokenPolicy\nmetadata:\n  name: {owner}\nspec:\n"
        f"  ksef: {{environment: {env}}}\n  vault: {{path: '{{owner}}/{{context}}/{{token}}'}}\n"
        f"  auth: {{certificate: {{vault: 'adm/{{nip}}'}}}}\n"
        f"  defaults: {{tokens: [{{name: erp, permissions: [InvoiceRead]}}]}}\n{extra}"
        f"  contexts:\n{contexts}"
    )


def _nips(count: int, seed: int = 0) -> list[str]:
    out: list[str] = []
    n = 123456000 + seed * 7919
    while len(out) < count:
        n += 1
        digits = str(n)
        check = nip_check_digit(digits)
        if check is not None and digits[1:3] != "00":
            out.append(digits + str(check))
    return out


def test_expands_defaults_permission_sets_and_paths(write: Write) -> None:
    desired = load_manifests([write(VALID)])
    (policy,) = desired.policies
    assert (policy.owner, policy.environment, policy.base_url) == (
        "acme",
        "test",
        "https://api-test.ksef.mf.gov.pl/v2",
    )
    first, second = policy.contexts
    assert first.context == ContextId("Nip", "5265877635")
    assert [t.name for t in first.tokens] == ["erp"]
    assert [t.name for t in second.tokens] == ["erp", "reader"]  # context tokens extend defaults
    erp = first.tokens[0]
    assert erp.permissions == frozenset({"InvoiceRead", "InvoiceWrite"})
    assert erp.rotate_every == timedelta(days=90)
    assert erp.secret == SecretRef("secret", "ksef/test/5265877635/erp")
    assert erp.secret == policy.secret_for(first.context, "erp")
    assert first.auth.secret == SecretRef("secret", "ksef-admin/5265877635")
    reader = second.tokens[1]
    assert reader.description == "BI read-only"
    assert str(reader.location).endswith("m.yaml:25:11")


def test_context_token_overrides_default_of_same_name_and_can_opt_out(write: Write) -> None:
    text = VALID.replace(
        '    - nip: "5265877635"\n',
        '    - nip: "5265877635"\n      tokens: [{name: erp, permissions: [InvoiceRead]}]\n'
        '    - nip: "5260181596"\n      inheritDefaults: false\n',
    )
    by_nip = {c.context.value: c for c in load_manifests([write(text)]).contexts}
    assert by_nip["5265877635"].tokens[0].permissions == {"InvoiceRead"}
    assert by_nip["5265877635"].tokens[0].rotate_every is None
    assert by_nip["5260181596"].tokens == ()


def test_several_documents_directories_and_stdin(write: Write, tmp_path: Path) -> None:
    write(_policy("b-owner", ["5265877635"]), "dir/b.yml")
    write(
        _policy("a-owner", ["5265877635"]) + "---\n" + _policy("c-owner", ["7762811692"]),
        "dir/a.yaml",
    )
    write("not: a manifest", "dir/notes.txt")
    stdin = io.BytesIO(_policy("d-owner", ["5260181596"]).encode())
    desired = load_manifests([str(tmp_path / "dir"), "-", str(tmp_path / "dir" / "a.yaml")], stdin)
    assert [p.owner for p in desired.policies] == ["a-owner", "b-owner", "c-owner", "d-owner"]


def test_same_owner_in_two_files_merges_contexts(write: Write) -> None:
    a = write(_policy("acme", ["5265877635"]), "a.yaml")
    b = write(_policy("acme", ["7762811692"]), "b.yaml")
    (policy,) = load_manifests([a, b]).policies
    assert [c.context.value for c in policy.contexts] == ["5265877635", "7762811692"]


def test_every_error_of_every_file_is_reported(write: Write) -> None:
    a = write(VALID.replace('"5265877635"', '"5265877636"'), "a.yaml")
    b = write(
        VALID.replace("rotateEvery: 90d", "rotateEvery: 0d")
        .replace("name: acme", "name: beta")
        .replace("ksef/{environment}", "{owner}"),
        "b.yaml",
    )
    with pytest.raises(ManifestErrors) as caught:
        load_manifests([a, b])
    rendered = caught.value.render().splitlines()
    assert rendered[0].startswith(f"{a}:22:12: spec.contexts[0].nip: ")
    assert rendered[1].startswith(f"{b}:20:22: spec.defaults.tokens[0].rotateEvery: ")
    assert len(rendered) == 2
    assert "\n" not in str(caught.value)


def test_missing_file_and_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestErrors) as caught:
        load_manifests([str(tmp_path / "nope.yaml"), str(tmp_path / "empty")])
    messages = [i.message for i in caught.value.issues]
    assert "no such file or directory" in messages
    assert "directory holds no *.yaml or *.yml files" in messages


def test_only_empty_documents(write: Write) -> None:
    with pytest.raises(ManifestErrors, match="no TokenPolicy documents"):
        load_manifests([write("---\n---\n")])


def test_url_environment_names_and_vault_auth(write: Write) -> None:
    text = VALID.replace("environment: test", 'environment: "http://127.0.0.1:8080/v2/"').replace(
        "    mount: secret\n", "    mount: secret\n    auth: {method: kubernetes, role: ksefctl}\n"
    )
    (policy,) = load_manifests([write(text)]).policies
    assert (policy.environment, policy.base_url) == ("custom", "http://127.0.0.1:8080/v2")
    assert policy.contexts[0].tokens[0].secret.path == "ksef/custom/5265877635/erp"
    assert policy.vault_auth == VaultAuthSpec(
        method="kubernetes", mount="kubernetes", role="ksefctl", jwt_file=KUBERNETES_JWT_FILE
    )
    named = text.replace('8080/v2/"\n', '8080/v2/"\n    name: sandbox\n')
    assert load_manifests([write(named)]).policies[0].environment == "sandbox"


def test_validate_summary(
    write: Write, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(VALID, "a.yaml")
    b = write(_policy("other", ["5265877635"]), "b.yaml")
    assert cli(["validate", "-f", a, b]) == 0
    assert capsys.readouterr().out == "Valid: 2 owners, 3 contexts, 4 tokens.\n"
    assert cli(["validate", "-f", a]) == 0
    assert capsys.readouterr().out == "Valid: 1 owner, 2 contexts, 3 tokens.\n"


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(4)), st.randoms(use_true_random=False))
def test_expansion_is_independent_of_file_and_context_order(order: list[int], rnd: object) -> None:
    nips = _nips(12)
    chunks = [nips[0:3], nips[3:6], nips[6:9], nips[9:12]]
    owners = ["acme", "acme", "beta", "acme"]

    def files(perm: list[int]) -> list[Source]:
        out = []
        for i in perm:
            shuffled = list(chunks[i])
            rnd.shuffle(shuffled)  # type: ignore[attr-defined]
            out.append(Source(f"f{i}.yaml", _policy(owners[i], shuffled).encode()))
        return out

    assert parse_manifests(files(list(order))) == parse_manifests(files([0, 1, 2, 3]))


def test_thousands_of_contexts(write: Write) -> None:
    nips = _nips(3000)
    desired = load_manifests([write(_policy("bulk", nips))])
    assert len(desired.contexts) == 3000
    assert len({t.secret for c in desired.contexts for t in c.tokens}) == 3000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("P90D", timedelta(days=90)),
        ("PT12H", timedelta(hours=12)),
        ("P1W2DT3H4M5S", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "90", "P", "PT", "P1M", "P1Y", "1d1d", "d", "-1d", "1.5d", "99999999999999d"]
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_nip_check_digit() -> None:
    assert is_valid_nip("5265877635") and is_valid_nip("7762811692")
    assert not is_valid_nip("5265877636")
    assert nip_check_digit("123456789") is None  # sum mod 11 == 10: no valid NIP


@pytest.mark.parametrize(
    "template",
    ["ksef/{nip}/../{token}", "/ksef/{nip}/{token}", "ksef//{nip}/{token}", "ksef/{nip}/{token}/",
     "ksef/{nipp}/{token}", "ksef/{}/{token}", "ksef/{nip!r}/{token}", "ksef/{nip:>5}/{token}",
     "ksef/{nip}/{token", "./{nip}/{token}", "ksef\\{nip}/{token}"],
)  # fmt: skip
def test_template_escapes(template: str) -> None:
    assert template_problems(template, TOKEN_PLACEHOLDERS)
