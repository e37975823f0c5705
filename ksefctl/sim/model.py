"""What the simulator remembers: KSeF tokens and authentication operations.

Status changes that KSeF performs asynchronously (Pending -> Active/Failed,
Revoking -> Revoked) are stored as a due time and an outcome and applied
lazily whenever the record is read, so no background task is needed and a
restarted simulator picks up exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ksefctl.sim.ids import iso

TOKEN_PERMISSIONS = (
    "InvoiceRead",
    "InvoiceWrite",
    "CredentialsRead",
    "CredentialsManage",
    "SubunitManage",
    "EnforcementOperations",
    "Introspection",
)
TOKEN_STATUSES = ("Pending", "Active", "Revoking", "Revoked", "Failed")

Context = tuple[str, str]  # (type, value), e.g. ("Nip", "5265877635")
Identity = tuple[str, str]  # (type, value), e.g. ("Pesel", "15062788702")


@dataclass
class Token:
    reference_number: str
    seq: int
    context: Context
    author: Identity
    description: str
    permissions: list[str]
    created: float
    secret_hash: str
    status: str = "Pending"
    due: float | None = None  # when a Pending/Revoking status advances
    outcome: str | None = None  # what it advances to
    last_use: float | None = None
    status_details: list[str] = field(default_factory=list)

    def settle(self, now: float) -> bool:
        """Apply a due asynchronous transition; True when the status changed."""
        if self.due is None or now < self.due or self.outcome is None:
            return False
        self.status, self.due, self.outcome = self.outcome, None, None
        if self.status == "Failed":
            self.status_details = ["Nie udało się aktywować tokena."]
        return True

    def describe(self) -> dict[str, Any]:
        """A QueryTokensResponseItem / TokenStatusResponse."""
        item: dict[str, Any] = {
            "referenceNumber": self.reference_number,
            "authorIdentifier": {"type": self.author[0], "value": self.author[1]},
            "contextIdentifier": {"type": self.context[0], "value": self.context[1]},
            "description": self.description,
            "requestedPermissions": list(self.permissions),
            "dateCreated": iso(self.created),
            "status": self.status,
            "statusDetails": list(self.status_details),
        }
        if self.last_use is not None:
            item["lastUseDate"] = iso(self.last_use)
        return item

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Token:
        data = dict(data)
        data["context"] = tuple(data["context"])
        data["author"] = tuple(data["author"])
        return cls(**data)


@dataclass
class AuthOperation:
    """One authentication: from POST /auth/… through redeem to the end of its refresh token."""

    reference_number: str
    context: Context
    identity: Identity | None  # None when the attempt failed before an identity was known
    method: str  # AuthenticationMethod, e.g. "Token", "QualifiedSeal"
    method_info: dict[str, str]
    started: float
    ready_at: float  # GET /auth/{ref} answers 100 until then
    code: int
    description: str
    details: list[str] = field(default_factory=list)
    token_reference: str | None = None  # the KSeF token used to log in
    token_permissions: list[str] | None = None  # a token session holds exactly these
    allowed_ips: dict[str, Any] | None = None
    redeemed: bool = False
    refresh_valid_until: float | None = None
    last_refresh: float | None = None
    revoked: bool = False
    # DN attributes of the XAdES signing certificate: GET /certificates/enrollments/data
    enrollment_data: dict[str, str] | None = None

    def status(self, now: float) -> dict[str, Any]:
        if now < self.ready_at:
            return {"code": 100, "description": "Uwierzytelnianie w toku"}
        if self.revoked:
            return {
                "code": 425,
                "description": "Uwierzytelnienie unieważnione",
                "details": [
                    "Uwierzytelnienie i powiązane refresh tokeny zostały unieważnione przez użytkownika"
                ],
            }
        status: dict[str, Any] = {"code": self.code, "description": self.description}
        if self.details:
            status["details"] = list(self.details)
        return status

    def is_active_session(self, now: float) -> bool:
        return (
            self.redeemed
            and not self.revoked
            and self.refresh_valid_until is not None
            and now < self.refresh_valid_until
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthOperation:
        data = dict(data)
        data["context"] = tuple(data["context"])
        if data.get("identity") is not None:
            data["identity"] = tuple(data["identity"])
        return cls(**data)


CERTIFICATE_TYPES = ("Authentication", "Offline")
CERTIFICATE_STATUSES = ("Active", "Blocked", "Revoked", "Expired")
REVOCATION_REASONS = ("Unspecified", "Superseded", "KeyCompromise")


@dataclass
class Enrollment:
    """A KSeF certificate request: 100 until ``ready_at``, then its outcome (issued lazily)."""

    reference_number: str
    subject: Identity
    name: str
    type: str  # Authentication | Offline
    csr: str  # Base64 DER, kept until the certificate is issued
    requested: float
    valid_from: float | None
    ready_at: float
    code: int = 100  # 100 until settled; then 200, or the failure code decided at submission
    outcome: int = 200
    details: list[str] = field(default_factory=list)
    serial: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Enrollment:
        data = dict(data)
        data["subject"] = tuple(data["subject"])
        return cls(**data)


@dataclass
class KsefCertificate:
    """A certificate the simulator's CA issued; Expired is derived from ``valid_to``."""

    serial: str  # 16 upper-case hex digits
    subject: Identity
    name: str
    type: str
    common_name: str
    der: str  # Base64 DER
    fingerprint: str  # SHA-256 of the DER, upper-case hex
    public_key: str  # Base64 SubjectPublicKeyInfo DER, to spot a key certified twice
    requested: float
    valid_from: float
    valid_to: float
    status: str = "Active"  # Active | Blocked | Revoked
    revocation_reason: str | None = None
    due: float | None = None  # Blocked -> Revoked
    last_use: float | None = None

    def settle(self, now: float) -> bool:
        if self.due is None or now < self.due:
            return False
        self.status, self.due = "Revoked", None
        return True

    def status_at(self, now: float) -> str:
        if self.status == "Active" and now > self.valid_to:
            return "Expired"
        return self.status

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KsefCertificate:
        data = dict(data)
        data["subject"] = tuple(data["subject"])
        return cls(**data)
