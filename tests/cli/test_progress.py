"""Progress in CI and logs: plain lines on stderr, never a terminal bar's control codes."""

from __future__ import annotations

import io

import pytest

from ksefctl.cli.progress import PlainProgress, context_progress, in_ci
from ksefctl.vocabulary import ContextId
from tests.cli.conftest import World
from tests.e2e.conftest import NIPS

KEY = ("acme", ContextId("Nip", NIPS[0]))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("false", False)])
def test_ci_is_recognised(value: str, expected: bool) -> None:
    assert in_ci({"CI": value}) is expected
    assert in_ci({}) is False


def test_ci_gets_plain_lines_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("KSEFCTL_PROGRESS_EVERY", "0")
    stream = Terminal()
    with context_progress("Observing", 2, stream=stream) as progress:
        assert isinstance(progress, PlainProgress)
        progress(KEY, True)
        progress(KEY, False)
    assert stream.getvalue().splitlines() == [
        "Observing: 1/2 contexts done (0 s)",
        "Observing: 2/2 contexts done, 1 failed (0 s)",
        "Observing: 2/2 contexts done, 1 failed (0 s)",
    ]
    assert "\x1b" not in stream.getvalue()


def test_large_runs_print_every_few_seconds_and_short_runs_stay_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("KSEFCTL_PROGRESS_EVERY", raising=False)
    clock, stream = Clock(), io.StringIO()  # not a terminal: a log file
    with context_progress("Applying", 200, stream=stream, clock=clock) as progress:
        for _ in range(200):
            clock.now += 0.25  # 4 contexts a second: 50 s in all
            progress(KEY, True)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "Applying: 40/200 contexts done (10 s)"
    assert len(lines) == 6  # every 10 s, then the closing total
    assert lines[-1] == "Applying: 200/200 contexts done (50 s)"

    quick = io.StringIO()
    with context_progress("Applying", 3, stream=quick, clock=Clock()) as progress:
        for _ in range(3):
            progress(KEY, True)
    assert quick.getvalue() == ""


def test_plan_in_ci_reports_each_finished_context(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("KSEFCTL_PROGRESS_EVERY", "0")  # a line per context
    body = "defaults:\n  tokens:\n    - name: erp\n      permissions: [InvoiceRead]\ncontexts:\n"
    body += "".join(f'  - nip: "{nip}"\n' for nip in NIPS)
    result = world.ksefctl("plan", "-f", str(world.manifest(body)))
    assert result.code == 0, result
    lines = [line for line in result.err.splitlines() if line.startswith("Observing: ")]
    assert [line.split(" (")[0] for line in lines] == [
        "Observing: 1/3 contexts done",
        "Observing: 2/3 contexts done",
        "Observing: 3/3 contexts done",
        "Observing: 3/3 contexts done",
    ]
    assert "\x1b" not in result.err
    assert "Plan: 3 to create" in result.out
