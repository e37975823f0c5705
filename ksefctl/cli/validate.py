"""``ksefctl validate -f F``: schema and semantic checks, offline."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ksefctl.cli._common import add_manifest_options
from ksefctl.manifest.errors import ManifestErrors
from ksefctl.manifest.load import load_manifests
from ksefctl.manifest.model import Desired

# ``validate --json`` is a contract like plan's and status's (docs/operations.md):
# fields are only ever added within one version.
FORMAT_VERSION = "1"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check manifests offline (schema and semantics)",
        description="Check manifests against the schema and the semantic rules; contacts nothing.",
    )
    add_manifest_options(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the result as JSON: valid, counts, contexts, and every located error",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        desired = load_manifests(args.files)
    except ManifestErrors as errors:
        if args.json:
            _dump({"format_version": FORMAT_VERSION, "valid": False, **_errors(errors)})
        else:
            print(errors.render(), file=sys.stderr)
        return 1
    contexts = desired.contexts
    tokens = sum(len(c.tokens) for c in contexts)
    if args.json:
        _dump({"format_version": FORMAT_VERSION, "valid": True, **_summary(desired), "errors": []})
        return 0
    print(
        f"Valid: {_count(len(desired.policies), 'owner')}, "
        f"{_count(len(contexts), 'context')}, {_count(tokens, 'token')}."
    )
    return 0


def _summary(desired: Desired) -> dict[str, Any]:
    contexts = desired.contexts
    return {
        "summary": {
            "owners": len(desired.policies),
            "contexts": len(contexts),
            "tokens": sum(len(c.tokens) for c in contexts),
        },
        "contexts": [
            {
                "owner": c.owner,
                "context": str(c.context),
                **({"name": c.name} if c.name else {}),
                "tokens": [t.name for t in c.tokens],
            }
            for c in contexts
        ],
    }


def _errors(errors: ManifestErrors) -> dict[str, Any]:
    return {
        "errors": [
            {
                "file": issue.location.file,
                "line": issue.location.line,
                "column": issue.location.column,
                "field": issue.field,
                "message": issue.message,
            }
            for issue in errors.issues
        ]
    }


def _dump(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
