"""How plan and show print a plan: text (full or ``--compact``), JSON, or Markdown for reviews."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ksefctl.cli import _common
from ksefctl.errors import UsageError
from ksefctl.reconcile.engine import Failure
from ksefctl.reconcile.model import Plan
from ksefctl.reconcile.render import (
    Names,
    render_compact,
    render_json,
    render_markdown,
    render_text,
)

FORMATS = ("text", "json", "markdown")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="text (default), json (plan.v1, as --json) or markdown "
        "(a summary table and the folded plan, for a pull-request comment)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON (plan.v1)")
    parser.add_argument(
        "--markdown", action="store_true", help="print the plan as Markdown (as --format markdown)"
    )
    parser.add_argument(
        "--compact",
        action="store_true",
        help="text: one line per context with its counts (+create ~replace -revoke !adopt), "
        "for hundreds of companies",
    )


def output_format(args: argparse.Namespace) -> str:
    chosen = {args.format} - {None}
    if args.json:
        chosen.add("json")
    if args.markdown:
        chosen.add("markdown")
    if len(chosen) > 1:
        raise UsageError(f"choose one output format, not {' and '.join(sorted(chosen))}")
    fmt = chosen.pop() if chosen else "text"
    if args.compact and fmt != "text":
        raise UsageError("--compact shapes the text output; it does not combine with " + fmt)
    return fmt


def print_plan(
    args: argparse.Namespace,
    plan: Plan,
    failures: Sequence[Failure] = (),
    names: Names | None = None,
    title: str = "ksefctl plan",
    warnings: list[dict[str, Any]] | None = None,
) -> None:
    fmt = output_format(args)
    failed = _common.failed_contexts(failures)
    if fmt == "json":
        document = render_json(plan, names)
        document["failures"] = _common.failures_json(failures)
        if warnings is not None:  # a run's KSeF X-System-Warning values (show has none)
            document["warnings"] = warnings
        json.dump(document, sys.stdout, indent=2, sort_keys=False, ensure_ascii=False)
        sys.stdout.write("\n")
    elif fmt == "markdown":
        sys.stdout.write(
            render_markdown(
                plan,
                failed=failed,
                names=names,
                failures=[f"{f}" for f in failures],
                title=title,
            )
        )
    elif args.compact:
        sys.stdout.write(render_compact(plan, failed=failed, names=names))
    else:
        sys.stdout.write(
            render_text(plan, color=_common.use_color(args), failed=failed, names=names)
        )
