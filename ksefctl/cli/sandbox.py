"""``ksefctl sandbox``: a local KSeF simulator and OpenBao, ready for apply.

``eval "$(ksefctl sandbox up)"`` starts both, gives every company of the
manifest (default manifests/quickstart.yaml) a self-signed owner certificate
in Vault and sets VAULT_ADDR and VAULT_TOKEN; ``ksefctl sandbox down`` stops
everything.  The directory defaults to $KSEFCTL_SANDBOX_DIR or
~/.local/state/ksefctl/sandbox.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

from ksefctl import playground
from ksefctl.cli._common import add_manifest_options
from ksefctl.errors import UsageError
from ksefctl.manifest import load_manifests

QUICKSTART = Path("manifests/quickstart.yaml")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "sandbox",
        help="a local simulator + Vault playground",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="sandbox directory (default $KSEFCTL_SANDBOX_DIR or ~/.local/state/ksefctl/sandbox)",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser(
        "up", help="start (or reuse) the sandbox, seed certificates, print export lines"
    )
    add_manifest_options(
        up,
        required=False,
        help=f"manifests whose contexts get owner certificates (default {QUICKSTART})",
    )
    up.add_argument(
        "--sim-port",
        type=int,
        default=None,
        help="simulator port (default: the port of the manifest's environment URL, "
        f"else {playground.DEFAULT_SIM_PORT})",
    )
    up.add_argument(
        "--vault-port",
        type=int,
        default=None,
        help=f"OpenBao port (default ${playground.VAULT_PORT_VARIABLE} or "
        f"{playground.DEFAULT_VAULT_PORT}; a free one if that is taken)",
    )
    up.set_defaults(func=_up)
    env = actions.add_parser("env", help="print the export lines for VAULT_ADDR and VAULT_TOKEN")
    env.set_defaults(func=_env)
    status = actions.add_parser("status", help="is the sandbox running? (exit 0 if so)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)
    down = actions.add_parser(
        "down", help="stop the simulator and OpenBao (both forget everything: in-memory state)"
    )
    down.set_defaults(func=_down)


def _directory(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir else playground.default_dir()


def _up(args: argparse.Namespace) -> int:
    files = args.files or ([str(QUICKSTART)] if QUICKSTART.exists() else [])
    desired = load_manifests(files) if files else None
    info, report = playground.up(
        _directory(args), desired, sim_port=args.sim_port, vault_port=args.vault_port
    )
    # Only the export lines go to stdout, so `eval "$(ksefctl sandbox up)"` is all it takes.
    print(info.env_lines(), end="")
    notes = [f"KSeF simulator: {info.sim_url}", f"OpenBao:        {info.vault_addr}"]
    if report is None:
        notes.append("No manifest given: no certificates were seeded (use -f MANIFEST).")
    else:
        notes.append(
            f"Owner certificates in Vault: {len(report.seeded)} new, "
            f"{len(report.present)} already there."
        )
        if report.granted:
            notes.append(
                f"{len(report.granted)} contexts share a certificate: its company was granted "
                "CredentialsManage and the tokens' permissions there."
            )
        if report.skipped:
            notes.append(
                f"{len(report.skipped)} contexts log in with a KSeF token; "
                "store one for them yourself."
            )
    notes.append("Stop it with: ksefctl sandbox down")
    for note in notes:
        print(f"# {note}", file=sys.stderr)
    return 0


def _env(args: argparse.Namespace) -> int:
    info = playground.read_info(_directory(args))
    if info is None:
        raise UsageError("no sandbox is running here; start one with: ksefctl sandbox up")
    print(info.env_lines(), end="")
    return 0


def _status(args: argparse.Namespace) -> int:
    state = playground.status(_directory(args))
    if args.json:
        print(json.dumps(state, indent=2))
    elif state["running"]:
        sim, vault = cast(dict[str, Any], state["simulator"]), cast(dict[str, Any], state["vault"])
        print(f"running: simulator {sim['url']}, OpenBao {vault['address']}")
    elif "simulator" in state:
        print(f"not healthy ({state['directory']}); restart with: ksefctl sandbox up")
    else:
        print(f"not running ({state['directory']})")
    return 0 if state["running"] else 1


def _down(args: argparse.Namespace) -> int:
    stopped = playground.down(_directory(args))
    print("sandbox stopped" if stopped else "no sandbox was running")
    return 0
