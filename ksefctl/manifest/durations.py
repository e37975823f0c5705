"""Durations as manifests write them: ``90d``, ``12h``, ``1d12h`` or ISO 8601 ``P90D``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_SHORT = re.compile(r"(?:[0-9]+[wdhms])+")
_SHORT_PART = re.compile(r"([0-9]+)([wdhms])")
# Months and years are left out on purpose: their length varies, and a
# rotation period must mean the same number of seconds every time.
_ISO = re.compile(
    r"P(?=[0-9WDT])(?:(?P<w>[0-9]+)W)?(?:(?P<d>[0-9]+)D)?"
    r"(?:T(?=[0-9])(?:(?P<h>[0-9]+)H)?(?:(?P<m>[0-9]+)M)?(?:(?P<s>[0-9]+)S)?)?"
)
# Far beyond any sensible rotation, and still far inside timedelta's range.
MAX_DAYS = 100 * 365


def parse_duration(text: str) -> timedelta:
    """Parse a duration; raises ``ValueError`` with a message for users."""
    parts: dict[str, int] = {}
    if _SHORT.fullmatch(text):
        for number, unit in _SHORT_PART.findall(text):
            name = _UNITS[unit]
            if name in parts:
                raise ValueError(f"unit {unit!r} appears twice in {text!r}")
            parts[name] = _number(number)
    elif (match := _ISO.fullmatch(text)) is not None:
        parts = {_UNITS[u]: _number(v) for u, v in match.groupdict().items() if v is not None}
    else:
        raise ValueError(
            f"{text[:40]!r} is not a duration such as 90d, 12h, 30m, 2w, 1d12h, P90D or PT12H"
        )
    seconds = (
        parts.get("weeks", 0) * 604800
        + parts.get("days", 0) * 86400
        + parts.get("hours", 0) * 3600
        + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0)
    )
    if seconds > MAX_DAYS * 86400:
        raise ValueError(f"{text[:40]!r} is longer than {MAX_DAYS} days")
    return timedelta(seconds=seconds)


def _number(digits: str) -> int:
    if len(digits) > 12:
        raise ValueError("number too large")
    return int(digits)


def format_duration(value: timedelta) -> str:
    """The shortest manifest spelling of ``value`` (``90d``, ``1d12h``, ``0s``)."""
    seconds = int(value.total_seconds())
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"
