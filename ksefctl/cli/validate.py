"""``ksefctl validate -f F``: schema and semantic checks, offline."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ksefctl.cli._common import add_manifest_options
from ksefctl.manifest.errors import ManifestErrors
from ksefctl.manifest.load import load_manifests


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check manifests offline (schema and semantics)",
        description="Check manifests against the schema and the semantic rules; contacts nothing.",
    )
    add_manifest_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        desired = load_manifests(args.files)
    except ManifestErrors as errors:
        print(errors.render(), file=sys.stderr)
        return 1
    contexts = desired.contexts
    tokens = sum(len(c.tokens) for c in contexts)
    print(
        f"Valid: {_count(len(desired.policies), 'owner')}, "
        f"{_count(len(contexts), 'context')}, {_count(tokens, 'token')}."
    )
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
