"""What the certificate kind observes and the changes it plans: plain immutable data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from ksefctl.manifest.certificates import CertificateMarker
from ksefctl.reconcile.model import KindChange
from ksefctl.vocabulary import SecretRef

KIND = "certificate"
STATUSES = ("Active", "Blocked", "Revoked", "Expired")


@dataclass(frozen=True)
class ObservedCertificate:
    """One certificate of the subject as ``POST /certificates/query`` lists it (public data)."""

    serial_number: str
    name: str  # the full certificateName
    type: str
    status: str  # one of STATUSES
    valid_from: datetime
    valid_to: datetime
    requested: datetime
    marker: CertificateMarker | None = None  # None: not made by ksefctl


@dataclass(frozen=True)
class CertificateSecret:
    """What Vault holds at one certificate's path: metadata, never the key."""

    secret: SecretRef
    exists: bool  # a live current version holding a certificate and its key
    version: int  # current version (for check-and-set), 0 when never written
    serial_number: str | None = None
    certificate_type: str | None = None
    key_algorithm: str | None = None
    created: datetime | None = None  # when ksefctl stored it (createdAt)
    owner: str | None = None  # custom_metadata owner (None: not written by ksefctl)


@dataclass(frozen=True)
class ObservedCertificates:
    """The certificates of the subject logged into one context, and their secrets by name."""

    certificates: tuple[ObservedCertificate, ...]
    secrets: Mapping[str, CertificateSecret] = field(default_factory=dict)

    def by_serial(self, serial_number: str) -> ObservedCertificate | None:
        return next((c for c in self.certificates if c.serial_number == serial_number), None)


@dataclass(frozen=True)
class CertificateChange(KindChange):
    """One certificate step in one context.

    CREATE / REPLACE enrol a new certificate of ``certificate_type`` with a
    fresh ``key_algorithm`` key and store it at ``secret``; a REPLACE names the
    certificate it renews in ``serial_number``, revoked (Superseded) once the
    successor is stored unless ``keep_until`` keeps it for an overlap.  REVOKE
    revokes ``serial_number`` for ``revocation_reason`` (none: only the secret
    goes) and, with ``delete_secret``, soft-deletes ``secret`` first.
    """

    kind: ClassVar[str] = KIND
    certificate_type: str = ""
    key_algorithm: str = ""
    valid_from: datetime | None = None
    secret: SecretRef | None = None
    serial_number: str | None = None
    keep_until: datetime | None = None
    revocation_reason: str = ""  # REVOKE: Superseded | Unspecified
    delete_secret: bool = False
