"""Options and output helpers shared by the sub-commands that talk to KSeF."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ksefctl.errors import UsageError
from ksefctl.manifest import load_manifests
from ksefctl.manifest.model import ContextId, Desired
from ksefctl.reconcile.engine import Failure, Key, PruneScope, RunSettings
from ksefctl.reconcile.planfile import KIND as PLAN_KIND
from ksefctl.reconcile.selection import Shard, select, selector
from ksefctl.vault.config import ALLOW_HTTP_VARIABLE


def add_manifest_options(
    parser: argparse.ArgumentParser,
    required: bool = True,
    help: str = "manifest file, directory (every *.yaml/*.yml) or - for stdin; repeatable",
) -> None:
    """``-f`` as every manifest-reading command takes it: repeatable, several paths each."""
    parser.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="extend",
        nargs="+",
        default=[],
        metavar="F",
        required=required,
        help=help,
    )


def add_selector_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nip", action="append", default=[], metavar="N", help="only this NIP (repeatable)"
    )
    parser.add_argument(
        "--shard", metavar="K/N", help="only the K-th of N stable shards of the contexts"
    )


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


class _AllowInsecureVault(argparse.Action):
    """The command-line spelling of KSEFCTL_VAULT_ALLOW_HTTP=1, which the Vault store reads
    like the other VAULT_* settings."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        help = kwargs.get("help")
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=False,
            help=help if isinstance(help, str) else None,
        )

    def __call__(self, *args: object, **kwargs: object) -> None:
        os.environ[ALLOW_HTTP_VARIABLE] = "1"


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--parallelism",
        type=positive_int,
        default=None,
        metavar="N",
        help="contexts handled at once (default: 64)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="fail a context (saying when to retry) rather than wait longer than this for "
        "KSeF's rate limits; waits over 5 s are announced either way (default: no bound)",
    )
    parser.add_argument(
        "--activation-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for a new token to become Active (default 300)",
    )
    parser.add_argument(
        "--ca-bundle", metavar="FILE", help="CA certificates to trust for KSeF (PEM)"
    )
    parser.add_argument(
        "--allow-insecure-vault",
        action=_AllowInsecureVault,
        help="send the Vault token over plain http to another machine "
        f"(env {ALLOW_HTTP_VARIABLE}=1); without it, http:// is for this machine only",
    )
    parser.add_argument(
        "--now",
        help=argparse.SUPPRESS,  # plan as of another moment (RFC 3339); for what-if runs and tests
    )
    parser.add_argument(
        "--no-session-cache",
        action="store_true",
        help="log into every context afresh and end each session at the end of the run, "
        "instead of resuming sessions kept in Vault (env KSEFCTL_SESSION_CACHE=off)",
    )
    parser.add_argument("--no-color", action="store_true", help="never colour the output")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log requests (-v) and details (-vv)"
    )


def add_approve_option(parser: argparse.ArgumentParser, what: str = "the changes") -> None:
    """``--auto-approve`` (documented) and ``--yes`` (its alias): the same on every command."""
    parser.add_argument(
        "--auto-approve",
        "--yes",
        dest="auto_approve",
        action="store_true",
        help=f"carry out {what} without asking for confirmation (--yes is the same)",
    )


def add_lock_options(parser: argparse.ArgumentParser) -> None:
    """The owner lock every writing command takes (apply, rotate, revoke)."""
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another run of the same owner to release its lock (default 60)",
    )


def load_selected(args: argparse.Namespace) -> Desired:
    return load_run(args.files, getattr(args, "nip", ()), getattr(args, "shard", None))[0]


def load_run(
    files: Sequence[str],
    nips: Sequence[str] = (),
    shard_text: str | None = None,
    *,
    prune: bool = False,
) -> tuple[Desired, PruneScope]:
    """The selected part of the manifests, and what ``--prune`` may clean beyond them.

    A ``--nip`` no manifest declares is refused (a typo would otherwise plan
    nothing and exit 0), unless ``prune``: a context that left the manifests is
    exactly what ``--prune --nip`` is for.
    """
    refuse_saved_plans(files)
    shard = Shard.parse(shard_text) if shard_text else None
    desired = load_manifests(list(files))
    if not prune:
        declared = {c.context.nip for c in desired.contexts} | {
            c.context.value for c in desired.contexts
        }
        unknown = [nip for nip in dict.fromkeys(nips) if nip not in declared]
        if unknown:
            raise UsageError(
                f"--nip {', '.join(unknown)}: no such context in the manifests "
                "(with --prune, a context that left them may be named)"
            )
    scope = PruneScope(
        declared=frozenset((p.owner, c.context) for p in desired.policies for c in p.contexts),
        selected=selector(nips, shard),
    )
    return select(with_vault_role(desired), nips, shard), scope


