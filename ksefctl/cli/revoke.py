"""``ksefctl revoke``: break-glass revocation of one company's tokens after a leak.

``--token NAME`` and ``--all-managed`` touch only tokens whose ownership
marker names this manifest's owner; ``--all`` revokes every live token of the
context — hand-made and other owners' too — which KSeF allows only to a login
holding CredentialsManage there, and which asks for the NIP to be typed back.
The Vault secrets of revoked managed tokens are soft-deleted (recoverable with
``undelete``) with ``deletedReason: break-glass: REASON`` in their metadata.
A later ``apply`` creates fresh tokens for every name still declared.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ksefctl.cli import _common
from ksefctl.cli._session import observe_and_plan, print_failures
from ksefctl.errors import UsageError
from ksefctl.ksef import Session
from ksefctl.ksef import pacing as endpoints
from ksefctl.manifest.model import Policy
from ksefctl.reconcile.engine import Key
from ksefctl.reconcile.executor import RevokeTarget, break_glass
from ksefctl.reconcile.model import ObservedContext, PlanOptions
from ksefctl.vocabulary import USABLE

# Only these can still log in; Failed ones never could, Revoking ones are going.
LIVE = USABLE


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "revoke", help="break-glass: revoke tokens of one company now", description=__doc__
    )
    _common.add_manifest_options(parser)
    parser.add_argument("--nip", required=True, metavar="N", help="the company's NIP (required)")
    _common.add_run_options(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--token", metavar="NAME", help="every live managed token of this name")
    which.add_argument(
        "--all-managed",
        action="store_true",
        help="every live token this manifest's owner manages in the context",
    )
    which.add_argument(
        "--all",
        action="store_true",
        help="every live token in the context, hand-made and other owners' too "
        "(needs CredentialsManage; asks for the NIP to be typed back)",
    )
    parser.add_argument(
        "--reason",
        default="manual revocation",
        help="recorded in the Vault metadata of revoked secrets (deletedReason)",
    )
    _common.add_approve_option(parser, "the revocation (with --all: without typing the NIP back)")
    _common.add_lock_options(parser)
    # A leak may include the sessions ksefctl keeps in Vault: end and forget them too.
    parser.set_defaults(func=run, shard=None, end_cached_sessions=True)


def run(args: argparse.Namespace) -> int:
    # Refuse before contacting anything: a pipeline must never hang on a prompt,
    # nor wipe a company because a flag was mistyped.
    if args.all and not args.auto_approve and not sys.stdin.isatty():
        raise UsageError("revoke --all needs the NIP typed back on a terminal, or --auto-approve")
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    nip = args.nip
    args.nip = [nip]  # the selector takes a list
    # Its own message below names the one NIP revoke is about.
    desired = _common.load_run(args.files, args.nip, prune=True)[0]
    if not desired.contexts:
        raise UsageError(f"no context with NIP {nip} in the manifest")
    async with observe_and_plan(args, PlanOptions(), lock=True, desired=desired) as outcome:
        print_failures(outcome.failures)
        policies = {p.owner: p for p in desired.policies}
        jobs: list[tuple[Key, list[RevokeTarget]]] = []
        for key in sorted(outcome.observed.observed.contexts):
            seen = outcome.engine.observed_context(key)
            jobs.append((key, _targets(args, policies[key[0]], seen)))
        if args.token and not any(targets for _, targets in jobs):
            raise UsageError(
                f"no live token named {args.token!r} of this manifest's owner under NIP {nip}"
            )
        total = sum(len(targets) for _, targets in jobs)
        if not total:
            print("Nothing to revoke.")
            return 1 if outcome.failures else 0
        for key, targets in jobs:
            for target in targets:
                print(f"  - revoke {_common.context_label(key)}: {_label(target)}")
        if args.all and not args.auto_approve and not _typed_back(nip, total):
            print("Revocation cancelled.", file=sys.stderr)
            return 1
        for key, targets in jobs:
            if targets:
                await _say_how_long(outcome.engine.session(key), key, len(targets))
        results = await asyncio.gather(
            *(
                break_glass(outcome.engine.session(key), outcome.engine.store, targets, args.reason)
                for key, targets in jobs
            )
        )
    failed = len(outcome.failures)
    revoked = 0
    for (key, _), outcomes in zip(jobs, results, strict=True):
        for item in outcomes:
            if item.ok:
                revoked += 1
                print(f"{_common.context_label(key)}: {item.message}")
            else:
                failed += 1
                print(f"Error: {_common.context_label(key)}: {item.message}", file=sys.stderr)
    print(f"\nRevoked {revoked} of {total} tokens.")
    return 1 if failed else 0


async def _say_how_long(session: Session, key: Key, count: int) -> None:
    """Break-glass says up front how long KSeF's limits make it take (a lower bound)."""
    await session.learn_rate_limits()
    seconds, limits = session.pace(endpoints.REVOKE_TOKEN, count)
    if seconds >= 1:
        windows = ", ".join(f"{n} per {length:.0f} s" for length, n in limits.windows())
        print(
            f"{_common.context_label(key)}: {count} revocations take at least {seconds:.0f} s "
            f"at KSeF's limits ({windows}); longer waits are announced as they start.",
            file=sys.stderr,
            flush=True,
        )


def _targets(args: argparse.Namespace, policy: Policy, seen: ObservedContext) -> list[RevokeTarget]:
    targets = []
    for token in seen.tokens:
        if token.status not in LIVE:
            continue
        ours = token.marker is not None and token.marker.owner == policy.owner
        name = token.marker.token if ours and token.marker else None
        if args.token and name != args.token:
            continue
        if args.all_managed and not ours:
            continue
        # Soft-delete only the secret that holds this very token, at the version observed.
        state = seen.secrets.get(name) if name else None
        holds = state is not None and state.exists
        holds = holds and state is not None and state.reference_number == token.reference_number
        targets.append(
            RevokeTarget(
                token.reference_number,
                name,
                policy.secret_for(seen.context, name) if holds and name else None,
                state.version if holds and state is not None else None,
            )
        )
    return targets


def _label(target: RevokeTarget) -> str:
    if target.token:
        return f"{target.token} ({target.reference_number})"
    return f"{target.reference_number} (not managed by this manifest)"


def _typed_back(nip: str, total: int) -> bool:
    typed = input(
        f"\nThis revokes all {total} live tokens of NIP {nip}, including ones ksefctl did not "
        "make. Type the NIP to confirm: "
    )
    return typed.strip() == nip
