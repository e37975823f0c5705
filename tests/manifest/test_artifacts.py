"""The schema, its packaged copy and the generated docs stay in step."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from ksefctl.manifest.docgen import generate
from ksefctl.manifest.model import PERMISSIONS
from ksefctl.manifest.schema import schema

ROOT = Path(__file__).resolve().parents[2]


def test_editor_schema_is_the_packaged_schema() -> None:
    assert (ROOT / "schemas/tokenpolicy.v1.json").read_bytes() == (
        ROOT / "ksefctl/schemas/tokenpolicy.v1.json"
    ).read_bytes()


def test_schema_is_valid_draft_2020_12_and_matches_ksef_permissions() -> None:
    loaded = schema()
    jsonschema.Draft202012Validator.check_schema(loaded)
    assert loaded["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert tuple(loaded["$defs"]["permissions"]["items"]["enum"]) == PERMISSIONS
    ksef = (
        json.loads(Path("/work/shared/ksef/open-api.json").read_text("utf-8"))
        if Path("/work/shared/ksef/open-api.json").exists()
        else None
    )
    if ksef is not None:
        assert tuple(ksef["components"]["schemas"]["TokenPermissionType"]["enum"]) == PERMISSIONS


def _properties(node: object) -> list[tuple[str, dict[str, object]]]:
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            found.append((name, prop))
        for key, value in node.items():
            if key != "if" and isinstance(value, dict | list):
                found += _properties(value)
    elif isinstance(node, list):
        for value in node:
            found += _properties(value)
    return found


def test_every_field_has_a_description() -> None:
    loaded = schema()
    defs = loaded["$defs"]
    for name, prop in _properties(loaded):
        ref = prop.get("$ref")
        target = defs[str(ref).rsplit("/", 1)[-1]] if ref else prop
        assert prop.get("description") or target.get("description"), name


def test_docs_are_generated_from_the_schema() -> None:
    committed = (ROOT / "docs/manifest.md").read_text("utf-8")
    assert committed == generate(), "run: python -m ksefctl.manifest.docgen > docs/manifest.md"
