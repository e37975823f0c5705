"""Input checks that KSeF answers with 400 21405 (identifier shapes, enums, lengths)."""

from __future__ import annotations

import re
from typing import Any

from ksefctl.sim.model import Context
from ksefctl.sim.problems import BadRequest

_NIP = r"[1-9]((\d[1-9])|([1-9]\d))\d{7}"
PATTERNS = {
    "Nip": re.compile(rf"^{_NIP}$"),
    "InternalId": re.compile(rf"^{_NIP}-\d{{5}}$"),
    "NipVatUe": re.compile(rf"^{_NIP}-[A-Z]{{2}}[A-Z0-9+*]{{2,12}}$"),
    "Pesel": re.compile(
        r"^\d{2}(?:0[1-9]|1[0-2]|2[1-9]|3[0-2]|4[1-9]|5[0-2]|6[1-9]|7[0-2]|8[1-9]|9[0-2])\d{7}$"
    ),
    "Fingerprint": re.compile(r"^[0-9A-Fa-f]{64}$"),
}


def identifier(data: Any, field: str, allowed: tuple[str, ...]) -> Context:
    """A ``{type, value}`` object whose value has the shape its type demands."""
    if not isinstance(data, dict):
        raise BadRequest(21405, f"Pole '{field}' jest wymagane.")
    kind, value = data.get("type"), data.get("value")
    if kind not in allowed:
        raise BadRequest(
            21405, f"Pole '{field}.type' musi mieć jedną z wartości: {', '.join(allowed)}."
        )
    if not isinstance(value, str) or not PATTERNS[kind].match(value):
        raise BadRequest(
            21405, f"Pole '{field}.value' nie jest poprawnym identyfikatorem typu {kind}."
        )
    return kind, value


def text(data: dict[str, Any], field: str, low: int, high: int) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise BadRequest(21405, f"Pole '{field}' musi być tekstem o długości {low}..{high} znaków.")
    return value


def enum_list(data: dict[str, Any], field: str, allowed: tuple[str, ...]) -> list[str]:
    values = data.get(field)
    if not isinstance(values, list) or not values:
        raise BadRequest(21405, f"Pole '{field}' musi być niepustą listą.")
    result: list[str] = []
    for value in values:
        if value not in allowed:
            raise BadRequest(21405, f"Nieznana wartość {value!r} w polu '{field}'.")
        if value not in result:
            result.append(value)
    return result
