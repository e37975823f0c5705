"""One vocabulary across commands: the same option means the same thing, and says what it does."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from ksefctl import cli

# Commands that ask before changing anything; apply.py is checked for --auto-approve only
# until it takes the shared option too.
CONFIRMING = ("apply", "rotate", "revoke")


def _subcommands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner in sub._actions:
                    if isinstance(inner, argparse._SubParsersAction):
                        for child, leaf in inner.choices.items():
                            yield f"{name} {child}", leaf


def test_every_option_says_what_it_does() -> None:
    silent = [
        f"ksefctl {name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in _subcommands()
        for action in sub._actions
        if not isinstance(action, argparse._SubParsersAction)
        and action.help != argparse.SUPPRESS
        and not (action.help or "").strip()
    ]
    assert silent == []


@pytest.mark.parametrize("command", CONFIRMING)
@pytest.mark.parametrize("spelling", ["--auto-approve", "--yes"])
def test_auto_approve_and_yes_are_one_option(command: str, spelling: str) -> None:
    argv = [command, "-f", "t.yaml", "--nip", "5265877635", spelling]
    if command == "revoke":
        argv.append("--all")
    args = cli.build_parser().parse_args(argv)
    assert args.auto_approve is True


def test_apply_takes_auto_approve() -> None:
    args = cli.build_parser().parse_args(["apply", "-f", "t.yaml", "--auto-approve"])
    assert args.auto_approve is True


@pytest.mark.parametrize("command", CONFIRMING)
def test_lock_timeout_is_documented_the_same_way(command: str) -> None:
    sub = dict(_subcommands())[command]
    (action,) = [a for a in sub._actions if "--lock-timeout" in a.option_strings]
    assert action.help and action.default == 60.0
