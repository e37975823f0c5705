"""``ksefctl sandbox``: a local KSeF simulator and OpenBao, ready for apply."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, cast

from ksefctl import sandbox
from ksefctl.errors import UsageError
from ksefctl.manifest import load_manifests

QUICKSTART = Path("manifests/quickstart.yaml")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "sandbox", help="a local simulator + Vault playground", description=__doc__
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"sandbox directory (default {sandbox.default_dir()})",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start (or reuse) the sandbox and seed certificates")
    up.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="extend",
        nargs="+",
        default=[],
        help="manifests whose contexts get owner certificates (default manifests/quickstart.yaml)",
    )
    up.add_argument("--sim-port", type=int, default=sandbox.DEFAULT_SIM_PORT)
    up.add_argument("--vault-port", type=int, default=sandbox.DEFAULT_VAULT_PORT)
    up.set_defaults(func=_up)
    env = actions.add_parser("env", help="print the export lines for VAULT_ADDR and VAULT_TOKEN")
    env.set_defaults(func=_env)
    status = actions.add_parser("status", help="is the sandbox running?")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)
    down = actions.add_parser("down", help="stop the simulator and OpenBao")
    down.set_defaults(func=_down)


def _directory(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir else sandbox.default_dir()


def _up(args: argparse.Namespace) -> int:
    files = args.files or ([str(QUICKSTART)] if QUICKSTART.exists() else [])
    desired = load_manifests(files) if files else None
    info = sandbox.up(_directory(args), desired, sim_port=args.sim_port, vault_port=args.vault_port)
    print(info.env_lines(), end="")
    print(f"# KSeF simulator: {info.sim_url}\n# OpenBao:        {info.vault_addr}")
    if desired is None:
        print("# No manifest given: no certificates were seeded (use -f MANIFEST).")
    return 0


def _env(args: argparse.Namespace) -> int:
    info = sandbox.read_info(_directory(args))
    if info is None:
        raise UsageError("no sandbox is running here; start one with: ksefctl sandbox up")
    print(info.env_lines(), end="")
    return 0


def _status(args: argparse.Namespace) -> int:
    state = sandbox.status(_directory(args))
    if args.json:
        print(json.dumps(state, indent=2))
    elif state["running"]:
        sim, vault = cast(dict[str, Any], state["simulator"]), cast(dict[str, Any], state["vault"])
        print(f"running: simulator {sim['url']}, OpenBao {vault['address']}")
    else:
        print(f"not running ({state['directory']})")
    return 0 if state["running"] else 1


def _down(args: argparse.Namespace) -> int:
    stopped = sandbox.down(_directory(args))
    print("sandbox stopped" if stopped else "no sandbox was running")
    return 0
