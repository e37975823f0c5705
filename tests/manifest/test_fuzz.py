"""Random YAML and near-valid mutations: only ManifestErrors, always located."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ksefctl.manifest import ManifestErrors, parse_manifests
from ksefctl.manifest.schema import _fast_check, schema
from ksefctl.manifest.sources import Source

from .conftest import VALID

BASE: dict[str, Any] = yaml.safe_load(VALID)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["", "5265877635", "90d", "P1D", "{nip}", "../x", "InvoiceRead", "erp", "-"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)  # fmt: skip


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths[1:]))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.text(max_size=12))] = draw(json_values)
        elif isinstance(parent[path[-1]], list):
            parent[path[-1]].append(draw(json_values))
    return doc


def _check(data: bytes) -> None:
    try:
        parse_manifests([Source("f.yaml", data)])
    except ManifestErrors as errors:
        assert errors.issues
        for issue in errors.issues:
            assert issue.location.file == "f.yaml"
            assert issue.location.line >= 1 and issue.location.column >= 1
            assert "\n" not in str(issue)


@settings(max_examples=300, deadline=None)
@given(mutated())
def test_mutations_of_a_valid_manifest(doc: Any) -> None:
    _check(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    _check(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _check(data)


yaml_lines = st.lists(
    st.sampled_from(
        ["a:", "  - b", "- [", "]", "{", "}", "&x y", "*x", "!!str", "? k", ": v", "---", "...",
         "'q", '"e\\', "  k: v", "\t", "#", "apiVersion: ksefctl/v1", "kind: TokenPolicy", "spec:",
         "  contexts:", "    - nip: '5265877635'", "<<: *x", "%YAML 1.1", "|", ">-"]
    ),
    max_size=15,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(yaml_lines)
def test_random_yaml_shapes(lines: list[str]) -> None:
    _check("\n".join(lines).encode())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=mutated())
def test_validate_exits_1_with_a_located_error(
    doc: Any,
    tmp_path_factory: pytest.TempPathFactory,
    cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "m.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    code = cli(["validate", "-f", str(path)])
    out = capsys.readouterr()
    if code == 0:
        assert out.out.startswith("Valid: ")
    else:
        assert code == 1
        assert out.err and all(line.startswith(f"{path}:") for line in out.err.splitlines())


@settings(max_examples=300, deadline=None)
@given(mutated())
def test_compiled_and_reference_validators_agree(doc: Any) -> None:
    reference = jsonschema.Draft202012Validator(schema()).is_valid(doc)
    try:
        _fast_check()(doc)
        fast = True
    except Exception:
        fast = False
    assert fast == reference
