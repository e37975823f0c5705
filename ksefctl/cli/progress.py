"""Progress over contexts: a live bar on a terminal, plain lines in CI and logs.

Plans and results are printed afterwards either way; progress only tells
whoever watches that a long run is alive.  On a terminal (and not in CI) that
is a rich bar.  Otherwise — ``CI`` set, or stderr not a terminal — a bar's
control codes would garble the log, so a plain line goes to stderr at most
every ``KSEFCTL_PROGRESS_EVERY`` seconds (default 10) while contexts finish,
and a closing total after a run that printed any: runs shorter than that
stay silent, runs of thousands of contexts print a line every few seconds
instead of one per context.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from ksefctl.reconcile.engine import Key

DEFAULT_EVERY_S = 10.0


def in_ci(environ: dict[str, str] | None = None) -> bool:
    """Whether a CI system runs us: they set ``CI`` (GitHub, GitLab, Jenkins' plugins …)."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() not in ("", "0", "false", "no")


class ContextProgress:
    def __init__(self, bar: Any | None = None, task: Any | None = None) -> None:
        self._bar = bar
        self._task = task
        self.done = 0
        self.failed = 0

    def __call__(self, key: Key, ok: bool) -> None:
        self.done += 1
        if not ok:
            self.failed += 1
        if self._bar is not None:
            self._bar.advance(self._task)


class PlainProgress(ContextProgress):
    """One line now and then, for logs: ``Observing: 120/500 contexts done, 2 failed (30 s)``."""

    def __init__(
        self,
        description: str,
        total: int,
        stream: TextIO,
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._description = description
        self._total = total
        self._stream = stream
        self._every_s = every_s
        self._clock = clock
        self._started = self._last = clock()
        self.lines = 0

    def __call__(self, key: Key, ok: bool) -> None:
        super().__call__(key, ok)
        now = self._clock()
        if now - self._last >= self._every_s:
            self._last = now
            self._print(now)

    def close(self) -> None:
        if self.lines:
            self._print(self._clock())

    def _print(self, now: float) -> None:
        failed = f", {self.failed} failed" if self.failed else ""
        print(
            f"{self._description}: {self.done}/{self._total} contexts done{failed} "
            f"({now - self._started:.0f} s)",
            file=self._stream,
            flush=True,
        )
        self.lines += 1


def progress_every() -> float:
    text = os.environ.get("KSEFCTL_PROGRESS_EVERY", "")
    try:
        value = float(text) if text.strip() else DEFAULT_EVERY_S
    except ValueError:
        return DEFAULT_EVERY_S
    return value if value >= 0 else DEFAULT_EVERY_S


@contextmanager
def context_progress(
    description: str,
    total: int,
    enabled: bool | None = None,
    *,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[ContextProgress]:
    """``enabled``: whether a live bar may be drawn (default: stderr is a terminal, not CI)."""
    out = sys.stderr if stream is None else stream
    if enabled is None:
        enabled = out.isatty() and not in_ci()
    if total < 1:
        yield ContextProgress()
        return
    if not enabled:
        plain = PlainProgress(description, total, out, progress_every(), clock)
        try:
            yield plain
        finally:
            plain.close()
        return
    if total < 2:
        yield ContextProgress()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=out),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield ContextProgress(bar, task)
