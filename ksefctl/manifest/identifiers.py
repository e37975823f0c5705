"""KSeF context identifiers: NIP check digits and InternalId shape."""

from __future__ import annotations

import re

from ksefctl.manifest.model import ContextId

_NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)
_NIP = re.compile(r"[0-9]{10}")
_INTERNAL_ID = re.compile(r"([0-9]{10})-[0-9]{5}")


def nip_check_digit(first_nine: str) -> int | None:
    """The check digit of a NIP's first nine digits; None when there is none (sum mod 11 = 10)."""
    digit = sum(w * int(d) for w, d in zip(_NIP_WEIGHTS, first_nine, strict=True)) % 11
    return None if digit == 10 else digit


def is_valid_nip(nip: str) -> bool:
    if not _NIP.fullmatch(nip):
        return False
    return nip_check_digit(nip[:9]) == int(nip[9])


def nip_problem(nip: str) -> str | None:
    """Why ``nip`` is not a NIP, or None when it is one."""
    if not _NIP.fullmatch(nip):
        return "must be 10 digits"
    expected = nip_check_digit(nip[:9])
    if expected is None:
        return f"{nip} is not a valid NIP (no check digit exists for {nip[:9]})"
    if expected != int(nip[9]):
        return f"{nip} is not a valid NIP (check digit should be {expected})"
    return None


def internal_id_problem(internal_id: str) -> str | None:
    """Why ``internal_id`` is not ``{nip}-{5 digits}``, or None."""
    match = _INTERNAL_ID.fullmatch(internal_id)
    if match is None:
        return "must be {nip}-{5 digits}"
    problem = nip_problem(match.group(1))
    return None if problem is None else f"starts with an invalid NIP: {problem}"


def context_of(nip: str | None, internal_id: str | None) -> ContextId:
    if nip is not None:
        return ContextId("Nip", nip)
    assert internal_id is not None
    return ContextId("InternalId", internal_id)
