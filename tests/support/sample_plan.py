"""One plan with every kind of change and note, for the render and planfile tests."""

from __future__ import annotations

from datetime import timedelta

from ksefctl.manifest.model import ContextId, SecretRef
from ksefctl.reconcile.model import Action, Change, Note, NoteKind, Plan
from tests.reconcile.world import NIP_A, NIP_B, NOW

OLD = "20251010-EC-1DCE3E3000-12ECB5B36E-45"
HAND = "20250102-EC-2AAAAAAAAA-BBBBBBBBBB-01"
SECRET = SecretRef("secret", "ksef/test/5265877635/erp")
LEGACY = SecretRef("secret", "ksef/test/5265877635/legacy")
PERMS = frozenset({"InvoiceWrite", "InvoiceRead"})
INTERNAL = ContextId("InternalId", "5265877635-12345")

PLAN = Plan(
    changes=(
        Change(
            Action.CREATE,
            "acme",
            NIP_A,
            "bi",
            permissions=frozenset({"InvoiceRead"}),
            secret=SECRET,
        ),
        Change(
            Action.REPLACE,
            "acme",
            NIP_A,
            "erp",
            "rotation due",
            OLD,
            PERMS,
            secret=SECRET,
            keep_until=NOW + timedelta(days=7),
        ),
        Change(
            Action.REVOKE,
            "acme",
            NIP_A,
            "legacy",
            "no longer declared",
            OLD[:-2] + "46",
            secret=LEGACY,
            delete_secret=True,
        ),
        Change(
            Action.REPLACE,
            "acme",
            NIP_B,
            "erp",
            "permissions",
            OLD[:-2] + "47",
            PERMS,
            secret=SECRET,
        ),
        Change(Action.ADOPT, "beta", INTERNAL, "erp", "hand-made", HAND, PERMS, secret=SECRET),
    ),
    notes=(
        Note(NoteKind.OVERLAP, "acme", NIP_A, "erp", OLD[:-2] + "44", NOW + timedelta(days=2)),
        Note(NoteKind.WAITING, "acme", NIP_B, "reader", OLD[:-2] + "48"),
    ),
    fingerprint="ab" * 32,
    created_at=NOW,
)
