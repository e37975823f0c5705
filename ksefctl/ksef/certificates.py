"""KSeF certificates of the subject that logged in: limits, enrolment, status, retrieval,
query and revocation.

Reached from a logged-in session as ``session.certificates``.  Certificates
belong to the authenticated subject (NIP, PESEL or fingerprint), not to the
session's context, so the same list is seen from every context that subject
logs into.  Enrolment data and enrolment itself need a XAdES login; after a
KSeF-token login KSeF answers 25001/25002 (:class:`ValidationFailed`).

Enrolment is asynchronous: :meth:`Certificates.enroll` returns a reference
number, :meth:`Certificates.wait_for_enrollment` polls it until the serial
number of the issued certificate is known, or raises
:class:`EnrollmentFailed` (KSeF refused it: key already certified, quota,
unknown error) or :class:`EnrollmentTimeout`.  ``POST /certificates/enrollments``
is never repeated blindly: a lost answer is the caller's to resolve by
querying the certificate names it chose.

The quotas (25006 enrolments, 25007 active certificates) raise
:class:`CertificateQuotaExceeded`; an unknown enrolment or certificate
(25005, 25008) raises :class:`NotFound`.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ksefctl.ksef.auth import json_of
from ksefctl.ksef.errors import EnrollmentFailed, EnrollmentTimeout, UnexpectedResponse
from ksefctl.ksef.models import Fields

CertificateType = Literal["Authentication", "Offline"]
CertificateStatus = Literal["Active", "Blocked", "Revoked", "Expired"]
RevocationReason = Literal["Unspecified", "Superseded", "KeyCompromise"]

IN_PROGRESS = 100
ISSUED = 200
RETRIEVE_BATCH = 10  # RetrieveCertificatesRequest.maxItems
QUERY_PAGE = 50  # the largest pageSize /certificates/query allows

# (operation, path, *, idempotent, ok=…, params=…, json=…, headers=…) -> response, where
# ``operation`` is open-api.json's name ("GET /certificates/limits"): the session paces each
# operation on its own counter, as KSeF counts them.
CallFn = Callable[..., Awaitable[httpx.Response]]

LIMITS = "GET /certificates/limits"
ENROLLMENT_DATA = "GET /certificates/enrollments/data"
ENROLL = "POST /certificates/enrollments"
ENROLLMENT_STATUS = "GET /certificates/enrollments/{referenceNumber}"
RETRIEVE = "POST /certificates/retrieve"
QUERY = "POST /certificates/query"
REVOKE = "POST /certificates/{certificateSerialNumber}/revoke"


@dataclass(frozen=True)
class CertificateLimit:
    limit: int
    remaining: int


@dataclass(frozen=True)
class CertificateLimits:
    """``GET /certificates/limits``: whether one more enrolment is allowed, and why not."""

    can_request: bool
    enrollment: CertificateLimit
    certificate: CertificateLimit

    @classmethod
    def parse(cls, data: Any, where: str) -> CertificateLimits:
        f = Fields(data, where)
        return cls(
            _flag(data, "canRequest", where),
            _limit(f.obj("enrollment")),
            _limit(f.obj("certificate")),
        )


def _flag(data: Any, key: str, where: str) -> bool:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, bool):
        raise UnexpectedResponse(f"KSeF answer to {where}: '{key}' is not a boolean")
    return value


def _limit(f: Fields) -> CertificateLimit:
    return CertificateLimit(f.integer("limit"), f.integer("remaining"))


# Enrolment-data field name in the API -> attribute name here.
ENROLLMENT_FIELDS = {
    "commonName": "common_name",
    "countryName": "country_name",
    "givenName": "given_name",
    "surname": "surname",
    "serialNumber": "serial_number",
    "uniqueIdentifier": "unique_identifier",
    "organizationName": "organization_name",
    "organizationIdentifier": "organization_identifier",
}


@dataclass(frozen=True)
class EnrollmentData:
    """The DN a CSR must carry, read by KSeF from the certificate used to log in."""

    common_name: str
    country_name: str
    given_name: str | None = None
    surname: str | None = None
    serial_number: str | None = None
    unique_identifier: str | None = None
    organization_name: str | None = None
    organization_identifier: str | None = None

    @classmethod
    def parse(cls, data: Any, where: str) -> EnrollmentData:
        f = Fields(data, where)
        values = {attr: f.opt_text(key) for key, attr in ENROLLMENT_FIELDS.items()}
        values["common_name"] = f.text("commonName")
        values["country_name"] = f.text("countryName")
        return cls(**values)  # type: ignore[arg-type]

    def attributes(self) -> dict[str, str]:
        """The attributes present, under their API names (``commonName`` …)."""
        return {
            key: value
            for key, attr in ENROLLMENT_FIELDS.items()
            if (value := getattr(self, attr)) is not None
        }


@dataclass(frozen=True)
class EnrollmentStatus:
    """``GET /certificates/enrollments/{ref}``: 100 in progress, 200 issued, else refused."""

    reference_number: str
    requested: datetime
    code: int
    description: str
    details: tuple[str, ...]
    serial_number: str | None

    @property
    def in_progress(self) -> bool:
        return self.code == IN_PROGRESS

    @classmethod
    def parse(cls, reference_number: str, data: Any, where: str) -> EnrollmentStatus:
        f = Fields(data, where)
        status = f.obj("status")
        return cls(
            reference_number=reference_number,
            requested=f.moment("requestDate"),
            code=status.integer("code"),
            description=status.text("description"),
            details=tuple(status.texts("details", required=False)),
            serial_number=f.opt_text("certificateSerialNumber"),
        )


@dataclass(frozen=True)
class RetrievedCertificate:
    """An issued certificate's content (``POST /certificates/retrieve``); public, no key."""

    serial_number: str
    name: str
    type: str
    der: bytes

    def __repr__(self) -> str:
        return f"RetrievedCertificate({self.serial_number}, {self.name!r}, {self.type})"

    @property
    def certificate(self) -> x509.Certificate:
        try:
            return x509.load_der_x509_certificate(self.der)
        except ValueError:
            raise UnexpectedResponse(
                f"KSeF returned certificate {self.serial_number} in a form that is not DER X.509"
            ) from None

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @classmethod
    def parse(cls, data: Any, where: str) -> RetrievedCertificate:
        f = Fields(data, where)
        try:
            der = base64.b64decode(f.text("certificate"), validate=True)
        except ValueError:
            raise UnexpectedResponse(
                f"KSeF answer to {where}: 'certificate' is not Base64"
            ) from None
        return cls(
            f.text("certificateSerialNumber"),
            f.text("certificateName"),
            f.text("certificateType"),
            der,
        )


