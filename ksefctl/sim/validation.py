"""Input checks that KSeF answers with 400 21405 (identifier shapes, enums, lengths).

Enum values are matched without regard to case, as KSeF's .NET binder does:
the official test-data scenarios send ``"type": "nip"`` and ``"pesel"``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from ksefctl.sim.model import Context
from ksefctl.sim.problems import BadRequest

_NIP = r"[1-9]((\d[1-9])|([1-9]\d))\d{7}"
# The contract's NipVatUe pattern: the NIP, a dash, then one EU VAT number format per country.
_VAT_UE = (
    r"(ATU\d{8}|BE[01]{1}\d{9}|BG\d{9,10}|CY\d{8}[A-Z]|CZ\d{8,10}|DE\d{9}|DK\d{8}|EE\d{9}"
    r"|EL\d{9}|ES([A-Z]\d{8}|\d{8}[A-Z]|[A-Z]\d{7}[A-Z])|FI\d{8}|FR[A-Z0-9]{2}\d{9}|HR\d{11}"
    r"|HU\d{8}|IE(\d{7}[A-Z]{2}|\d[A-Z0-9+*]\d{5}[A-Z])|IT\d{11}|LT(\d{9}|\d{12})|LU\d{8}"
    r"|LV\d{11}|MT\d{8}|NL[A-Z0-9+*]{12}|PT\d{9}|RO\d{2,10}|SE\d{12}|SI\d{8}|SK\d{10}"
    r"|XI((\d{9}|\d{12})|(GD|HA)\d{3}))"
)
PATTERNS = {
    "Nip": re.compile(rf"^{_NIP}$"),
    "InternalId": re.compile(rf"^{_NIP}-\d{{5}}$"),
    "NipVatUe": re.compile(rf"^{_NIP}-{_VAT_UE}$"),
    "PeppolId": re.compile(r"^P[A-Z]{2}[0-9]{6}$"),
    "Pesel": re.compile(
        r"^\d{2}(?:0[1-9]|1[0-2]|2[1-9]|3[0-2]|4[1-9]|5[0-2]|6[1-9]|7[0-2]|8[1-9]|9[0-2])\d{7}$"
    ),
    "Fingerprint": re.compile(r"^[0-9A-Fa-f]{64}$"),
}

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IP4 = rf"({_OCTET}\.){{3}}{_OCTET}"
# AllowedIps of AuthTokenRequest 2.1 (the same patterns POST /auth/ksef-token uses since 2.6).
# Matched with fullmatch: "$" alone would let a trailing newline through.
IP_PATTERNS = {
    "ip4Addresses": re.compile(rf"^{_IP4}$"),
    "ip4Ranges": re.compile(rf"^{_IP4}-{_IP4}$"),
    "ip4Masks": re.compile(rf"^{_IP4}/(0|[1-9]|[12][0-9]|3[0-2])$"),
}
MAX_IPS_PER_LIST = 10
PUBLIC_KEY_ID_LENGTH = 44  # base64 of a SHA-256


def canonical(value: Any, allowed: tuple[str, ...]) -> str | None:
    """The allowed spelling of an enum value given in any case, or None."""
    if not isinstance(value, str):
        return None
    folded = value.casefold()
    return next((name for name in allowed if name.casefold() == folded), None)


def identifier(data: Any, field: str, allowed: tuple[str, ...]) -> Context:
    """A ``{type, value}`` object whose value has the shape its type demands."""
    if not isinstance(data, dict):
        raise BadRequest(21405, f"Pole '{field}' jest wymagane.")
    kind, value = canonical(data.get("type"), allowed), data.get("value")
    if kind is None:
        raise BadRequest(
            21405, f"Pole '{field}.type' musi mieć jedną z wartości: {', '.join(allowed)}."
        )
    if not isinstance(value, str) or not PATTERNS[kind].fullmatch(value):
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
        name = canonical(value, allowed)
        if name is None:
            raise BadRequest(21405, f"Nieznana wartość {value!r} w polu '{field}'.")
        if name not in result:
            result.append(name)
    return result


def optional_bool(data: dict[str, Any], field: str) -> bool:
    value = data.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(21405, f"Pole '{field}' musi mieć wartość logiczną.")
    return value


def authorization_policy(data: Any) -> dict[str, Any] | None:
    """AuthorizationPolicy of POST /auth/ksef-token: at most 10 items a list, each of its pattern.

    Returned with every list present (possibly empty) so later IP checks never meet a surprise.
    """
    if data is None:
        return None
    if not isinstance(data, dict):
        raise BadRequest(21405, "Pole 'authorizationPolicy' musi być obiektem.")
    allowed = data.get("allowedIps")
    if allowed is None:
        return None
    if not isinstance(allowed, dict):
        raise BadRequest(21405, "Pole 'authorizationPolicy.allowedIps' musi być obiektem.")
    result: dict[str, list[str]] = {}
    for name, pattern in IP_PATTERNS.items():
        where = f"authorizationPolicy.allowedIps.{name}"
        values = allowed.get(name)
        if values is None:
            values = []
        if not isinstance(values, list):
            raise BadRequest(21405, f"Pole '{where}' musi być listą.")
        if len(values) > MAX_IPS_PER_LIST:
            raise BadRequest(
                21405, f"Pole '{where}' może zawierać najwyżej {MAX_IPS_PER_LIST} elementów."
            )
        for value in values:
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise BadRequest(21405, f"Wartość {value!r} w polu '{where}' ma zły format.")
        result[name] = list(values)
    return {"allowedIps": result}


def public_key_id(value: Any) -> str | None:
    """``publicKeyId``: absent, or the 44-character base64 of a SHA-256 (checked before 21470)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != PUBLIC_KEY_ID_LENGTH:
        raise BadRequest(
            21405, f"Pole 'publicKeyId' musi mieć dokładnie {PUBLIC_KEY_ID_LENGTH} znaki."
        )
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(21405, "Pole 'publicKeyId' nie jest poprawnym Base64.") from None
    return value
