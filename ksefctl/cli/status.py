"""``ksefctl status``: every token per context, managed or not, with flags."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ksefctl.cli import _common
from ksefctl.cli._session import observe_and_plan, print_failures
from ksefctl.manifest.durations import parse_duration
from ksefctl.reconcile.inventory import Inventory, inventory, inventory_json
from ksefctl.reconcile.model import PlanOptions


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "status", help="inventory of every token per context", description=__doc__
    )
    _common.add_manifest_options(parser)
    _common.add_selector_options(parser)
    _common.add_run_options(parser)
    parser.add_argument("--json", action="store_true", help="machine output (status.v1)")
    parser.add_argument(
        "--unused-for",
        metavar="DURATION",
        help="flag Active tokens not used for this long (e.g. 30d)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    unused_for = parse_duration(args.unused_for) if args.unused_for else None
    async with observe_and_plan(args, PlanOptions(), lock=False) as outcome:
        inv = inventory(
            outcome.observed.desired,
            outcome.observed.observed,
            outcome.engine.settings.clock(),
            unused_for,
        )
    if args.json:
        document = inventory_json(inv)
        document["failures"] = [
            {"owner": f.owner, "context": str(f.context), "stage": f.stage, "message": f.message}
            for f in outcome.failures
        ]
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_inventory(inv))
    print_failures(outcome.failures)
    return 1 if outcome.failures else 0


def render_inventory(inv: Inventory) -> str:
    lines: list[str] = []
    for summary in inv.contexts:
        lines.append(f"{summary.context} (owner {summary.owner})")
        rows = [r for r in inv.rows if (r.owner, r.context) == (summary.owner, summary.context)]
        for row in rows:
            who = {
                "managed": row.name or "?",
                "other-owner": f"{row.managed_by}/{row.name}",
                "unmanaged": "(hand-made)",
            }[row.ownership]
            used = row.last_used.date().isoformat() if row.last_used else "never"
            secret = {True: "vault:yes", False: "vault:MISSING", None: ""}[row.secret_in_vault]
            flags = f"  [{', '.join(row.flags)}]" if row.flags else ""
            lines.append(
                f"  {row.status:<8} {who:<24} {row.reference_number}  "
                f"{','.join(row.permissions)}  age {row.age_days}d  used {used}  {secret}{flags}"
            )
        lines.append(
            f"  {summary.total} tokens: {summary.managed} managed, {summary.other_owners} "
            f"other owners', {summary.unmanaged} hand-made; {summary.flagged} flagged"
        )
    total = len(inv.rows)
    flagged = sum(1 for r in inv.rows if r.flags)
    lines.append(f"\n{len(inv.contexts)} contexts, {total} tokens, {flagged} flagged.")
    return "\n".join(lines) + "\n"
