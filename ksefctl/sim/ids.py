"""Identifier shapes KSeF uses: reference numbers, challenges, token strings, timestamps."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime


def reference_number(kind: str, at: float) -> str:
    """A 36-character number shaped like ``20251010-EC-1DCE3E3000-12ECB5B36E-45``.

    ``kind`` is the two-letter family: EC (KSeF token), AU (authentication),
    CR (challenge).  The last group is a checksum so typos are detectable.
    """
    day = datetime.fromtimestamp(at, UTC).strftime("%Y%m%d")
    body = f"{day}-{kind}-{secrets.token_hex(5).upper()}-{secrets.token_hex(5).upper()}"
    check = hashlib.sha256(body.encode()).hexdigest()[:2].upper()
    return f"{body}-{check}"


def is_reference_number(value: str) -> bool:
    if len(value) != 36 or value.count("-") != 4:
        return False
    body, _, check = value.rpartition("-")
    return hashlib.sha256(body.encode()).hexdigest()[:2].upper() == check


def token_context_label(context_type: str) -> str:
    """``Nip`` -> ``nip``, ``InternalId`` -> ``internalId``, as in the official token example."""
    return context_type[:1].lower() + context_type[1:]


def token_string(reference: str, context_type: str, context_value: str, secret: str) -> str:
    return f"{reference}|{token_context_label(context_type)}-{context_value}|{secret}"


def secret_hash(secret: str) -> str:
    # The secret is 256 random bits, so a plain SHA-256 is as good as a slow KDF here.
    return hashlib.sha256(secret.encode()).hexdigest()


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")


def wall_clock() -> float:
    return time.time()
