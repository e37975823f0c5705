"""/v2/certificates: KSeF certificates — limits, enrolment, status, retrieval, query, revocation.

Certificates belong to the authenticated *subject* (NIP, PESEL or
fingerprint), not to the context of the session (certyfikaty-KSeF.md), so
every lookup here is by ``auth.identity``.  Enrolment data and enrolment
itself need a XAdES login (25001/25002 after a KSeF-token login); revocation
is refused to KSeF-token sessions with 403 ``auth-method-not-allowed``.

Enrolment is asynchronous like token activation: an :class:`Enrollment`
answers 100 until ``ready_at`` and is settled lazily when anything of its
subject is read, so no background task exists and ``--state`` restarts
resume where they stopped.  Revocation passes through ``Blocked`` (the
documented transitional status) to ``Revoked``; ``Expired`` is derived from
``validTo`` and the simulator's clock, so ``/_sim/clock`` makes a
certificate expire without waiting.

Per-subject limits are documented as numbers only (limity.md: NIP 300
enrolments / 100 active certificates, PESEL and fingerprint 12 / 6); the
window the enrolment count runs over is not, so the simulator counts the
enrolments whose status is still retained (30 days).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
import weakref
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from starlette.responses import Response

from ksefctl.sim.ca import CertificateAuthority, CsrRefused, check_csr, dn_fields, new_serial, spki
from ksefctl.sim.ids import iso, reference_number
from ksefctl.sim.model import (
    CERTIFICATE_STATUSES,
    CERTIFICATE_TYPES,
    REVOCATION_REASONS,
    AuthOperation,
    Enrollment,
    Identity,
    KsefCertificate,
)
from ksefctl.sim.problems import DESCRIPTIONS, BadRequest, Forbidden, Gone
from ksefctl.sim.service import Simulator
from ksefctl.sim.web import Call, api_route, json_response

ENROLLMENT_RETENTION_S = 30 * 24 * 3600.0  # api-changelog 2.4.0: enrolment status kept 30 days
# (enrolments, active certificates) per subject identifier type, limity.md.
DEFAULT_SUBJECT_LIMITS = {"Nip": (300, 100), "Pesel": (12, 6), "Fingerprint": (12, 6)}
SERIAL = re.compile(r"^[0-9A-F]{16}$")
NAME = re.compile(r"^[a-zA-Z0-9_\- ąćęłńóśźżĄĆĘŁŃÓŚŹŻ]+$")
ENROLLMENT_STATUS = {
    100: "Wniosek przyjęty do realizacji",
    200: "Wniosek obsłużony (certyfikat wygenerowany)",
    400: "Wniosek odrzucony",
    500: "Nieznany błąd",
    550: "Operacja została anulowana przez system",
}
KEY_TAKEN = "Klucz publiczny został już certyfikowany przez inny podmiot."
LIMIT_REACHED = "Osiągnięto dopuszczalny limit posiadanych certyfikatów."
INTERNAL_CERTIFICATE_METHOD = {
    "category": "XadesSignature",
    "code": "xades.internal-certificate",
    "displayName": "Certyfikat KSeF",
}

DESCRIPTIONS.update(
    {
        25001: "Brak możliwości pobrania danych do CSR dla wykorzystanego sposobu uwierzytelnienia.",
        25002: "Brak możliwości złożenia wniosku certyfikacyjnego dla wykorzystanego sposobu uwierzytelnienia.",
        25003: "Dane w CSR nie zgadzają się z danymi w użytym wektorze uwierzytelniającym.",
        25004: "Niepoprawny format CSR lub niepoprawny podpis CSR.",
        25005: "Wniosek certyfikacyjny o podanym numerze referencyjnym nie istnieje.",
        25006: "Osiągnięto limit możliwych do złożenia wniosków certyfikacyjnych.",
        25007: "Osiągnięto limit dopuszczalnej liczby posiadanych certyfikatów.",
        25008: "Certyfikat o podanym numerze seryjnym nie istnieje.",
        25009: "Nie można odwołać wskazanego certyfikatu, ponieważ jest już odwołany, zablokowany lub nieważny.",
        25010: "Nieprawidłowy typ lub długość klucza.",
        25011: "Nieprawidłowy algorytm podpisu CSR.",
    }
)

_authorities: weakref.WeakKeyDictionary[Simulator, CertificateAuthority] = (
    weakref.WeakKeyDictionary()
)


def authority(sim: Simulator) -> CertificateAuthority:
    """The simulator's CA, made on first use and kept in the state file."""
    ca = _authorities.get(sim)
    if ca is None:
        if sim.store.ca_pem is not None:
            ca = CertificateAuthority.from_pem(sim.store.ca_pem)
        else:
            ca = CertificateAuthority.generate(_moment(sim.now()))
            sim.store.set_ca(ca.to_pem())
        _authorities[sim] = ca
    return ca