@dataclass(frozen=True)
class CertificateInfo:
    """One item of ``POST /certificates/query``."""

    serial_number: str
    name: str
    type: str
    common_name: str
    status: str
    subject_type: str  # Nip | Pesel | Fingerprint
    subject_value: str
    valid_from: datetime
    valid_to: datetime
    requested: datetime
    last_used: datetime | None

    @classmethod
    def parse(cls, data: Any, where: str) -> CertificateInfo:
        f = Fields(data, where)
        subject = f.obj("subjectIdentifier")
        return cls(
            serial_number=f.text("certificateSerialNumber"),
            name=f.text("name"),
            type=f.text("type"),
            common_name=f.text("commonName"),
            status=f.text("status"),
            subject_type=subject.text("type"),
            subject_value=subject.text("value"),
            valid_from=f.moment("validFrom"),
            valid_to=f.moment("validTo"),
            requested=f.moment("requestDate"),
            last_used=f.opt_moment("lastUseDate"),
        )


class Certificates:
    """The certificate calls of one logged-in session (see the module docstring)."""

    def __init__(self, call: CallFn, owner: object) -> None:
        self._call = call
        self._owner = owner  # what error messages name: the session's context

    def __repr__(self) -> str:
        return f"Certificates({self._owner})"

    async def limits(self) -> CertificateLimits:
        where = "GET /certificates/limits"
        response = await self._call(LIMITS, "/certificates/limits", idempotent=True)
        return CertificateLimits.parse(json_of(response, where), where)

    async def enrollment_data(self) -> EnrollmentData:
        where = "GET /certificates/enrollments/data"
        response = await self._call(
            ENROLLMENT_DATA, "/certificates/enrollments/data", idempotent=True
        )
        return EnrollmentData.parse(json_of(response, where), where)

    async def enroll(
        self,
        name: str,
        certificate_type: CertificateType,
        csr_der: bytes,
        *,
        valid_from: datetime | None = None,
    ) -> str:
        """Submit a PKCS#10 request (DER); the enrolment's reference number."""
        where = "POST /certificates/enrollments"
        body: dict[str, Any] = {
            "certificateName": name,
            "certificateType": certificate_type,
            "csr": base64.b64encode(csr_der).decode(),
        }
        if valid_from is not None:
            if valid_from.tzinfo is None:
                raise ValueError("valid_from must be timezone-aware")
            body["validFrom"] = valid_from.isoformat()
        response = await self._call(
            ENROLL, "/certificates/enrollments", idempotent=False, ok=(202,), json=body
        )
        return Fields(json_of(response, where), where).text("referenceNumber")

    async def enrollment_status(self, reference_number: str) -> EnrollmentStatus:
        path = f"/certificates/enrollments/{quote(reference_number, safe='')}"
        response = await self._call(ENROLLMENT_STATUS, path, idempotent=True)
        return EnrollmentStatus.parse(
            reference_number, json_of(response, f"GET {path}"), f"GET {path}"
        )

    async def wait_for_enrollment(
        self, reference_number: str, deadline_s: float, *, first_poll_s: float = 0.2
    ) -> EnrollmentStatus:
        """Poll until the enrolment ends; its status with the serial number once issued.

        Polls back off from ``first_poll_s`` to 2 s so a slow KSeF costs few requests.
        """
        deadline = time.monotonic() + deadline_s
        delay = first_poll_s
        while True:
            status = await self.enrollment_status(reference_number)
            if not status.in_progress:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise EnrollmentTimeout(
                    f"certificate enrolment {reference_number} still in progress after "
                    f"{deadline_s:g} s"
                )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 1.5, 2.0)
        if status.code != ISSUED or status.serial_number is None:
            details = f": {'; '.join(status.details)}" if status.details else ""
            raise EnrollmentFailed(
                f"certificate enrolment {reference_number} ended {status.code} "
                f"{status.description.rstrip('.')}{details}",
                codes=[status.code],
                description=status.description,
                details=status.details,
            )
        return status

    async def retrieve(self, serial_numbers: Iterable[str]) -> list[RetrievedCertificate]:
        """The certificates KSeF knows among ``serial_numbers`` (others are left out)."""
        wanted = list(dict.fromkeys(serial_numbers))
        found: list[RetrievedCertificate] = []
        for start in range(0, len(wanted), RETRIEVE_BATCH):
            where = "POST /certificates/retrieve"
            batch = wanted[start : start + RETRIEVE_BATCH]
            response = await self._call(
                RETRIEVE,
                "/certificates/retrieve",
                idempotent=True,
                json={"certificateSerialNumbers": batch},
            )
            f = Fields(json_of(response, where), where)
            for i, item in enumerate(f.array("certificates")):
                found.append(RetrievedCertificate.parse(item, f"{where}.certificates[{i}]"))
        return found

    async def query(
        self,
        *,
        serial_number: str | None = None,
        name: str | None = None,
        certificate_type: CertificateType | None = None,
        status: CertificateStatus | None = None,
        expires_after: datetime | None = None,
        page_size: int = QUERY_PAGE,
    ) -> list[CertificateInfo]:
        """Every certificate matching the filters, newest request first, across all pages.

        ``name`` matches as a substring (KSeF's "contains").
        """
        body: dict[str, Any] = {}
        if serial_number is not None:
            body["certificateSerialNumber"] = serial_number
        if name is not None:
            body["name"] = name
        if certificate_type is not None:
            body["type"] = certificate_type
        if status is not None:
            body["status"] = status
        if expires_after is not None:
            body["expiresAfter"] = expires_after.isoformat()
        found: list[CertificateInfo] = []
        offset = 0
        while True:
            where = f"POST /certificates/query (page {offset + 1})"
            response = await self._call(
                QUERY,
                "/certificates/query",
                idempotent=True,
                params={"pageSize": page_size, "pageOffset": offset},
                json=body,
            )
            data = json_of(response, where)
            f = Fields(data, where)
            items = f.array("certificates")
            for i, item in enumerate(items):
                found.append(CertificateInfo.parse(item, f"{where}.certificates[{i}]"))
            if not _flag(data, "hasMore", where) or not items:
                return found
            offset += 1

    async def revoke(self, serial_number: str, reason: RevocationReason = "Unspecified") -> None:
        """Revoke a certificate (it passes through Blocked to Revoked)."""
        path = f"/certificates/{quote(serial_number, safe='')}/revoke"
        await self._call(
            REVOKE, path, idempotent=True, ok=(204,), json={"revocationReason": reason}
        )
