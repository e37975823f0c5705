"""The suite's fixtures live in tests/support (registered here), and two session hooks:
the figures the run recorded, and the time each part of the suite took."""

from __future__ import annotations

from collections import defaultdict

import pytest

# Helpers in tests/support assert too: rewrite them before the imports below load them.
pytest.register_assert_rewrite("tests.support")

from tests.support import OPENAPI, REPO, SHARED  # noqa: E402
from tests.support import figures as _figures  # noqa: E402
from tests.support.vault import Bao  # noqa: E402

pytest_plugins = [
    "tests.support.vault",
    "tests.support.sim",
    "tests.support.world",
    "tests.support.limits",
    "tests.support.process_world",
]

__all__ = ["OPENAPI", "REPO", "SHARED", "Bao"]

# Seconds spent per part of the suite (tests/<part>/…, or "top" for tests/test_*.py),
# setup and teardown included: CI prints them so a slow part shows itself.
_PART_SECONDS: defaultdict[str, float] = defaultdict(float)


def _part(nodeid: str) -> str:
    pieces = nodeid.split("::", 1)[0].split("/")
    return pieces[1] if len(pieces) > 2 else "top"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _PART_SECONDS[_part(report.nodeid)] += report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _PART_SECONDS:
        parts = ", ".join(
            f"{name}: {s:.0f} s"
            for name, s in sorted(_PART_SECONDS.items(), key=lambda item: -item[1])
        )
        terminalreporter.write_line(f"time by part: {parts}")
    path = _figures.write(terminalreporter.config)
    if path is not None:
        terminalreporter.write_sep("-", f"figures (also in {path})")
        for section, values in sorted(_figures.FIGURES.items()):
            terminalreporter.write_line(f"{section}: {values}")
