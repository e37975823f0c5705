"""The kinds of KSeF credential ksefctl reconciles besides tokens (see ``kind``).

Each kind is imported the first time a manifest declares it or a plan names
it: a token-only run does not pay for the certificate and grant code at
start-up (a tenth of a second of imports on every command).
"""

from __future__ import annotations

import functools
import importlib

from ksefctl.reconcile.kind import Kind

# kind name → (module, attribute) of its Kind instance.  Grants go first in a
# context: a token is made with permissions its author must hold.
_WHERE: dict[str, tuple[str, str]] = {
    "grants": ("ksefctl.reconcile.grants.kind", "GRANTS"),
    "certificate": ("ksefctl.reconcile.certificates.kind", "CERTIFICATES"),
}
NAMES: tuple[str, ...] = tuple(_WHERE)


@functools.cache
def kind_named(name: str) -> Kind | None:
    where = _WHERE.get(name)
    if where is None:
        return None
    kind: Kind = getattr(importlib.import_module(where[0]), where[1])
    return kind


def all_kinds() -> tuple[Kind, ...]:
    """Every kind, imported (for tests and documentation)."""
    return tuple(k for name in NAMES if (k := kind_named(name)) is not None)
