"""The ownership marker ksefctl appends to the KSeF description of tokens it creates.

    BI read-only [ksefctl owner=acme-group token=erp id=k7f3m2q4xa]

The user's text stays readable in front; the bracketed marker is always the
last thing in the description, so a user's text that merely mentions a marker
is never mistaken for one.  KSeF's ``description`` filter is a
case-insensitive substring match, so :func:`owner_query` (or the nonce) finds
an owner's tokens server-side; :func:`decode` then checks each one exactly.
"""

from __future__ import annotations

import base64
import re
import secrets

from ksefctl.manifest.model import Marker

MIN_DESCRIPTION = 5  # KSeF's limits on a token description
MAX_DESCRIPTION = 256
NONCE_LENGTH = 10  # 50 random bits: unique per creation, still short

OWNER = r"[a-z0-9][a-z0-9-]{0,62}"
TOKEN = r"[a-z0-9][a-z0-9_-]{0,62}"
NONCE = rf"[a-z2-7]{{{NONCE_LENGTH}}}"
_MARKER = re.compile(rf"(?:^| )\[ksefctl owner=({OWNER}) token=({TOKEN}) id=({NONCE})\]\Z")


def new_nonce() -> str:
    """A fresh nonce: 10 lowercase base32 characters from ``secrets``."""
    return base64.b32encode(secrets.token_bytes(7)).decode("ascii")[:NONCE_LENGTH].lower()


def render(marker: Marker) -> str:
    """The marker alone, e.g. ``[ksefctl owner=acme-group token=erp id=k7f3m2q4xa]``."""
    return f"[ksefctl owner={marker.owner} token={marker.token} id={marker.nonce}]"


def encode(description: str, marker: Marker) -> str:
    """The KSeF description: the user's text, a space, the marker.

    Raises ``ValueError`` for a marker that :func:`decode` would not read back,
    or a result longer than KSeF accepts.
    """
    tag = render(marker)
    if _MARKER.search(tag) is None:
        raise ValueError("owner, token or nonce is not in the marker alphabet")
    text = description.strip()
    result = f"{text} {tag}" if text else tag
    if len(result) > MAX_DESCRIPTION:
        raise ValueError(
            f"description too long: at most {max_user_description(marker.owner, marker.token)} characters"
        )
    return result


def decode(description: str) -> Marker | None:
    """The marker at the end of ``description``; None for anything else."""
    if len(description) > MAX_DESCRIPTION:
        return None
    match = _MARKER.search(description)
    if match is None:
        return None
    owner, token, nonce = match.groups()
    return Marker(owner=owner, token=token, nonce=nonce)


def user_text(description: str) -> str:
    """The user's part of a description (all of it when there is no marker)."""
    match = _MARKER.search(description)
    return description if match is None else description[: match.start()]


def max_user_description(owner: str, token: str) -> int:
    """How many characters of user text fit in front of this owner's marker for ``token``."""
    tag = render(Marker(owner, token, "x" * NONCE_LENGTH))
    return MAX_DESCRIPTION - len(tag) - 1  # the space between text and marker


def owner_query(owner: str) -> str:
    """A KSeF ``description`` filter matching this owner's markers and no other owner's.

    The trailing `` token=`` keeps ``acme`` from also matching ``acme-group``.
    """
    return f"ksefctl owner={owner} token="
