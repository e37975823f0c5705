"""The root of ksefctl's exception tree.

Every error a user can cause or meet (bad manifest, KSeF refusal, Vault down)
derives from :class:`KsefctlError`; the CLI prints ``str(error)`` as one line
and exits 1.  Families live beside their boundary: ``ksefctl.manifest.errors``,
``ksefctl.ksef.errors`` and ``ksefctl.vault`` map foreign exceptions into them
so callers never see another library's exceptions.  No message, ``str`` or
``repr`` may ever contain a secret.
"""

from __future__ import annotations


class KsefctlError(Exception):
    """Something went wrong that the user should read about in one line."""

    exit_code: int = 1


class UsageError(KsefctlError):
    """The command line itself is wrong (conflicting or missing options)."""
