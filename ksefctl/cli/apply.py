"""``ksefctl apply``: make KSeF and Vault match the manifest (or a saved plan)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ksefctl.cli import _common
from ksefctl.cli._session import observe_and_plan, print_failures
from ksefctl.cli.plan import add_lockout_option, add_match_option, adopt_match
from ksefctl.cli.progress import context_progress
from ksefctl.errors import KsefctlError, UsageError
from ksefctl.manifest.model import Desired
from ksefctl.reconcile.engine import ApplyReport, Failure
from ksefctl.reconcile.model import Action, KindChange, Plan, PlanOptions
from ksefctl.reconcile.planfile import SavedPlan, first_difference, load_plan
from ksefctl.reconcile.render import FORMAT_VERSION, Names, render_json, render_text


class StalePlan(KsefctlError):
    """The world changed between ``plan --out`` and ``apply PLAN``."""


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "apply", help="create, replace and revoke tokens to match the manifest", description=__doc__
    )
    parser.add_argument("plan_file", nargs="?", metavar="PLAN", help="a plan saved by plan --out")
    _common.add_manifest_options(parser, required=False)
    _common.add_selector_options(parser)
    _common.add_run_options(parser)
    _common.add_approve_option(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (apply.v1: the plan, each change's outcome, failures, "
        "warnings) instead of text; needs --auto-approve or a saved plan",
    )
    parser.add_argument(
        "--prune", action="store_true", help="also clean contexts that left the manifest"
    )
    parser.add_argument(
        "--allow-mass-prune",
        action="store_true",
        help=f"let --prune clean more than {MASS_PRUNE:.0%} of an owner's contexts "
        "(or all of them); without it such an apply is refused",
    )
    parser.add_argument(
        "--adopt", action="store_true", help="replace matching hand-made tokens with managed ones"
    )
    add_match_option(parser)
    add_lockout_option(parser)
    _common.add_lock_options(parser)
    parser.add_argument(
        "--lock-ttl",
        type=float,
        default=60.0,
        metavar="SECONDS",
        # A killed apply holds its owner's lock until the lease runs out; short leases let
        # the next run (or a test killing applies on purpose) take over sooner.
        help="lease of the owner lock, renewed while apply runs (default 60)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if bool(args.plan_file) == bool(args.files):
        raise UsageError("apply takes either -f MANIFEST or a saved PLAN file, not both or neither")
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    saved: SavedPlan | None = None
    plan_time = None
    if args.plan_file:
        saved = load_plan(args.plan_file)
        plan_time = _plan_time(saved, _common.parse_now(getattr(args, "now", None))())
        current = _common.manifest_digests(list(saved.sources))
        if current != saved.sources:
            raise StalePlan(
                f"the manifests changed since {args.plan_file} was made; run plan again"
            )
        args.files = list(saved.sources)
        options = saved.options
        desired, scope = _common.load_run(
            args.files,
            saved.selection.get("nip") or (),
            saved.selection.get("shard"),
            prune=options.prune,
        )
    else:
        desired, scope = _common.load_run(args.files, args.nip, args.shard, prune=args.prune)
        options = PlanOptions(
            adopt=args.adopt,
            prune=args.prune,
            adopt_match=adopt_match(args, desired),
            allow_lockout=args.allow_lockout,
        )
    if args.json and saved is None and not args.auto_approve:
        raise UsageError("apply --json needs --auto-approve or a saved plan: JSON has no prompt")
    report = ApplyReport()
    async with observe_and_plan(
        args, options, lock=True, desired=desired, prune=scope, plan_time=plan_time
    ) as outcome:
        plan = outcome.plan
        if saved is not None:
            _check_claim(args.plan_file, saved, outcome.plan, outcome.failures)
        if options.prune and not args.allow_mass_prune:
            _refuse_mass_prune(plan, desired)
        if not args.json:
            sys.stdout.write(
                render_text(
                    plan,
                    color=_common.use_color(args),
                    failed=_common.failed_contexts(outcome.failures),
                    names=_common.context_names(desired),
                )
            )
        print_failures(outcome.failures)
        if plan.empty and not args.json:
            return 1 if outcome.failures else 0
        if saved is None and not args.auto_approve and not confirm():
            print("Apply cancelled.", file=sys.stderr)
            return 1
        with context_progress("Applying", len(plan.contexts)) as p:
            outcome.engine.settings.on_context_done = p
            # The fresh plan, never the file's: the file only claims what may be done.
            if not plan.empty:
                report = await outcome.engine.apply(plan)
        # Before the locks are released: a lock lost meanwhile is reported after what was done.
        if args.json:
            print_failures(report.failures)
        else:
            print_report(report, outcome.failures)
    if args.json:
        document = apply_json(plan, report, outcome.failures, _common.context_names(desired))
        document["warnings"] = outcome.warnings
        json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    return 0 if report.ok and not outcome.failures else 1


def apply_json(
    plan: Plan, report: ApplyReport, observe_failures: Sequence[Failure], names: Names
) -> dict[str, Any]:
    """``apply --json`` (schemas/apply.v1.json): what was planned and what became of it."""
    outcomes = []
    counts: Counter[str] = Counter()
    for (owner, context), items in sorted(report.outcomes.items(), key=lambda kv: kv[0]):
        for item in items:
            change = item.change
            if isinstance(change, KindChange):
                kind, action, name = change.kind, change.action.name.lower(), change.name
            elif change is not None:
                kind, action, name = "token", change.action.name.lower(), change.token
            else:  # a Pending token waited for
                kind, action, name = "token", "wait", ""
            counts["ok" if item.ok else "failed"] += 1
            outcomes.append(
                {
                    "owner": owner,
                    "context": str(context),
                    "kind": kind,
                    "action": action,
                    "name": name,
                    "ok": item.ok,
                    "message": item.message,
                }
            )
    failures = [*observe_failures, *report.failures]
    return {
        "format_version": FORMAT_VERSION,
        "plan": render_json(plan, names),
        "outcomes": outcomes,
        "failures": _common.failures_json(failures),
        "summary": {
            "done": counts["ok"],
            "failed": counts["failed"] + _common.failed_contexts(failures),
            "ok": report.ok and not failures,
        },
    }


# --prune may clean at most this share of an owner's contexts without --allow-mass-prune:
# an emptied or truncated manifest (`contexts: []`) must not revoke a whole estate.
MASS_PRUNE = 0.25


def _refuse_mass_prune(plan: Plan, desired: Desired) -> None:
    declared: dict[str, int] = {}
    for context in desired.contexts:
        declared[context.owner] = declared.get(context.owner, 0) + 1
    keys = {(c.owner, c.context) for c in desired.contexts}
    pruned: dict[str, int] = {}
    for owner, _ in plan.contexts - keys:
        pruned[owner] = pruned.get(owner, 0) + 1
    for owner, count in sorted(pruned.items()):
        total = count + declared.get(owner, 0)
        if count > 1 and count > MASS_PRUNE * total:
            raise UsageError(
                f"--prune would clean {count} of owner {owner}'s {total} contexts (more than "
                f"{MASS_PRUNE:.0%}); nothing done — check the manifest, or add --allow-mass-prune"
            )


# A plan made on a machine whose clock runs a little ahead is still a plan made now.
CLOCK_SKEW = timedelta(minutes=5)


def _plan_time(saved: SavedPlan, now: datetime) -> datetime:
    made = saved.plan.created_at
    if made is None or made.tzinfo is None:
        raise StalePlan("the saved plan does not say when it was made; run plan again")
    if made > now + CLOCK_SKEW:
        raise StalePlan(f"the saved plan claims to be made in the future ({made}); run plan again")
    return made


def _check_claim(name: str, saved: SavedPlan, fresh: Plan, failures: Sequence[Failure]) -> None:
    """A saved plan is carried out only if a fresh plan makes exactly its changes."""
    if failures:
        print_failures(failures)
        raise StalePlan("some contexts could not be observed; the saved plan was not applied")
    if fresh.fingerprint != saved.plan.fingerprint:
        raise StalePlan(
            f"KSeF or Vault changed since {name} was made; run plan again and review the new plan"
        )
    difference = first_difference(saved.plan, fresh)
    if difference is not None:
        raise StalePlan(f"{name}: {difference}; nothing applied, run plan again")


def confirm() -> bool:
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to apply without confirmation: no terminal to ask on (pass --auto-approve)"
        )
    answer = input("\nDo you want to perform these actions? Only 'yes' will be accepted: ")
    return answer.strip() == "yes"


def print_report(report: ApplyReport, observe_failures: Sequence[Failure] = ()) -> None:
    done: Counter[Action] = Counter()
    kinds: Counter[str] = Counter()  # changes of the kinds beside tokens, done
    failed = 0
    for key, outcomes in sorted(report.outcomes.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        for item in outcomes:
            label = _common.context_label(key)
            if item.ok:
                if isinstance(item.change, KindChange):
                    kinds[item.change.kind] += 1
                elif item.change is not None:
                    done[item.change.action] += 1
                print(f"{label}: {item.message}")
            else:
                failed += 1
                print(f"Error: {label}: {item.message}", file=sys.stderr)
    print_failures(report.failures)
    # Contexts that could not even be observed were printed before the plan; count them here.
    failed += len(report.failures) + len(observe_failures)
    summary = (
        f"Apply complete: {done[Action.CREATE]} created, {done[Action.REPLACE]} replaced, "
        f"{done[Action.REVOKE]} revoked"
    )
    if done[Action.ADOPT]:
        summary += f", {done[Action.ADOPT]} adopted"
    if done[Action.MOVE]:
        summary += f", {done[Action.MOVE]} moved"
    for kind, count in sorted(kinds.items()):
        summary += f", {count} {kind} change{'s' if count != 1 else ''}"
    summary += f", {failed} failed." if failed else "."
    print(f"\n{summary}")
