"""Typed reads of JSON a saved plan holds: anyone may have edited it, so nothing is assumed.

Each reader returns the value or raises TypeError/ValueError naming what was
expected; ``planfile.load_plan`` turns those into one "corrupt plan file" line.
Shared by the plan file and every kind's ``from_json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def as_optional_str(value: Any) -> str | None:
    return None if value is None else as_str(value)


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__}")
    return value


def as_time(value: Any) -> datetime | None:
    """An RFC 3339 time with its offset, or None; a time without an offset is refused."""
    if value is None:
        return None
    moment = datetime.fromisoformat(as_str(value))
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset")
    return moment
