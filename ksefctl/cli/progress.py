"""Progress over contexts: a live bar on a terminal, silence in CI.

Plans and results are printed afterwards either way; progress only tells a
person at a terminal that a long run is alive.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ksefctl.reconcile.engine import Key


class ContextProgress:
    def __init__(self, bar: Any | None, task: Any | None) -> None:
        self._bar = bar
        self._task = task
        self.failed = 0

    def __call__(self, key: Key, ok: bool) -> None:
        if not ok:
            self.failed += 1
        if self._bar is not None:
            self._bar.advance(self._task)


@contextmanager
def context_progress(
    description: str, total: int, enabled: bool | None = None
) -> Iterator[ContextProgress]:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total < 2:
        yield ContextProgress(None, None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield ContextProgress(bar, task)
