"""``ksefctl show PLAN``: print a saved plan — for people, as JSON, or as Markdown for a review.

Reads the file only: nothing is contacted and nothing is checked against
KSeF or Vault (``apply PLAN`` does that).  Company names come from the
manifests the plan was made from, when they are still readable.
"""

from __future__ import annotations

import argparse
from typing import Any

from ksefctl.cli import _common
from ksefctl.cli._plan_output import add_output_options, output_format, print_plan
from ksefctl.errors import KsefctlError
from ksefctl.manifest import load_manifests
from ksefctl.reconcile.planfile import SavedPlan, load_plan
from ksefctl.reconcile.render import Names


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "show", help="print a plan saved by plan --out", description=__doc__
    )
    parser.add_argument("plan_file", metavar="PLAN", help="a plan saved by plan --out")
    add_output_options(parser)
    parser.add_argument("--no-color", action="store_true", help="never colour the output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args)
    saved = load_plan(args.plan_file)
    names = _names(saved)
    if fmt == "text" and not args.compact:
        print(_provenance(args.plan_file, saved) + "\n")
    print_plan(args, saved.plan, (), names, title=f"ksefctl plan ({args.plan_file})")
    return 0


def _names(saved: SavedPlan) -> Names | None:
    # Names are a courtesy: a manifest moved or changed since only costs them.
    try:
        return _common.context_names(load_manifests(list(saved.sources)))
    except (KsefctlError, OSError):
        return None


def _provenance(path: str, saved: SavedPlan) -> str:
    made = saved.plan.created_at
    when = made.isoformat(timespec="seconds") if made else "an unknown time"
    lines = [f"Plan {path}, made at {when} from {', '.join(saved.sources) or 'no files'}"]
    selection = [f"--nip {n}" for n in saved.selection.get("nip") or ()]
    if saved.selection.get("shard"):
        selection.append(f"--shard {saved.selection['shard']}")
    options = [
        flag
        for flag, on in (
            ("--adopt", saved.options.adopt),
            ("--prune", saved.options.prune),
            ("--no-overlap", saved.options.no_overlap),
        )
        if on
    ]
    if selection or options:
        lines.append(f"with {' '.join([*selection, *options])}")
    lines.append(f"Apply exactly it with: ksefctl apply {path}")
    return "\n".join(lines)
