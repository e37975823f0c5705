"""``ksefctl plan``: show what apply would do, optionally save it."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ksefctl.cli import _common
from ksefctl.cli._plan_output import add_output_options, output_format, print_plan
from ksefctl.cli._session import observe_and_plan, print_failures
from ksefctl.errors import UsageError
from ksefctl.manifest.model import Desired
from ksefctl.reconcile.model import PlanOptions
from ksefctl.reconcile.planfile import save_plan


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "plan", help="show what apply would change", description=__doc__
    )
    _common.add_manifest_options(parser)
    _common.add_selector_options(parser)
    _common.add_run_options(parser)
    parser.add_argument("--out", metavar="PLAN", help="save the plan for `ksefctl apply PLAN`")
    add_output_options(parser)
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when there are changes, 0 when none, 1 on error",
    )
    parser.add_argument(
        "--prune", action="store_true", help="also clean contexts that left the manifest"
    )
    parser.add_argument(
        "--adopt", action="store_true", help="offer to adopt matching hand-made tokens"
    )
    add_match_option(parser)
    add_lockout_option(parser)
    parser.set_defaults(func=run)


def add_lockout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-lockout",
        action="store_true",
        help="carry out grant changes that remove the CredentialsManage ksefctl logs in with, "
        "or the last CredentialsManage holder of a context (refused without it)",
    )


def add_match_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="NAME=TEXT",
        help="with --adopt: the hand-made token whose description contains TEXT "
        "(case-insensitive) becomes declared token NAME, whatever its permissions; repeatable",
    )


def adopt_match(
    args: argparse.Namespace, desired: Desired | None = None
) -> tuple[tuple[str, str], ...]:
    """``--match`` pairs; with ``desired``, each NAME must be a token the selected contexts declare."""
    pairs = []
    for item in args.match:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or len(text.strip()) < 3:
            raise UsageError(
                f"--match takes NAME=TEXT with at least 3 characters of text: {item!r}"
            )
        pairs.append((name.strip(), text.strip()))
    if pairs and not args.adopt:
        raise UsageError("--match only makes sense with --adopt")
    if desired is not None:
        declared = {t.name for c in desired.contexts for t in c.tokens}
        unknown = sorted({name for name, _ in pairs} - declared)
        if unknown:
            raise UsageError(
                f"--match {', '.join(unknown)}: no token of that name is declared "
                "in the selected contexts"
            )
    return tuple(pairs)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    if args.out and "-" in args.files:
        raise UsageError(
            "--out cannot save a plan of a manifest read from stdin (-f -): apply re-reads "
            "the manifests a plan names; write the manifest to a file and plan that"
        )
    output_format(args)  # a contradictory choice is refused before anything is contacted
    desired, scope = _common.load_run(args.files, args.nip, args.shard, prune=args.prune)
    options = PlanOptions(
        adopt=args.adopt,
        prune=args.prune,
        adopt_match=adopt_match(args, desired),
        allow_lockout=args.allow_lockout,
    )
    async with observe_and_plan(args, options, lock=False, desired=desired, prune=scope) as outcome:
        plan, failures = outcome.plan, outcome.failures
        if args.out:
            save_plan(
                args.out,
                plan,
                sources=_common.manifest_digests(args.files),
                options=options,
                selection={"nip": list(args.nip), "shard": args.shard},
            )
    print_plan(args, plan, failures, _common.context_names(desired), warnings=outcome.warnings)
    if output_format(args) == "text" and args.out:
        print(f"\nSaved the plan to {args.out}. Apply exactly it with: ksefctl apply {args.out}")
    print_failures(failures)
    if failures:
        return 1
    if args.detailed_exitcode and not plan.empty:
        return 2
    return 0
