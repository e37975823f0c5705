"""The words every layer shares: KSeF contexts, Vault secret references, token statuses.

``ksef/``, ``vault/``, ``manifest/`` and ``reconcile/`` all speak of these, so
they live here, below all of them; this module imports nothing from ksefctl.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

ContextType = Literal["Nip", "InternalId"]

_NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)
_NIP = re.compile(r"[0-9]{10}")
_INTERNAL_ID = re.compile(r"([0-9]{10})-[0-9]{5}")


@dataclass(frozen=True, order=True)
class ContextId:
    """A KSeF context: ``Nip:5265877635`` or ``InternalId:5265877635-12345``."""

    type: ContextType
    value: str

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"

    @property
    def nip(self) -> str:
        """The NIP the context belongs to (an InternalId starts with it)."""
        return self.value.split("-", 1)[0]


@dataclass(frozen=True)
class SecretRef:
    """A KV v2 secret: mount and path inside it (already rendered)."""

    mount: str
    path: str

    def __str__(self) -> str:
        return f"{self.mount}/{self.path}"


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


def parse_context(text: object) -> ContextId:
    """``Nip:5265877635`` / ``InternalId:5265877635-12345`` → :class:`ContextId`.

    The one parser for contexts read back from saved plans and Vault metadata,
    both of which anyone with write access may have edited: the NIP check
    digit and the InternalId shape are checked as strictly as in a manifest.
    Raises ValueError (naming the text and what is wrong with it) otherwise.
    """
    if not isinstance(text, str):
        raise ValueError(f"not a KSeF context: expected a string, got {type(text).__name__}")
    kind, sep, value = text.partition(":")
    if kind == "Nip" and sep:
        problem = nip_problem(value)
        if problem is None:
            return ContextId("Nip", value)
    elif kind == "InternalId" and sep:
        problem = internal_id_problem(value)
        if problem is None:
            return ContextId("InternalId", value)
    else:
        problem = "expected Nip:<nip> or InternalId:<nip>-<5 digits>"
    raise ValueError(f"not a KSeF context: {text[:80]!r} ({problem})")


class TokenStatus(StrEnum):
    """A KSeF token's status (``TokenStatus`` in open-api.json); compares equal to its text."""

    PENDING = "Pending"
    ACTIVE = "Active"
    REVOKING = "Revoking"
    REVOKED = "Revoked"
    FAILED = "Failed"


# Every status but Revoked: what a context's token list is asked for.  A revoked
# token can never log in again, and listing them would only grow with time.
NOT_REVOKED: tuple[TokenStatus, ...] = (
    TokenStatus.PENDING,
    TokenStatus.ACTIVE,
    TokenStatus.REVOKING,
    TokenStatus.FAILED,
)
# A token that can log in, or will once KSeF activates it: one that must not be
# left without an owner (an orphan of an ambiguous creation is revoked).
USABLE: tuple[TokenStatus, ...] = (TokenStatus.PENDING, TokenStatus.ACTIVE)
# Statuses a token never leaves again.
FINAL: tuple[TokenStatus, ...] = (TokenStatus.REVOKED, TokenStatus.FAILED)


def is_loopback(host: str | None) -> bool:
    """``localhost`` or a loopback address: traffic that never leaves this machine.

    The one rule for where plain http may go (KSeF base URLs, Vault), and for
    what the tests and the sandbox may talk to.
    """
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
