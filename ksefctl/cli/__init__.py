"""The ``ksefctl`` command: argument parsing and dispatch only.

Each sub-command lives in its own module exposing ``register(subparsers)``,
which adds a parser whose ``func`` default takes the parsed namespace and
returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from ksefctl import __version__
from ksefctl.errors import KsefctlError
from ksefctl.manifest.errors import ManifestErrors

# Sub-command modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "validate",
    "plan",
    "apply",
    "show",
    "status",
    "rotate",
    "revoke",
    "sandbox",
    "sim",
    "testcert",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one ``Error:`` line and exit 1, like every other error.

    argparse's own exit status 2 would read as "changes pending" to a pipeline
    running ``plan --detailed-exitcode``.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"Error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ksefctl",
        description="Declarative KSeF token management with secrets in Vault.",
    )
    parser.add_argument("--version", action="version", version=f"ksefctl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"ksefctl.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 1
    try:
        code: int = func(args)
    except ManifestErrors as errors:
        # Every located problem, one per line, as `validate` prints them.
        print(errors.render(), file=sys.stderr)
        return errors.exit_code
    except KsefctlError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
