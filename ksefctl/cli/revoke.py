"""``ksefctl revoke``: break-glass revocation after a leak."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ksefctl.cli import _common
from ksefctl.cli._session import observe_and_plan, print_failures
from ksefctl.errors import UsageError
from ksefctl.reconcile.executor import RevokeTarget, break_glass
from ksefctl.reconcile.model import PlanOptions


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "revoke", help="break-glass: revoke tokens of one company now", description=__doc__
    )
    _common.add_manifest_options(parser)
    parser.add_argument(
        "--nip",
        action="append",
        required=True,
        metavar="N",
        help="the company (NIP or InternalId); required",
    )
    _common.add_run_options(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--token", metavar="NAME", help="this managed token")
    which.add_argument(
        "--all-managed",
        action="store_true",
        help="every token this manifest's owner manages in the context",
    )
    which.add_argument(
        "--all",
        action="store_true",
        help="every token in the context, hand-made and other owners' too "
        "(needs CredentialsManage; asks for the NIP to be typed back)",
    )
    parser.add_argument(
        "--reason",
        default="break-glass revocation",
        help="recorded in the Vault metadata of revoked secrets",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS")
    parser.set_defaults(func=run, shard=None)


def run(args: argparse.Namespace) -> int:
    if args.all and not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("revoke --all needs confirmation: no terminal to ask on (pass --yes)")
        typed = input(
            f"This revokes EVERY token of {', '.join(args.nip)}. Type the NIP to confirm: "
        )
        if typed.strip() not in args.nip:
            print("Revocation cancelled.", file=sys.stderr)
            return 1
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    desired = _common.load_selected(args)
    if not desired.contexts:
        raise UsageError(f"no context for {', '.join(args.nip)} in the manifest")
    failed = 0
    async with observe_and_plan(args, PlanOptions(), lock=True, desired=desired) as outcome:
        print_failures(outcome.failures)
        failed += len(outcome.failures)
        policies = {p.owner: p for p in desired.policies}
        jobs = []
        for key in sorted(outcome.observed.observed.contexts, key=lambda k: (k[0], k[1])):
            seen = outcome.engine.observed_context(key)
            policy = policies[key[0]]
            targets = []
            for token in seen.tokens:
                ours = token.marker is not None and token.marker.owner == policy.owner
                if token.status in ("Revoking", "Revoked"):
                    continue
                if args.token and not (ours and token.marker and token.marker.token == args.token):
                    continue
                if args.all_managed and not ours:
                    continue
                name = token.marker.token if ours and token.marker else None
                secret = policy.secret_for(key[1], name) if name else None
                # Soft-delete only the secret that holds this very token.
                state = seen.secrets.get(name) if name else None
                if state is None or state.reference_number != token.reference_number:
                    secret = None
                version = state.version if state is not None else None
                targets.append(RevokeTarget(token.reference_number, name, secret, version))
            jobs.append((key, targets))
        results = await asyncio.gather(
            *(
                break_glass(outcome.engine.session(key), outcome.engine.store, targets, args.reason)
                for key, targets in jobs
            )
        )
    total = 0
    for (key, _), outcomes in zip(jobs, results, strict=True):
        for item in outcomes:
            total += 1
            stream = sys.stdout if item.ok else sys.stderr
            print(f"{_common.context_label(key)}: {item.message}", file=stream)
            failed += not item.ok
    print(f"\nRevoked {total - failed} of {total} tokens." if total else "\nNothing to revoke.")
    return 1 if failed else 0
