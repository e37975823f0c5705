"""KSeF's ``X-System-Warning`` response header: collected over a run, told once.

Since API 2.6 any answer may carry technical warnings that do not change its
outcome, e.g. behaviour KSeF will refuse in the future.  The header holds one
or more ``[code]: message`` items separated by ``|`` (SystemWarning in
open-api.json).  A run sends thousands of requests; the user wants each
distinct warning once, with the endpoints that drew it and how often.

The header comes from the network: items are stripped of control characters,
shortened, and at most :data:`MAX_DISTINCT` distinct ones are kept, so a
misbehaving server can neither flood the terminal nor grow the run's memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ITEM = re.compile(r"\[(?P<code>[^\]]+)\]: (?P<message>[^|]+)")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
MAX_DISTINCT = 50
MAX_LENGTH = 300


@dataclass(frozen=True)
class SystemWarning:
    code: str | None  # None when KSeF sent text outside the documented format
    message: str
    endpoints: tuple[str, ...]  # "METHOD /path/{template}", in the order first seen
    count: int

    def __str__(self) -> str:
        prefix = f"[{self.code}] " if self.code else ""
        times = f", {self.count} times" if self.count > 1 else ""
        return f"{prefix}{self.message} ({', '.join(self.endpoints)}{times})"

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "endpoints": list(self.endpoints),
            "count": self.count,
        }


@dataclass
class _Seen:
    endpoints: dict[str, None] = field(default_factory=dict)  # ordered set
    count: int = 0


class SystemWarnings:
    """Every distinct warning of one client's run, grouped by (code, message)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str | None, str], _Seen] = {}
        self.dropped = 0  # items beyond MAX_DISTINCT

    def note(self, endpoint: str, header: str) -> None:
        for code, message in parse(header):
            key = (code, message)
            seen = self._seen.get(key)
            if seen is None:
                if len(self._seen) >= MAX_DISTINCT:
                    self.dropped += 1
                    continue
                seen = self._seen[key] = _Seen()
            seen.endpoints[endpoint] = None
            seen.count += 1

    def items(self) -> list[SystemWarning]:
        return [
            SystemWarning(code, message, tuple(seen.endpoints), seen.count)
            for (code, message), seen in self._seen.items()
        ]

    def to_json(self) -> list[dict[str, Any]]:
        """The ``warnings`` array of ``--json`` outputs."""
        return [item.to_json() for item in self.items()]

    def __bool__(self) -> bool:
        return bool(self._seen)


def parse(header: str) -> list[tuple[str | None, str]]:
    """(code, message) items of one header value; free text becomes one item without a code."""
    items: list[tuple[str | None, str]] = [
        (_clean(m["code"]), _clean(m["message"]))
        for m in _ITEM.finditer(header)
        if _clean(m["message"])
    ]
    if items:
        return items
    text = _clean(header)
    return [(None, text)] if text else []


def _clean(text: str) -> str:
    text = " ".join(_UNPRINTABLE.sub(" ", text).split())
    return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 1] + "…"
