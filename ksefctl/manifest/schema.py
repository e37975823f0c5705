"""JSON Schema validation of one document, with located, readable messages.

The schema ships inside the package (``ksefctl/schemas/``); ``schemas/`` at the
repository root is the copy editors reference, kept identical by a test.
Messages come from the schema's ``errorMessage`` (the convention VS Code and
yaml-language-server honour) when it has one, so editors and ``ksefctl
validate`` say the same thing.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
import jsonschema
from jsonschema.exceptions import ValidationError

from ksefctl.manifest.errors import ManifestIssue
from ksefctl.manifest.yaml_safe import Document, Path, render_path

SCHEMA_FILE = "tokenpolicy.v1.json"
# One schema per manifest kind; a document of any other kind is judged by the TokenPolicy's.
SCHEMA_FILES = {"TokenPolicy": SCHEMA_FILE, "CertificatePolicy": "certificatepolicy.v1.json"}
_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "boolean": "true or false",
    "integer": "an integer",
    "number": "a number",
}


@cache
def schema(file: str = SCHEMA_FILE) -> dict[str, Any]:
    text = resources.files("ksefctl").joinpath("schemas", file).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator(file: str = SCHEMA_FILE) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(file))


@cache
def _fast_check(file: str = SCHEMA_FILE) -> Callable[[Any], Any]:
    return fastjsonschema.compile(schema(file))


def schema_file(document: Document) -> str:
    """The schema ``document`` is checked against, by its ``kind``."""
    kind = document.data.get("kind") if isinstance(document.data, dict) else None
    return SCHEMA_FILES.get(kind, SCHEMA_FILE) if isinstance(kind, str) else SCHEMA_FILE


def schema_issues(document: Document) -> list[ManifestIssue]:
    # The compiled check is an order of magnitude faster than jsonschema; the
    # slower validator runs only to explain what is wrong, with locations.
    file = schema_file(document)
    try:
        _fast_check(file)(document.data)
    except fastjsonschema.JsonSchemaException as fast_error:
        issues: list[ManifestIssue] = []
        for error in _validator(file).iter_errors(document.data):
            issues.extend(_issues(document, error))
        if not issues:  # the validators disagree: still refuse, with the compiled message
            where = document.at(())
            issues.append(ManifestIssue(where, "", str(fast_error)[:200]))
        return issues
    return []


def _issues(document: Document, error: ValidationError) -> list[ManifestIssue]:
    path: Path = tuple(error.absolute_path)
    keyword = str(error.validator)
    subschema: Any = error.schema if isinstance(error.schema, dict) else {}
    if "propertyNames" in error.schema_path:
        name = str(error.instance)
        child = (*path, name)
        message = _custom(subschema, keyword) or "invalid name"
        return [ManifestIssue(document.key_at(child), render_path(child), message)]
    if keyword == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        missing = [name for name in error.validator_value if name not in present]
        return [
            ManifestIssue(
                document.at(path), render_path((*path, name)), "required field is missing"
            )
            for name in missing
        ]
    if keyword == "additionalProperties":
        known = list(subschema.get("properties", {}))
        extra = [key for key in error.instance if key not in known]
        out = []
        for key in extra:
            child = (*path, key)
            hint = difflib.get_close_matches(key, known, n=1)
            suffix = f" (did you mean {hint[0]}?)" if hint else f" (allowed: {', '.join(known)})"
            out.append(
                ManifestIssue(document.key_at(child), render_path(child), "unknown field" + suffix)
            )
        return out
    message = _custom(subschema, keyword) or _message(error, keyword)
    return [ManifestIssue(document.at(path), render_path(path), message)]


def _custom(subschema: dict[str, Any], keyword: str) -> str | None:
    custom = subschema.get("errorMessage")
    if isinstance(custom, str):
        return custom
    if isinstance(custom, dict):
        value = custom.get(keyword)
        return value if isinstance(value, str) else None
    return None


def _message(error: ValidationError, keyword: str) -> str:
    value = error.validator_value
    if keyword == "type":
        expected = value if isinstance(value, list) else [value]
        return "must be " + " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in expected)
    if keyword == "enum":
        choices = [str(v) for v in value]
        hint = difflib.get_close_matches(str(error.instance), choices, n=1)
        suffix = f" (did you mean {hint[0]}?)" if hint else ""
        return (
            f"unknown value {_short(error.instance)}; expected one of: {', '.join(choices)}{suffix}"
        )
    if keyword == "const":
        return f"must be {value}"
    if keyword == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters"
    if keyword == "maxLength":
        return f"must be at most {value} characters"
    if keyword == "minItems":
        return f"must have at least {value} item{'s' if value != 1 else ''}"
    if keyword == "uniqueItems":
        return "must not repeat an item"
    if keyword == "pattern":
        return f"must match {value}"
    return str(error.message)[:200]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
