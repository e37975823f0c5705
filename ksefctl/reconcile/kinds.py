"""The kinds of KSeF credential ksefctl reconciles besides tokens (see ``kind``)."""

from __future__ import annotations

from ksefctl.reconcile.certificates.kind import CERTIFICATES
from ksefctl.reconcile.grants.kind import GRANTS
from ksefctl.reconcile.kind import Kind

KINDS: tuple[Kind, ...] = (GRANTS, CERTIFICATES)


def kind_named(name: str) -> Kind | None:
    return next((kind for kind in KINDS if kind.name == name), None)
