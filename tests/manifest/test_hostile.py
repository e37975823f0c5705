"""Hostile input is refused with a located error, quickly, never with a traceback."""

from __future__ import annotations

import pytest

from ksefctl.manifest import ManifestErrors, parse_manifests
from ksefctl.manifest.sources import MAX_FILE_BYTES, read_sources
from ksefctl.manifest.sources import Source as S

from .conftest import VALID


def _issues(data: bytes) -> list[str]:
    with pytest.raises(ManifestErrors) as caught:
        parse_manifests([S("h.yaml", data)])
    return [str(i) for i in caught.value.issues]


def test_file_over_the_cap_is_not_read_whole(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "big.yaml"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    files, issues = read_sources([str(path)])
    assert files == []
    assert [str(i) for i in issues] == [f"{path}:1:1: file is larger than 10 MiB"]


def test_billion_laughs_is_refused_before_expansion() -> None:
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in "bcdefghi":
        prev = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    issues = _issues(bomb.encode())
    assert "h.yaml:1:4: a: YAML anchors (&name) are not supported" in issues
    assert any("aliases" in i for i in issues)


@pytest.mark.parametrize("depth", [33, 100_000])
def test_deep_nesting(depth: int) -> None:
    issues = _issues(b"[" * depth + b"]" * depth)
    # our own limit, or libyaml's (1000) when the parser gives up first
    assert any("nested deeper than 32 levels" in i or "nesting depth" in i for i in issues)


def test_deep_block_nesting() -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(60)) + "  " * 60 + "v\n"
    assert any(i.startswith("h.yaml:33:") and "nested deeper" in i for i in _issues(text.encode()))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a: 1\nb: \xc3\x28\n", "h.yaml:2:4: not valid UTF-8"),
        (b"a: 1\n\x00\n", "h.yaml:2:1: NUL byte; a manifest is UTF-8 text"),
        (b"\xff\xfea\x00", "h.yaml:1:4: NUL byte; a manifest is UTF-8 text"),
        (b"a: 1\na: 2\n", "h.yaml:2:1: a: duplicate key"),
        (b"a: !!binary aGk=\n", "h.yaml:1:4: a: YAML tag !!binary is not supported"),
        (b"a: !custom x\n", "h.yaml:1:4: a: YAML tag !custom is not supported"),
        (b"? [a, b]\n: 1\n", "h.yaml:1:3: mapping keys must be plain strings"),
        (b"a: \x07\n", "h.yaml:1:4: invalid YAML: control character U+0007 is not allowed"),
        (b"a: " + b"9" * 5000 + b"\n", "h.yaml:1:4: a: cannot read '99999999999999999999' as int"),
    ],
)
def test_refused_with_location(data: bytes, expected: str) -> None:
    assert expected in _issues(data)


def test_bom_is_accepted() -> None:
    desired = parse_manifests([S("b.yaml", b"\xef\xbb\xbf" + VALID.encode())])
    assert desired.policies[0].owner == "acme"


def test_huge_string_values_do_not_echo_back() -> None:
    issues = _issues(VALID.replace("environment: test", "environment: " + "x" * 100_000).encode())
    assert all(len(i) < 400 for i in issues)