# --- login with a KSeF certificate (called by /auth/xades-signature) -------------


@dataclass(frozen=True)
class LoginCertificate:
    """A certificate this simulator issued, as the XAdES login sees it."""

    identity: Identity  # the subject it was issued to, whatever its DN says
    refusal: str | None  # a 460 detail when it must not log in


def login_certificate(
    sim: Simulator, certificate: x509.Certificate | None
) -> LoginCertificate | None:
    """What a signing certificate issued here means for a login; None for any other certificate."""
    if certificate is None:
        return None
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex().upper()
    issued = sim.store.certificates_by_fingerprint.get(fingerprint)
    if issued is None:
        return None
    now = sim.now()
    _settle_certificate(sim, issued, now)
    status = issued.status_at(now)
    refusal = None
    if issued.type != "Authentication":
        refusal = "Niepoprawny certyfikat"  # Offline certificates cannot log in
    elif status == "Revoked":
        refusal = "Certyfikat odwołany"
    elif status == "Blocked":
        refusal = "Certyfikat zawieszony"
    elif status == "Expired" or now < issued.valid_from:
        refusal = "Nieważny certyfikat"
    else:
        issued.last_use = now
        sim.store.save_certificate(issued)
    return LoginCertificate(issued.subject, refusal)


def enrollment_data_of(certificate: x509.Certificate | None) -> dict[str, str] | None:
    """The documented DN attributes of a signing certificate (others are left out)."""
    if certificate is None:
        return None
    return dn_fields(certificate.subject, strict=False)


# --- helpers -----------------------------------------------------------------------