# Pipelines log in with one manifest but two Vault roles: a read-only one for
# pull-request plans and a writing one for the apply on main (docs/operations.md).
VAULT_ROLE_VARIABLE = "KSEFCTL_VAULT_ROLE"


def with_vault_role(desired: Desired, environ: Mapping[str, str] | None = None) -> Desired:
    """``desired`` with ``spec.vault.auth.role`` replaced by ``$KSEFCTL_VAULT_ROLE``, when set."""
    role = (os.environ if environ is None else environ).get(VAULT_ROLE_VARIABLE, "").strip()
    if not role:
        return desired
    if not any(
        p.vault_auth is not None and p.vault_auth.method != "token" for p in desired.policies
    ):
        raise UsageError(
            f"{VAULT_ROLE_VARIABLE} is set, but no manifest logs into Vault by a role "
            "(spec.vault.auth method approle, jwt or kubernetes)"
        )
    return replace(
        desired,
        policies=tuple(
            replace(p, vault_auth=replace(p.vault_auth, role=role))
            if p.vault_auth is not None and p.vault_auth.method != "token"
            else p
            for p in desired.policies
        ),
    )


def refuse_saved_plans(files: Sequence[str]) -> None:
    """A saved plan given to ``-f`` (``apply -f F PLAN`` puts PLAN there) is named as such."""
    for name in files:
        path = Path(name)
        if name == "-" or not path.is_file():
            continue
        with path.open("rb") as file:
            head = file.read(4096)
        if head.lstrip().startswith(b"{") and f'"kind": "{PLAN_KIND}"'.encode() in head:
            raise UsageError(
                f"{name} is a saved plan, not a manifest: apply it alone with "
                f"`ksefctl apply {name}` (without -f)"
            )


def manifest_digests(files: Sequence[str]) -> dict[str, str]:
    """SHA-256 of every manifest file a run read, so a saved plan can tell they changed."""
    digests: dict[str, str] = {}
    for name in files:
        if name == "-":
            continue
        path = Path(name)
        paths = sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")]) if path.is_dir() else [path]
        for item in paths:
            try:
                digests[str(item.resolve())] = hashlib.sha256(item.read_bytes()).hexdigest()
            except OSError as error:
                raise UsageError(
                    f"cannot read manifest {item}: {error.strerror or error}"
                ) from None
    return digests


def parse_now(text: str | None) -> Callable[[], datetime]:
    if not text:
        return lambda: datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--now must be an RFC 3339 time, not {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return lambda: moment


def run_settings(
    args: argparse.Namespace, progress: Callable[[Key, bool], None] | None
) -> RunSettings:
    if args.parallelism is not None:
        parallelism = args.parallelism
    else:
        text = os.environ.get("KSEFCTL_PARALLELISM", "64")
        try:
            parallelism = positive_int(text)
        except argparse.ArgumentTypeError as error:
            raise UsageError(f"KSEFCTL_PARALLELISM {error}") from None
    cache_off = getattr(args, "no_session_cache", False) or os.environ.get(
        "KSEFCTL_SESSION_CACHE", ""
    ).strip().lower() in ("0", "off", "false", "no")
    return RunSettings(
        # Break-glass revoke ends cached sessions whatever the switch says: they may have leaked.
        session_cache="end"
        if getattr(args, "end_cached_sessions", False)
        else ("off" if cache_off else "use"),
        parallelism=parallelism,
        activation_timeout_s=args.activation_timeout,
        ca_bundle=args.ca_bundle,
        clock=parse_now(args.now),
        on_context_done=progress,
        max_wait_s=getattr(args, "max_wait", None),
        on_wait=announce_wait,
    )


def announce_wait(where: str, endpoint: str, seconds: float, why: str) -> None:
    """A rate-limit wait long enough to look like a hang, said on stderr as it starts."""
    print(
        f"Waiting {seconds:.0f} s in {where}: KSeF's rate limit of {endpoint} ({why}); "
        "--max-wait bounds this",
        file=sys.stderr,
        flush=True,
    )


def use_color(args: argparse.Namespace, stream: TextIO = sys.stdout) -> bool:
    if getattr(args, "no_color", False) or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


def context_label(key: tuple[str, ContextId]) -> str:
    return f"{key[1]} ({key[0]})"


def failures_json(failures: Sequence[Failure]) -> list[dict[str, str]]:
    """The ``failures`` array of ``plan --json`` and ``status --json``."""
    return [
        {"owner": f.owner, "context": str(f.context), "stage": f.stage, "message": f.message}
        for f in failures
    ]


def failed_contexts(failures: Sequence[Failure]) -> int:
    """How many contexts failed (a context may fail at more than one stage)."""
    return len({(f.owner, f.context) for f in failures})


def context_names(desired: Desired) -> dict[tuple[str, ContextId], str]:
    """Company names the manifests give (``contexts[].name``), for plan, status and show."""
    return {(c.owner, c.context): c.name for c in desired.contexts if c.name}
