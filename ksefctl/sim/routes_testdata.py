"""/v2/testdata: the TEST environment's seeding endpoints (subjects, persons, permissions, limits)."""

from __future__ import annotations

import datetime
from typing import Any

from starlette.responses import Response

from ksefctl.sim.config import DEFAULT_RATE_LIMITS
from ksefctl.sim.problems import BadRequest
from ksefctl.sim.service import Simulator
from ksefctl.sim.validation import PATTERNS, canonical, identifier, optional_bool, text
from ksefctl.sim.web import Call, api_route

SUBJECT_TYPES = ("EnforcementAuthority", "VatGroup", "JST")
AUTHORIZED_TYPES = ("Nip", "Pesel", "Fingerprint")
TESTDATA_PERMISSIONS = (
    "InvoiceRead",
    "InvoiceWrite",
    "Introspection",
    "CredentialsRead",
    "CredentialsManage",
    "EnforcementOperations",
    "SubunitManage",
)
BLOCKABLE_CONTEXTS = ("Nip", "InternalId", "NipVatUe", "PeppolId")


def _nip(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not PATTERNS["Nip"].fullmatch(value):
        raise BadRequest(21405, f"Pole '{field}' nie jest poprawnym numerem NIP.")
    return value


def _created_date(body: dict[str, Any]) -> None:
    value = body.get("createdDate")
    if value is None:
        return
    try:
        if not isinstance(value, str):
            raise TypeError(value)
        datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadRequest(21405, "Pole 'createdDate' nie jest poprawną datą.") from None


async def create_subject(call: Call) -> Response:
    body = await call.json()
    nip = _nip(body, "subjectNip")
    body["subjectType"] = canonical(body.get("subjectType"), SUBJECT_TYPES)
    if body["subjectType"] is None:
        raise BadRequest(21405, "Nieznana wartość pola 'subjectType'.")
    description = text(body, "description", 5, 256)
    _created_date(body)
    # Repeating a subject is refused, not an update (the endpoint's documented 400 30001).
    if nip in call.sim.store.subjects:
        raise BadRequest(30001, f"Podmiot o numerze NIP {nip} już istnieje.")
    subunits = [
        item["subjectNip"]
        for item in body.get("subunits") or []
        if isinstance(item, dict) and isinstance(item.get("subjectNip"), str)
    ]
    call.sim.store.put_subject(
        nip,
        {
            "subjectType": body["subjectType"],
            "description": description,
            # Read by /permissions (entity roles, subunit administrators).
            "subunits": subunits,
            "created": call.sim.now(),
        },
    )
    return Response(status_code=200)


async def remove_subject(call: Call) -> Response:
    body = await call.json()
    nip = _nip(body, "subjectNip")
    store = call.sim.store
    store.remove_subject(nip)
    for grant in store.grants.in_context(("Nip", nip)):
        store.grants.remove(grant.id)
    return Response(status_code=200)


async def create_person(call: Call) -> Response:
    body = await call.json()
    nip = _nip(body, "nip")
    pesel = body.get("pesel")
    if not isinstance(pesel, str) or not PATTERNS["Pesel"].fullmatch(pesel):
        raise BadRequest(21405, "Pole 'pesel' nie jest poprawnym numerem PESEL.")
    if not isinstance(body.get("isBailiff"), bool):
        raise BadRequest(21405, "Pole 'isBailiff' jest wymagane.")
    is_deceased = optional_bool(body, "isDeceased")
    text(body, "description", 5, 256)
    _created_date(body)
    store = call.sim.store
    if nip in store.persons or pesel in store.person_nip:
        raise BadRequest(30001, f"Osoba o numerze NIP {nip} lub PESEL {pesel} już istnieje.")
    store.link_person(pesel, nip)
    # dane-testowe-scenariusze.md: a bailiff logging in to this NIP's context (by PESEL or NIP)
    # holds EnforcementOperations on top of the owner's permissions; a deceased person's logins
    # end 470.
    store.put_person(
        nip, {"pesel": pesel, "isBailiff": body["isBailiff"], "isDeceased": is_deceased}
    )
    return Response(status_code=200)


async def remove_person(call: Call) -> Response:
    body = await call.json()
    nip = _nip(body, "nip")
    call.sim.store.unlink_nip(nip)
    call.sim.store.put_person(nip, None)
    return Response(status_code=200)


async def grant_permissions(call: Call) -> Response:
    body = await call.json()
    context = identifier(body.get("contextIdentifier"), "contextIdentifier", ("Nip",))
    identity = identifier(
        body.get("authorizedIdentifier"), "authorizedIdentifier", AUTHORIZED_TYPES
    )
    permissions = body.get("permissions")
    if not isinstance(permissions, list):
        raise BadRequest(21405, "Pole 'permissions' musi być listą.")
    granted = set()
    for item in permissions:
        kind = (
            canonical(item.get("permissionType"), TESTDATA_PERMISSIONS)
            if isinstance(item, dict)
            else None
        )
        if kind is None:
            raise BadRequest(21405, f"Nieznany typ uprawnienia: {kind!r}.")
        text(item, "description", 5, 256)
        granted.add(kind)
    call.sim.store.grant(context, identity, granted)
    return Response(status_code=200)


async def revoke_permissions(call: Call) -> Response:
    body = await call.json()
    context = identifier(body.get("contextIdentifier"), "contextIdentifier", ("Nip",))
    identity = identifier(
        body.get("authorizedIdentifier"), "authorizedIdentifier", AUTHORIZED_TYPES
    )
    call.sim.store.revoke_grants(context, identity)
    return Response(status_code=200)


async def set_rate_limits(call: Call) -> Response:
    body = await call.json()
    limits = body.get("rateLimits")
    if not isinstance(limits, dict):
        raise BadRequest(21405, "Pole 'rateLimits' jest wymagane.")
    parsed: dict[str, tuple[int, int, int]] = {}
    for group in DEFAULT_RATE_LIMITS:
        values = limits.get(group)
        try:
            if not isinstance(values, dict):
                raise TypeError(group)
            parsed[group] = (
                int(values["perSecond"]),
                int(values["perMinute"]),
                int(values["perHour"]),
            )
        except (TypeError, KeyError, ValueError):
            raise BadRequest(
                21405, f"Pole 'rateLimits.{group}' wymaga perSecond, perMinute i perHour."
            ) from None
    call.sim.store.set_rate_override(call.session.context, parsed)
    return Response(status_code=200)


async def production_rate_limits(call: Call) -> Response:
    """The documented production values, whatever ``rate_limits`` the simulator runs with."""
    call.sim.store.set_rate_override(call.session.context, dict(DEFAULT_RATE_LIMITS))
    return Response(status_code=200)


async def block_context(call: Call) -> Response:
    body = await call.json()
    context = identifier(body.get("contextIdentifier"), "contextIdentifier", BLOCKABLE_CONTEXTS)
    call.sim.store.block_context(context, True)
    return Response(status_code=200)


async def unblock_context(call: Call) -> Response:
    body = await call.json()
    context = identifier(body.get("contextIdentifier"), "contextIdentifier", BLOCKABLE_CONTEXTS)
    call.sim.store.block_context(context, False)
    return Response(status_code=200)


async def reset_rate_limits(call: Call) -> Response:
    call.sim.store.set_rate_override(call.session.context, None)
    return Response(status_code=200)


def routes(sim: Simulator) -> list[Any]:
    unauthenticated: list[tuple[str, Any]] = [
        ("/testdata/subject", create_subject),
        ("/testdata/subject/remove", remove_subject),
        ("/testdata/person", create_person),
        ("/testdata/person/remove", remove_person),
        ("/testdata/permissions", grant_permissions),
        ("/testdata/permissions/revoke", revoke_permissions),
    ]
    result = [
        api_route(sim, "POST", path, handler, group="auth", credential=None)
        for path, handler in unauthenticated
    ]
    # Block/unblock carry the contract's 10/30/120 limits, yet no Bearer: counted per IP.
    for path, handler in (
        ("/testdata/context/block", block_context),
        ("/testdata/context/unblock", unblock_context),
    ):
        result.append(api_route(sim, "POST", path, handler, group="other", credential=None))
    result.append(
        api_route(
            sim,
            "POST",
            "/testdata/rate-limits/production",
            production_rate_limits,
            group="other",
            credential="access",
        )
    )
    result.append(
        api_route(
            sim,
            "POST",
            "/testdata/rate-limits",
            set_rate_limits,
            group="other",
            credential="access",
        )
    )
    result.append(
        api_route(
            sim,
            "DELETE",
            "/testdata/rate-limits",
            reset_rate_limits,
            group="other",
            credential="access",
        )
    )
    return result