def _moment(at: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(at, datetime.UTC)


def _subject(auth: AuthOperation) -> Identity:
    assert auth.identity is not None, "a session always knows who logged in"
    return auth.identity


def _is_token_session(auth: AuthOperation) -> bool:
    return auth.token_reference is not None


def _enrollment_data(auth: AuthOperation) -> dict[str, str] | None:
    if _is_token_session(auth):
        return None
    if auth.enrollment_data is not None:
        return dict(auth.enrollment_data)
    # Sessions opened through /_sim/sessions have no signing certificate: answer what a
    # TEST certificate (ksefctl testcert) for the same identity would carry.
    kind, value = _subject(auth)
    if kind == "Nip":
        name = f"Podmiot {value}"
        return {
            "commonName": name,
            "countryName": "PL",
            "organizationName": name,
            "organizationIdentifier": f"VATPL-{value}",
        }
    if kind == "Pesel":
        return {
            "commonName": "Jan Kowalski",
            "countryName": "PL",
            "givenName": "Jan",
            "surname": "Kowalski",
            "serialNumber": f"PNOPL-{value}",
        }
    return None


def _limits(sim: Simulator, subject: Identity) -> tuple[int, int]:
    enrollments, certificates = DEFAULT_SUBJECT_LIMITS[subject[0]]
    override = sim.store.subject_limits.get(f"{subject[0]}:{subject[1]}", {})
    return override.get("enrollment", enrollments), override.get("certificate", certificates)


def _usage(sim: Simulator, subject: Identity, now: float) -> tuple[int, int]:
    """(enrolments still retained, Active certificates) of a subject, after settling."""
    enrollments = sim.store.enrollments_by_subject.get(subject, [])
    for enrollment in enrollments:
        _settle_enrollment(sim, enrollment, now)
    recent = sum(1 for e in enrollments if now - e.requested < ENROLLMENT_RETENTION_S)
    return recent, _active(sim, subject, now)


def _active(sim: Simulator, subject: Identity, now: float) -> int:
    certificates = sim.store.certificates_by_subject.get(subject, [])
    for certificate in certificates:
        _settle_certificate(sim, certificate, now)
    return sum(1 for c in certificates if c.status_at(now) == "Active")


def _settle_certificate(sim: Simulator, certificate: KsefCertificate, now: float) -> None:
    if certificate.settle(now):
        sim.store.save_certificate(certificate)


def _settle_enrollment(sim: Simulator, enrollment: Enrollment, now: float) -> None:
    """Finish an enrolment whose processing time is over: issue, or fail as decided."""
    if enrollment.code != 100 or now < enrollment.ready_at:
        return
    if enrollment.outcome != 200:
        enrollment.code = enrollment.outcome
    else:
        csr = x509.load_der_x509_csr(base64.b64decode(enrollment.csr))
        public_key = base64.b64encode(spki(csr.public_key())).decode()  # type: ignore[arg-type]
        taken = any(
            c.public_key == public_key and not sim.same_subject(c.subject, enrollment.subject)
            for c in sim.store.certificates.values()
        )
        # Checked again here: enrolments accepted together may exceed the quota between them.
        if taken:
            enrollment.code, enrollment.details = 400, [KEY_TAKEN]
        elif _active(sim, enrollment.subject, now) >= _limits(sim, enrollment.subject)[1]:
            enrollment.code, enrollment.details = 400, [LIMIT_REACHED]
        else:
            enrollment.serial = _issue(sim, enrollment, csr, now).serial
            enrollment.code = 200
    if enrollment.code in (500, 550) and not enrollment.details:
        enrollment.details = ["Przetwarzanie wniosku nie powiodło się."]
    enrollment.csr = ""  # no longer needed once decided
    sim.store.save_enrollment(enrollment)


def _issue(
    sim: Simulator, enrollment: Enrollment, csr: x509.CertificateSigningRequest, now: float
) -> KsefCertificate:
    valid_from = max(enrollment.valid_from or now, now)
    serial = new_serial(sim.store.certificates)
    issued = authority(sim).issue(csr, serial, enrollment.type, _moment(valid_from))
    der = issued.public_bytes(serialization.Encoding.DER)
    common_names = issued.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    certificate = KsefCertificate(
        serial=serial,
        subject=enrollment.subject,
        name=enrollment.name,
        type=enrollment.type,
        common_name=str(common_names[0].value) if common_names else "",
        der=base64.b64encode(der).decode(),
        fingerprint=issued.fingerprint(hashes.SHA256()).hex().upper(),
        public_key=base64.b64encode(spki(issued.public_key())).decode(),  # type: ignore[arg-type]
        requested=enrollment.requested,
        valid_from=issued.not_valid_before_utc.timestamp(),
        valid_to=issued.not_valid_after_utc.timestamp(),
    )
    sim.store.add_certificate(certificate)
    return certificate


def _optional_moment(body: dict[str, Any], field: str) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        raise BadRequest(21405, f"Pole '{field}' musi być datą i czasem ISO 8601.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def _enum(body: dict[str, Any], field: str, allowed: tuple[str, ...]) -> str | None:
    value = body.get(field)
    if value is not None and value not in allowed:
        raise BadRequest(21405, f"Pole '{field}' musi mieć jedną z wartości: {', '.join(allowed)}.")
    return value


async def _optional_json(call: Call) -> dict[str, Any]:
    if not (await call.request.body()).strip():
        return {}
    return await call.json()


def _int_param(call: Call, name: str, default: int, low: int, high: int | None) -> int:
    raw = call.request.query_params.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        limit = f"{low}..{high}" if high is not None else f">= {low}"
        raise BadRequest(21405, f"Parametr '{name}' musi być liczbą całkowitą {limit}.")
    return value


# --- endpoints ---------------------------------------------------------------------


async def limits(call: Call) -> Response:
    sim = call.sim
    subject = _subject(call.session)
    max_enrollments, max_certificates = _limits(sim, subject)
    enrollments, active = _usage(sim, subject, sim.now())
    enrollment_left = max(0, max_enrollments - enrollments)
    certificate_left = max(0, max_certificates - active)
    return json_response(
        {
            "canRequest": enrollment_left > 0 and certificate_left > 0,
            "enrollment": {"limit": max_enrollments, "remaining": enrollment_left},
            "certificate": {"limit": max_certificates, "remaining": certificate_left},
        }
    )


async def enrollment_data(call: Call) -> Response:
    data = _enrollment_data(call.session)
    if data is None:
        raise BadRequest(25001)
    return json_response(data)


async def enroll(call: Call) -> Response:
    sim, auth = call.sim, call.session
    body = await call.json()
    name = body.get("certificateName")
    if not isinstance(name, str) or not 5 <= len(name) <= 100 or not NAME.match(name):
        raise BadRequest(
            21405, "Pole 'certificateName' musi mieć 5..100 znaków: litery, cyfry, _, - i spacje."
        )
    certificate_type = _enum(body, "certificateType", CERTIFICATE_TYPES)
    if certificate_type is None:
        raise BadRequest(21405, "Pole 'certificateType' jest wymagane.")
    csr_text = body.get("csr")
    try:
        if not isinstance(csr_text, str) or not csr_text:
            raise ValueError
        der = base64.b64decode(csr_text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(21405, "Pole 'csr' musi być niepustym ciągiem Base64.") from None
    valid_from = _optional_moment(body, "validFrom")
    expected = _enrollment_data(auth)
    if expected is None:
        raise BadRequest(25002)
    try:
        check_csr(der, expected)
    except CsrRefused as refused:
        raise BadRequest(refused.code, refused.detail) from None
    subject = _subject(auth)
    now = sim.now()
    max_enrollments, max_certificates = _limits(sim, subject)
    enrollments, active = _usage(sim, subject, now)
    if enrollments >= max_enrollments:
        raise BadRequest(25006, f"Limit wniosków: {max_enrollments}.")
    if active >= max_certificates:
        raise BadRequest(25007, f"Limit aktywnych certyfikatów: {max_certificates}.")
    faults = sim.faults
    failed = faults.failed_enrollment_rate and sim.rng.random() < faults.failed_enrollment_rate
    enrollment = Enrollment(
        reference_number=reference_number("EH", now),
        subject=subject,
        name=name,
        type=certificate_type,
        csr=base64.b64encode(der).decode(),
        requested=now,
        valid_from=valid_from,
        ready_at=now + faults.enrollment_delay_s,
        outcome=500 if failed else 200,
    )
    sim.store.add_enrollment(enrollment)
    return json_response(
        {"referenceNumber": enrollment.reference_number, "timestamp": iso(now)}, status=202
    )


async def enrollment_status(call: Call) -> Response:
    sim = call.sim
    reference = call.request.path_params["referenceNumber"]
    if len(reference) != 36:
        raise BadRequest(21405, "Numer referencyjny musi mieć 36 znaków.")
    enrollment = sim.store.enrollments.get(reference)
    if enrollment is None or not sim.same_subject(enrollment.subject, _subject(call.session)):
        raise BadRequest(25005, f"Wniosek {reference} nie istnieje.")
    now = sim.now()
    if now - enrollment.requested > ENROLLMENT_RETENTION_S:
        raise Gone()
    _settle_enrollment(sim, enrollment, now)
    status: dict[str, Any] = {
        "code": enrollment.code,
        "description": ENROLLMENT_STATUS.get(enrollment.code, "Nieznany błąd"),
    }
    if enrollment.details:
        status["details"] = list(enrollment.details)
    body: dict[str, Any] = {"requestDate": iso(enrollment.requested), "status": status}
    if enrollment.serial is not None:
        body["certificateSerialNumber"] = enrollment.serial
    return json_response(body)


def _serials(values: Any, field: str, high: int) -> list[str]:
    if not isinstance(values, list) or not 1 <= len(values) <= high:
        raise BadRequest(21405, f"Pole '{field}' musi być listą 1..{high} numerów seryjnych.")
    for value in values:
        if not isinstance(value, str) or not SERIAL.match(value):
            raise BadRequest(
                21405, f"Numer seryjny {value!r} nie ma postaci 16 cyfr szesnastkowych."
            )
    return values


async def retrieve(call: Call) -> Response:
    sim = call.sim
    body = await call.json()
    serials = _serials(body.get("certificateSerialNumbers"), "certificateSerialNumbers", 10)
    subject = _subject(call.session)
    _usage(sim, subject, sim.now())
    items = []
    for serial in dict.fromkeys(serials):
        certificate = sim.store.certificates.get(serial)
        if certificate is None or not sim.same_subject(certificate.subject, subject):
            continue
        items.append(
            {
                "certificate": certificate.der,
                "certificateName": certificate.name,
                "certificateSerialNumber": certificate.serial,
                "certificateType": certificate.type,
            }
        )
    return json_response({"certificates": items})


def _describe(certificate: KsefCertificate, now: float) -> dict[str, Any]:
    item: dict[str, Any] = {
        "certificateSerialNumber": certificate.serial,
        "name": certificate.name,
        "type": certificate.type,
        "commonName": certificate.common_name,
        "status": certificate.status_at(now),
        "subjectIdentifier": {"type": certificate.subject[0], "value": certificate.subject[1]},
        "validFrom": iso(certificate.valid_from),
        "validTo": iso(certificate.valid_to),
        "requestDate": iso(certificate.requested),
    }
    if certificate.last_use is not None:
        item["lastUseDate"] = iso(certificate.last_use)
    return item


async def query(call: Call) -> Response:
    sim = call.sim
    size = _int_param(call, "pageSize", 10, 10, 50)
    offset = _int_param(call, "pageOffset", 0, 0, None)
    body = await _optional_json(call)
    serial = body.get("certificateSerialNumber")
    if serial is not None and (not isinstance(serial, str) or not SERIAL.match(serial)):
        raise BadRequest(21405, "Pole 'certificateSerialNumber' musi mieć 16 cyfr szesnastkowych.")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise BadRequest(21405, "Pole 'name' musi być tekstem.")
    certificate_type = _enum(body, "type", CERTIFICATE_TYPES)
    status = _enum(body, "status", CERTIFICATE_STATUSES)
    expires_after = _optional_moment(body, "expiresAfter")
    subject = _subject(call.session)
    now = sim.now()
    _usage(sim, subject, now)
    matching = [
        c
        for c in sim.store.certificates_by_subject.get(subject, [])
        if (serial is None or c.serial == serial)
        and (name is None or name.lower() in c.name.lower())
        and (certificate_type is None or c.type == certificate_type)
        and (status is None or c.status_at(now) == status)
        and (expires_after is None or c.valid_to > expires_after)
    ]
    matching.sort(key=lambda c: c.requested, reverse=True)
    page = matching[offset * size : (offset + 1) * size]
    return json_response(
        {
            "certificates": [_describe(c, now) for c in page],
            "hasMore": len(matching) > (offset + 1) * size,
        }
    )


async def revoke(call: Call) -> Response:
    sim, auth = call.sim, call.session
    if _is_token_session(auth):
        raise Forbidden("auth-method-not-allowed")
    serial = call.request.path_params["certificateSerialNumber"]
    if not SERIAL.match(serial):
        raise BadRequest(21405, "Numer seryjny musi mieć 16 cyfr szesnastkowych (wielkie litery).")
    body = await _optional_json(call)
    reason = _enum(body, "revocationReason", REVOCATION_REASONS)
    certificate = sim.store.certificates.get(serial)
    # Your own certificates, or those of the identity linked to yours (NIP-PESEL).
    if certificate is None or not sim.same_subject(certificate.subject, _subject(auth)):
        raise BadRequest(25008, f"Certyfikat {serial} nie istnieje.")
    now = sim.now()
    _settle_certificate(sim, certificate, now)
    if certificate.status_at(now) != "Active":
        raise BadRequest(25009, f"Status certyfikatu: {certificate.status_at(now)}.")
    certificate.status = "Blocked"
    certificate.revocation_reason = reason or "Unspecified"
    certificate.due = now + sim.faults.revocation_delay_s
    sim.store.save_certificate(certificate)
    return Response(status_code=204)


async def subject_limits(call: Call) -> Response:
    sim = call.sim
    max_enrollments, max_certificates = _limits(sim, _subject(call.session))
    return json_response(
        {
            "enrollment": {"maxEnrollments": max_enrollments},
            "certificate": {"maxCertificates": max_certificates},
        }
    )


async def set_subject_limits(call: Call) -> Response:
    sim = call.sim
    body = await call.json()
    subject = _subject(call.session)
    override: dict[str, int] = {}
    for part, key, name in (
        ("enrollment", "maxEnrollments", "enrollment"),
        ("certificate", "maxCertificates", "certificate"),
    ):
        section = body.get(part)
        if section is None:
            continue
        value = section.get(key) if isinstance(section, dict) else "?"
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadRequest(21405, f"Pole '{part}.{key}' musi być liczbą całkowitą >= 0.")
        override[name] = value
    key = f"{subject[0]}:{subject[1]}"
    sim.store.set_subject_limits(key, {**sim.store.subject_limits.get(key, {}), **override})
    return Response(status_code=200)


async def reset_subject_limits(call: Call) -> Response:
    subject = _subject(call.session)
    call.sim.store.set_subject_limits(f"{subject[0]}:{subject[1]}", None)
    return Response(status_code=200)


def routes(sim: Simulator) -> list[Any]:
    def route(method: str, path: str, handler: Any) -> Any:
        return api_route(sim, method, path, handler, group="other", credential="access")

    return [
        route("GET", "/certificates/limits", limits),
        route("GET", "/certificates/enrollments/data", enrollment_data),
        route("POST", "/certificates/enrollments", enroll),
        route("GET", "/certificates/enrollments/{referenceNumber}", enrollment_status),
        route("POST", "/certificates/retrieve", retrieve),
        route("POST", "/certificates/query", query),
        route("POST", "/certificates/{certificateSerialNumber}/revoke", revoke),
        route("GET", "/limits/subject", subject_limits),
        route("POST", "/testdata/limits/subject/certificate", set_subject_limits),
        route("DELETE", "/testdata/limits/subject/certificate", reset_subject_limits),
    ]
