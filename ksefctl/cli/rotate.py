"""``ksefctl rotate``: rotate tokens now, create-before-destroy.

Each selected token gets a successor with the declared permissions, stored in
Vault and waited for until Active; only then is its predecessor revoked — at
once with ``--no-overlap``, otherwise by a later ``apply`` once the token's
``overlap`` has passed, so consumers have time to pick up the new value.
Other pending changes of the manifest are left for a normal ``apply``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from datetime import UTC
from typing import Any

from ksefctl.cli import _common
from ksefctl.cli._session import observe_and_plan, print_failures
from ksefctl.cli.apply import confirm, print_report
from ksefctl.errors import UsageError
from ksefctl.reconcile.model import Change, PlanOptions
from ksefctl.reconcile.render import render_text


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "rotate", help="rotate tokens now (create, store, then revoke)", description=__doc__
    )
    _common.add_manifest_options(parser)
    _common.add_selector_options(parser)
    _common.add_run_options(parser)
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="NAME",
        help="only this token name (repeatable); default: every declared token",
    )
    parser.add_argument(
        "--no-overlap",
        action="store_true",
        help="revoke the old token as soon as the new one is Active",
    )
    _common.add_approve_option(parser, "the rotation")
    _common.add_lock_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    desired = _common.load_selected(args)
    names = set(args.token)
    declared = {t.name for p in desired.policies for c in p.contexts for t in c.tokens}
    unknown = sorted(names - declared)
    if unknown:
        raise UsageError(f"no declared token named {', '.join(unknown)} in the selected contexts")
    targets = frozenset(
        (policy.owner, context.context, token.name)
        for policy in desired.policies
        for context in policy.contexts
        for token in context.tokens
        if not names or token.name in names
    )
    if not targets:
        raise UsageError("nothing to rotate: no declared token matches the selection")
    options = PlanOptions(force_rotate=targets, no_overlap=args.no_overlap)
    async with observe_and_plan(args, options, lock=True, desired=desired) as outcome:
        # Only the rotation asked for: other pending changes wait for a normal apply.
        plan = replace(
            outcome.plan,
            changes=tuple(
                c for c in outcome.plan.changes if (c.owner, c.context, c.token) in targets
            ),
            notes=(),
        )
        print(render_text(plan, color=_common.use_color(args)), end="")
        print_failures(outcome.failures)
        if plan.empty:
            return 1 if outcome.failures else 0
        if not args.auto_approve and not confirm():
            print("Rotation cancelled.", file=sys.stderr)
            return 1
        report = await outcome.engine.apply(plan)
    print_report(report)
    kept = [
        item.change
        for items in report.outcomes.values()
        for item in items
        if item.ok and isinstance(item.change, Change) and item.change.keep_until is not None
    ]
    for change in kept:
        assert change.keep_until is not None
        print(
            f"{_common.context_label((change.owner, change.context))}: the previous {change.token} "
            f"({change.reference_number}) stays valid for the overlap; the first apply after "
            f"{change.keep_until.astimezone(UTC):%Y-%m-%d %H:%M} UTC revokes it."
        )
    return 0 if report.ok and not outcome.failures else 1
