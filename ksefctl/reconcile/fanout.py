"""Per-context work at bounded concurrency; one context failing never stops the others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ksefctl.errors import KsefctlError
from ksefctl.reconcile.settings import Key
from ksefctl.vocabulary import ContextId

log = logging.getLogger("ksefctl.engine")
T = TypeVar("T")


@dataclass(frozen=True)
class Failure:
    owner: str
    context: ContextId
    stage: str  # "login", "observe", "apply"
    message: str

    def __str__(self) -> str:
        return f"{self.context} ({self.owner}): {self.stage} failed: {self.message}"


class Staged(KsefctlError):
    """An error that names the stage it belongs to (a login failing during observation)."""

    def __init__(self, stage: str, error: KsefctlError) -> None:
        super().__init__(str(error))
        self.stage = stage


def unexpected(error: Exception) -> str:
    """One line for an exception no code path expected (a bug); ``-vv`` logs its traceback."""
    first = str(error).splitlines()[0] if str(error) else ""
    return f"unexpected error ({type(error).__name__}{': ' + first if first else ''})"


async def each(
    keys: Iterable[Key],
    work: Callable[[Key], Awaitable[T]],
    stage: str,
    failures: list[Failure],
    *,
    parallelism: int,
    on_done: Callable[[Key, bool], None] | None = None,
) -> dict[Key, T]:
    """``work`` for every key, at most ``parallelism`` at once; errors become ``failures``."""
    results: dict[Key, T] = {}

    async def one(key: Key) -> None:
        try:
            results[key] = await work(key)
            ok = True
        except KsefctlError as error:
            where = error.stage if isinstance(error, Staged) else stage
            failures.append(Failure(key[0], key[1], where, str(error)))
            ok = False
        except Exception as error:  # a bug: this context fails, the others go on
            log.debug("%s in %s of %s", stage, key[1], key[0], exc_info=True)
            failures.append(Failure(key[0], key[1], stage, unexpected(error)))
            ok = False
        if on_done:
            on_done(key, ok)

    # A fixed set of workers pulling from one iterator: ten thousand contexts
    # cost ten thousand small results, not ten thousand waiting tasks.
    pending = iter(list(keys))

    async def worker() -> None:
        for key in pending:
            await one(key)

    await asyncio.gather(*(worker() for _ in range(max(1, parallelism))))
    return results


async def drain(calls: Sequence[Callable[[], Awaitable[object]]], workers: int) -> None:
    """Best-effort clean-up: run ``calls`` at most ``workers`` at a time, ignoring their errors."""
    pending = iter(calls)

    async def worker() -> None:
        for call in pending:
            with contextlib.suppress(Exception):
                await call()

    await asyncio.gather(*(worker() for _ in range(workers)))
