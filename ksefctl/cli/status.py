"""``ksefctl status``: every token per context, managed or not, with flags.

Read-only: it logs in, lists and reads Vault metadata, and never takes the
owner lock, so it can run next to an apply (or from a dashboard's cron).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ksefctl.cli import _common
from ksefctl.cli._session import observe_and_plan, print_failures
from ksefctl.errors import KsefctlError, UsageError
from ksefctl.manifest.durations import parse_duration
from ksefctl.reconcile.engine import Failure

if TYPE_CHECKING:  # imported when --grants / --certificates asks: every command loads this module
    from ksefctl.reconcile.certificates.audit import CertificateRow
    from ksefctl.reconcile.grants.audit import GrantRow
from ksefctl.reconcile.inventory import Inventory, TokenRow, inventory, inventory_json
from ksefctl.reconcile.model import PlanOptions
from ksefctl.reconcile.render import context_label


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
    parser.add_argument(
        "--grants",
        action="store_true",
        help="also list every permission grant per context, managed or not, with its dates "
        "(docs/grants.md)",
    )
    parser.add_argument(
        "--certificates",
        action="store_true",
        help="also list every KSeF certificate of each context's login subject, managed or "
        "not, with validity and renewal dates (docs/certificates.md)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    unused_for = None
    if args.unused_for:
        try:
            unused_for = parse_duration(args.unused_for)
        except ValueError as error:
            raise UsageError(f"--unused-for: {error}") from None
    return asyncio.run(_run(args, unused_for))


async def _run(args: argparse.Namespace, unused_for: Any) -> int:
    async with observe_and_plan(args, PlanOptions(), lock=False) as outcome:
        inv = inventory(
            outcome.observed.desired,
            outcome.observed.observed,
            outcome.engine.settings.clock(),
            unused_for,
        )
        grants = await _grants(outcome) if args.grants else None
        certificates = await _certificates(outcome) if args.certificates else None
    if args.json:
        document = inventory_json(inv)
        if grants is not None:
            document["grants"] = [row.to_json() for _, _, rows in grants for row in rows]
        if certificates is not None:
            document["certificates"] = [r.to_json() for _, rows in certificates for r in rows]
        document["failures"] = _common.failures_json(outcome.failures)
        document["warnings"] = outcome.warnings
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_inventory(inv, _common.failed_contexts(outcome.failures)))
        if grants is not None:
            from ksefctl.reconcile.grants.audit import render_grants

            sys.stdout.write("\n" + render_grants(grants))
        if certificates is not None:
            from ksefctl.reconcile.certificates.audit import render_certificates

            sys.stdout.write("\n" + render_certificates(certificates))
    print_failures(outcome.failures)
    return 1 if outcome.failures else 0


async def _grants(outcome: Any) -> list[tuple[str, str, list[GrantRow]]]:
    """Every grant of every observed context; contexts whose grants the manifest does not
    govern are read here (two queries each), the others were observed for the plan."""
    from ksefctl.reconcile.grants.audit import grant_rows
    from ksefctl.reconcile.grants.observe import observe_grants

    found = []
    for policy in outcome.observed.desired.policies:
        for context in policy.contexts:
            key = (policy.owner, context.context)
            seen = outcome.observed.observed.contexts[key].kinds.get("grants")
            if seen is None:
                try:
                    seen = await observe_grants(outcome.engine.session(key))
                except KsefctlError as error:
                    outcome.observed.failures.append(
                        Failure(policy.owner, context.context, "grants", str(error))
                    )
                    continue
            label = context_label(
                policy.owner, context.context, _common.context_names(outcome.desired)
            )
            found.append((label, policy.owner, grant_rows(policy.owner, context, seen)))
    return found


async def _certificates(outcome: Any) -> list[tuple[str, list[CertificateRow]]]:
    """Every certificate of every observed context's subject (one query where the manifest
    declares none; the others were observed for the plan)."""
    from ksefctl.reconcile.certificates.audit import certificate_rows
    from ksefctl.reconcile.certificates.observe import observe as observe_certificates

    found = []
    names = _common.context_names(outcome.desired)
    for policy in outcome.observed.desired.policies:
        for context in policy.contexts:
            key = (policy.owner, context.context)
            seen = outcome.observed.observed.contexts[key].kinds.get("certificate")
            if seen is None:
                try:
                    seen = await observe_certificates(
                        policy, context, outcome.engine.session(key), outcome.engine.store
                    )
                except KsefctlError as error:
                    outcome.observed.failures.append(
                        Failure(policy.owner, context.context, "certificates", str(error))
                    )
                    continue
            label = context_label(policy.owner, context.context, names)
            found.append((label, certificate_rows(policy, context, seen)))
    return found


HEADERS: tuple[str, ...] = (
    *("STATUS", "TOKEN", "REFERENCE", "PERMISSIONS", "AUTHOR", "CREATED", "AGE", "LAST USE"),
    *("VAULT", "ROTATE", "FLAGS"),
)


def render_inventory(inv: Inventory, failed_contexts: int = 0) -> str:
    lines: list[str] = []
    for summary in inv.contexts:
        lines.append(
            context_label(
                summary.owner,
                summary.context,
                {(summary.owner, summary.context): summary.name} if summary.name else None,
            )
        )
        table = [HEADERS] + [_cells(row) for row in inv.rows_of(summary)]
        widths = [max(len(r[i]) for r in table) for i in range(len(HEADERS))]
        if len(table) > 1:
            for cells in table:
                lines.append(
                    "  "
                    + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
                )
        line = (
            f"  {_count(summary.total, 'token')}: {summary.managed} managed, "
            f"{summary.other_owners} of other owners, {summary.unmanaged} hand-made; "
            f"{summary.flagged} flagged"
        )
        if summary.absent:
            line += f"; declared but not in KSeF: {', '.join(summary.absent)}"
        lines.append(line + ".")
        lines.append("")
    rows = inv.rows
    absent = sum(len(c.absent) for c in inv.contexts)
    total = (
        f"Total: {_count(len(inv.contexts), 'context')}, {_count(len(rows), 'token')} "
        f"({sum(r.ownership == 'managed' for r in rows)} managed, "
        f"{sum(r.ownership == 'other-owner' for r in rows)} of other owners, "
        f"{sum(r.ownership == 'unmanaged' for r in rows)} hand-made), "
        f"{sum(r.flagged for r in rows)} flagged"
    )
    if absent:
        total += f", {absent} declared but not in KSeF"
    if failed_contexts:
        total += f", {_count(failed_contexts, 'context')} not observed"
    lines.append(total + ".")
    return "\n".join(lines) + "\n"


def _cells(row: TokenRow) -> tuple[str, ...]:
    who = {
        "managed": row.name or "?",
        "other-owner": f"{row.managed_by}/{row.name}",
        "unmanaged": "(hand-made)",
    }[row.ownership]
    secret = {True: "yes", False: "MISSING" if "secret-missing" in row.flags else "no"}
    return (
        row.status,
        who,
        row.reference_number,
        ",".join(row.permissions),
        row.author,
        _date(row.created),
        f"{row.age_days}d",
        _date(row.last_used) if row.last_used else "never",
        secret.get(row.secret_in_vault, "-") if row.secret_in_vault is not None else "-",
        _date(row.rotation_due_at) if row.rotation_due_at else "-",
        ", ".join(_flag_text(row, flag) for flag in row.flags) or "-",
    )


def _flag_text(row: TokenRow, flag: str) -> str:
    if flag == "unused" and row.unused_days is not None:
        return f"unused {row.unused_days}d"
    if flag == "rotation-due" and row.rotation_due_at is not None:
        return f"rotation due since {_date(row.rotation_due_at)}"
    return flag


def _date(moment: datetime | None) -> str:
    return moment.astimezone(UTC).date().isoformat() if moment else "-"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
