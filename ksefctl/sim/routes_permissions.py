"""/v2/permissions: granting, revoking and querying permissions; operation status.

A grant or revocation is checked in two steps, as KSeF does: the request's
shape (400 21405) and the caller's right to call the endpoint at all (403
missing-permissions) at once; whether the operation itself is allowed (the
identifiers' relations, the context's role) in the operation's outcome, read
later with GET /permissions/operations/{ref}.  The rules on what grants mean
are in :mod:`ksefctl.sim.grants`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from starlette.responses import Response

from ksefctl.sim.grants import (
    ALL_PARTNERS,
    AUTHORIZATION,
    ENTITY,
    INDIRECT,
    OPERATION_TTL_S,
    PERSON,
    SUBUNIT,
    Grant,
    PermissionOperation,
    new_grant_id,
)
from ksefctl.sim.ids import iso, reference_number
from ksefctl.sim.model import Context, Identity
from ksefctl.sim.problems import BadRequest, Forbidden, Gone
from ksefctl.sim.service import Simulator
from ksefctl.sim.validation import identifier, text
from ksefctl.sim.web import Call, api_route, json_response

PERSON_PERMISSIONS = (
    "CredentialsManage",
    "CredentialsRead",
    "InvoiceWrite",
    "InvoiceRead",
    "Introspection",
    "SubunitManage",
    "EnforcementOperations",
)
PERSONAL_PERMISSIONS = (*PERSON_PERMISSIONS, "VatUeManage")
INVOICE_PERMISSIONS = ("InvoiceWrite", "InvoiceRead")
AUTHORIZATIONS = ("SelfInvoicing", "RRInvoicing", "TaxRepresentative", "PefInvoicing")
PERSON_SUBJECTS = ("Nip", "Pesel", "Fingerprint")
DETAILS_TYPES = (
    "PersonByIdentifier",
    "PersonByFingerprintWithIdentifier",
    "PersonByFingerprintWithoutIdentifier",
)
DETAILS_FIELD = {
    "PersonByIdentifier": "personById",
    "PersonByFingerprintWithIdentifier": "personByFpWithId",
    "PersonByFingerprintWithoutIdentifier": "personByFpNoId",
}
ENFORCEMENT_ROLES = {"CourtBailiff", "EnforcementAuthority"}
PARENT_ROLES = {"VatGroupUnit", "LocalGovernmentUnit"}
ROLE_OF_TYPE = {
    "VatGroup": ("VatGroupUnit", "VatGroupSubUnit"),
    "JST": ("LocalGovernmentUnit", "LocalGovernmentSubUnit"),
    "EnforcementAuthority": ("EnforcementAuthority", None),
}
_PEPPOL = re.compile(r"^[A-Z0-9]{9,10}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


# -- request checks ------------------------------------------------------------


def _require(call: Call, any_of: Iterable[str]) -> frozenset[str]:
    held = call.sim.session_permissions(call.session)
    wanted = list(any_of)
    if not held & set(wanted):
        raise Forbidden(
            "missing-permissions",
            {"requiredAnyOfPermissions": wanted, "presentPermissions": sorted(held)},
        )
    return held


def _context(call: Call, allowed: tuple[str, ...] = ("Nip",)) -> Context:
    context = call.session.context
    if context[0] not in allowed:
        raise Forbidden("context-type-not-allowed", {"contextIdentifierType": context[0]})
    return context


def _permissions(body: dict[str, Any], allowed: tuple[str, ...]) -> list[str]:
    values = body.get("permissions")
    if not isinstance(values, list) or not values:
        raise BadRequest(21405, "Pole 'permissions' musi być niepustą listą.")
    for value in values:
        if value not in allowed:
            raise BadRequest(21405, f"Nieznana wartość {value!r} w polu 'permissions'.")
    if len(set(values)) != len(values):
        raise BadRequest(21405, "Każde uprawnienie może wystąpić w polu 'permissions' tylko raz.")
    return list(values)


def _name(data: dict[str, Any], field: str, where: str, high: int) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not 2 <= len(value) <= high:
        raise BadRequest(21405, f"Pole '{where}.{field}' musi być tekstem o długości 2..{high}.")
    return value


def _person_details(body: dict[str, Any]) -> dict[str, Any]:
    """PersonPermissionSubjectDetails → what queries list as PermissionsSubjectPersonDetails."""
    details = body.get("subjectDetails")
    if not isinstance(details, dict) or details.get("subjectDetailsType") not in DETAILS_TYPES:
        raise BadRequest(
            21405, f"Pole 'subjectDetails.subjectDetailsType' musi być jednym z: {DETAILS_TYPES}."
        )
    kind = details["subjectDetailsType"]
    where = f"subjectDetails.{DETAILS_FIELD[kind]}"
    data = details.get(DETAILS_FIELD[kind])
    if not isinstance(data, dict):
        raise BadRequest(21405, f"Pole '{where}' jest wymagane dla {kind}.")
    listed: dict[str, Any] = {
        "subjectDetailsType": kind,
        "firstName": _name(data, "firstName", where, 30),
        "lastName": _name(data, "lastName", where, 81),
    }
    if kind == "PersonByFingerprintWithIdentifier":
        person = identifier(data.get("identifier"), f"{where}.identifier", ("Pesel", "Nip"))
        listed["personIdentifier"] = {"type": person[0], "value": person[1]}
    if kind == "PersonByFingerprintWithoutIdentifier":
        birth = data.get("birthDate")
        document = data.get("idDocument")
        if not isinstance(birth, str) or not _DATE.match(birth):
            raise BadRequest(21405, f"Pole '{where}.birthDate' musi być datą RRRR-MM-DD.")
        if not (
            isinstance(document, dict)
            and isinstance(document.get("type"), str)
            and 0 < len(document["type"]) <= 20
            and isinstance(document.get("number"), str)
            and 0 < len(document["number"]) <= 20
            and isinstance(document.get("country"), str)
            and _COUNTRY.match(document["country"])
        ):
            raise BadRequest(21405, f"Pole '{where}.idDocument' wymaga type, number i country.")
        listed["birthDate"] = birth
        listed["idDocument"] = {k: document[k] for k in ("type", "number", "country")}
    return listed


def _entity_details(body: dict[str, Any]) -> dict[str, Any]:
    details = body.get("subjectDetails")
    if not isinstance(details, dict):
        raise BadRequest(21405, "Pole 'subjectDetails' jest wymagane.")
    full_name = text(details, "fullName", 5, 90)
    return {"subjectDetailsType": "EntityByIdentifier", "fullName": full_name}


def _internal_id_checksum_ok(value: str) -> bool:
    digits = value.replace("-", "")
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits[:-1]))
    return total % 10 == int(digits[-1])


async def _optional_json(call: Call) -> dict[str, Any]:
    raw = await call.request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest(21405, "Treść żądania nie jest poprawnym dokumentem JSON.") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest(21405, "Treść żądania musi być obiektem JSON.")
    return body


# -- roles of a context ----------------------------------------------------------


def roles(sim: Simulator, nip: str) -> list[dict[str, Any]]:
    """EntityRole items of a NIP, from the subjects /testdata/subject created."""
    found: list[dict[str, Any]] = []
    own = sim.store.subjects.get(nip)
    if own is not None and own.get("subjectType") in ROLE_OF_TYPE:
        found.append(
            {
                "role": ROLE_OF_TYPE[own["subjectType"]][0],
                "description": own.get("description") or "Rola podmiotu",
                "startDate": iso(float(own.get("created", 0.0))),
            }
        )
    for parent, subject in sim.store.subjects.items():
        sub_role = ROLE_OF_TYPE.get(subject.get("subjectType", ""), (None, None))[1]
        if sub_role and nip in _subunit_nips(subject):
            found.append(
                {
                    "parentEntityIdentifier": {"type": "Nip", "value": parent},
                    "role": sub_role,
                    "description": subject.get("description") or "Rola podmiotu",
                    "startDate": iso(float(subject.get("created", 0.0))),
                }
            )
    return found


def _subunit_nips(subject: dict[str, Any]) -> set[str]:
    result = set()
    for item in subject.get("subunits") or []:
        value = item.get("subjectNip") if isinstance(item, dict) else item
        if isinstance(value, str):
            result.add(value)
    return result


def _role_names(sim: Simulator, nip: str) -> set[str]:
    return {item["role"] for item in roles(sim, nip)}


# -- operations -------------------------------------------------------------------


def _accept(
    call: Call,
    code: int,
    details: list[str] | None = None,
    add: list[Grant] | None = None,
    remove: list[str] | None = None,
) -> Response:
    sim = call.sim
    now = sim.now()
    op = PermissionOperation(
        reference_number=reference_number("EG", now),
        context=call.session.context,
        started=now,
        ready_at=now + sim.faults.permission_delay_s,
        code=code,
        details=details or [],
        add=add or [],
        remove=remove or [],
    )
    sim.store.grants.submit(op)
    return json_response({"referenceNumber": op.reference_number}, status=202)


def _grants(
    call: Call,
    kind: str,
    subject: Identity,
    permissions: list[tuple[str, bool]],
    description: str,
    details: dict[str, Any] | None,
    **extra: Any,
) -> list[Grant]:
    auth = call.session
    assert auth.identity is not None
    now = call.sim.now()
    context = extra.pop("context", auth.context)
    return [
        Grant(
            id=new_grant_id(),
            kind=kind,
            context=context,
            subject=subject,
            permission=permission,
            description=description,
            author=auth.identity,
            started=now,
            can_delegate=can_delegate,
            subject_details=details,
            **extra,
        )
        for permission, can_delegate in permissions
    ]


async def grant_persons(call: Call) -> Response:
    context = _context(call, ("Nip", "InternalId"))
    _require(call, ["CredentialsManage"])
    body = await call.json()
    subject = identifier(body.get("subjectIdentifier"), "subjectIdentifier", PERSON_SUBJECTS)
    permissions = _permissions(body, PERSON_PERMISSIONS)
    description = text(body, "description", 5, 256)
    details = _person_details(body)
    if "EnforcementOperations" in permissions and not (
        _role_names(call.sim, context[1][:10]) & ENFORCEMENT_ROLES
    ):
        return _accept(
            call, 430, ["EnforcementOperations wymaga roli CourtBailiff lub EnforcementAuthority."]
        )
    grants = _grants(call, PERSON, subject, [(p, False) for p in permissions], description, details)
    return _accept(call, 200, add=grants)


async def grant_entities(call: Call) -> Response:
    context = _context(call)
    _require(call, ["CredentialsManage"])
    body = await call.json()
    subject = identifier(body.get("subjectIdentifier"), "subjectIdentifier", ("Nip",))
    items = body.get("permissions")
    if not isinstance(items, list) or not items:
        raise BadRequest(21405, "Pole 'permissions' musi być niepustą listą.")
    permissions: list[tuple[str, bool]] = []
    for item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        delegate = item.get("canDelegate", False) if isinstance(item, dict) else None
        if kind not in INVOICE_PERMISSIONS or not isinstance(delegate, bool | None):
            raise BadRequest(21405, f"Nieprawidłowe uprawnienie w polu 'permissions': {item!r}.")
        if kind in (p for p, _ in permissions):
            raise BadRequest(21405, "Każde uprawnienie może wystąpić tylko raz.")
        permissions.append((kind, bool(delegate)))
    description = text(body, "description", 5, 256)
    details = _entity_details(body)
    if subject == context:
        return _accept(call, 440, ["Podmiot nie może nadać uprawnień samemu sobie."])
    return _accept(call, 200, add=_grants(call, ENTITY, subject, permissions, description, details))


async def grant_authorizations(call: Call) -> Response:
    context = _context(call)
    _require(call, ["CredentialsManage"])
    body = await call.json()
    raw = body.get("subjectIdentifier")
    if isinstance(raw, dict) and raw.get("type") == "PeppolId":
        value = raw.get("value")
        if not isinstance(value, str) or not _PEPPOL.match(value):
            raise BadRequest(
                21405, "Pole 'subjectIdentifier.value' nie jest identyfikatorem Peppol."
            )
        subject: Identity = ("PeppolId", value)
    else:
        subject = identifier(raw, "subjectIdentifier", ("Nip", "PeppolId"))
    permission = body.get("permission")
    if permission not in AUTHORIZATIONS:
        raise BadRequest(
            21405, f"Pole 'permission' musi być jednym z: {', '.join(AUTHORIZATIONS)}."
        )
    description = text(body, "description", 5, 256)
    details = _entity_details(body)
    if (permission == "PefInvoicing") != (subject[0] == "PeppolId"):
        return _accept(
            call, 450, ["PefInvoicing nadaje się dostawcy Peppol, pozostałe podmiotom z NIP."]
        )
    if subject == context:
        return _accept(call, 440, ["Podmiot nie może nadać uprawnień samemu sobie."])
    grants = _grants(call, AUTHORIZATION, subject, [(permission, False)], description, details)
    return _accept(call, 200, add=grants)


async def grant_indirect(call: Call) -> Response:
    _context(call)
    _require(call, ["CredentialsManage"])
    body = await call.json()
    subject = identifier(body.get("subjectIdentifier"), "subjectIdentifier", PERSON_SUBJECTS)
    raw_target = body.get("targetIdentifier")
    target: Identity
    if raw_target is None:
        target = ALL_PARTNERS
    elif isinstance(raw_target, dict) and raw_target.get("type") == "AllPartners":
        if raw_target.get("value") not in (None, ""):
            raise BadRequest(
                21405, "Dla typu AllPartners pole 'targetIdentifier.value' jest puste."
            )
        target = ALL_PARTNERS
    else:
        target = identifier(raw_target, "targetIdentifier", ("Nip", "InternalId"))
    permissions = _permissions(body, INVOICE_PERMISSIONS)
    description = text(body, "description", 5, 256)
    details = _person_details(body)
    pairs = [(p, False) for p in permissions]
    grants = _grants(call, INDIRECT, subject, pairs, description, details, target=target)
    return _accept(call, 200, add=grants)


async def grant_subunits(call: Call) -> Response:
    context = _context(call)
    _require(call, ["SubunitManage"])
    body = await call.json()
    subject = identifier(body.get("subjectIdentifier"), "subjectIdentifier", PERSON_SUBJECTS)
    subunit = identifier(body.get("contextIdentifier"), "contextIdentifier", ("InternalId", "Nip"))
    description = text(body, "description", 5, 256)
    name: str | None = None
    if subunit[0] == "InternalId" or body.get("subunitName") is not None:
        name = text(body, "subunitName", 5, 256)
    details = _person_details(body)
    if subunit[0] == "InternalId":
        if not _internal_id_checksum_ok(subunit[1]):
            raise BadRequest(21405, "Ostatnia cyfra identyfikatora wewnętrznego jest niepoprawna.")
        if subunit[1][:10] != context[1]:
            return _accept(call, 440, ["Identyfikator wewnętrzny nie należy do tego podmiotu."])
    else:
        parent = call.sim.store.subjects.get(context[1]) or {}
        if not (_role_names(call.sim, context[1]) & PARENT_ROLES) or subunit[
            1
        ] not in _subunit_nips(parent):
            return _accept(call, 440, ["Wskazany NIP nie jest podmiotem podrzędnym tego podmiotu."])
    grants = _grants(
        call,
        SUBUNIT,
        subject,
        [("CredentialsManage", False)],
        description,
        details,
        context=subunit,
        granted_from=context,
        subunit_name=name,
    )
    return _accept(call, 200, add=grants)


def _permission_id(call: Call) -> str:
    value: str = call.request.path_params["permissionId"]
    if len(value) != 36:
        raise BadRequest(21405, "Parametr 'permissionId' musi mieć 36 znaków.")
    return value


def _not_found(call: Call, permission_id: str) -> Response:
    return _accept(call, 400, [f"Uprawnienie {permission_id} nie istnieje w bieżącym kontekście."])


async def revoke_common(call: Call) -> Response:
    held = _require(call, ["CredentialsManage", "VatUeManage", "SubunitManage"])
    permission_id = _permission_id(call)
    context = call.session.context
    grant = call.sim.store.grants.by_id.get(permission_id)
    if grant is None or grant.kind == AUTHORIZATION:
        return _not_found(call, permission_id)
    if grant.kind == SUBUNIT and grant.granted_from == context:
        needed = {"SubunitManage", "CredentialsManage"}
    elif grant.context == context:
        needed = {"CredentialsManage"}
    else:
        return _not_found(call, permission_id)
    if not held & needed:
        return _accept(call, 420, [f"Wymagane jedno z: {', '.join(sorted(needed))}."])
    return _accept(call, 200, remove=[grant.id])


async def revoke_authorization(call: Call) -> Response:
    _require(call, ["CredentialsManage"])
    permission_id = _permission_id(call)
    grant = call.sim.store.grants.by_id.get(permission_id)
    if grant is None or grant.kind != AUTHORIZATION or grant.context != call.session.context:
        return _not_found(call, permission_id)
    return _accept(call, 200, remove=[grant.id])


async def operation_status(call: Call) -> Response:
    sim = call.sim
    reference = call.request.path_params["referenceNumber"]
    op = sim.store.grants.operations.get(reference)
    if op is None:
        raise BadRequest(21405, f"Operacja o numerze referencyjnym {reference} nie istnieje.")
    if op.context != call.session.context:
        raise Forbidden("insufficient-resource-access")
    now = sim.now()
    if now > op.started + OPERATION_TTL_S:
        raise Gone()
    return json_response({"status": op.status(now)})


# -- queries ---------------------------------------------------------------------


def _page(call: Call) -> tuple[int, int]:
    params = call.request.query_params
    try:
        offset = int(params.get("pageOffset", "0"))
        size = int(params.get("pageSize", "10"))
    except ValueError:
        offset = size = -1
    if offset < 0 or not 10 <= size <= 100:
        raise BadRequest(21405, "Parametry 'pageOffset' ≥ 0 i 'pageSize' 10..100.")
    return offset, size


def _paged(call: Call, grants: list[Grant], key: str, render: Callable[[Grant], Any]) -> Response:
    """One page, newest first then by id (the documented order), with ``hasMore``."""
    offset, size = _page(call)
    grants.sort(key=lambda g: (-g.started, g.id))
    start = offset * size
    page = grants[start : start + size]
    return json_response({key: [render(g) for g in page], "hasMore": start + size < len(grants)})


def _ident(value: Identity) -> dict[str, Any]:
    if value[0] in ("System", "AllPartners"):
        return {"type": value[0]}
    return {"type": value[0], "value": value[1]}


def _filter_identifier(
    body: dict[str, Any], field: str, types: tuple[str, ...], value_optional: tuple[str, ...] = ()
) -> Identity | None:
    raw = body.get(field)
    if raw is None:
        return None
    if isinstance(raw, dict) and raw.get("type") in value_optional and raw.get("value") is None:
        return (raw["type"], "")
    return identifier(raw, field, types)


def _filter_list(body: dict[str, Any], field: str, allowed: tuple[str, ...]) -> set[str] | None:
    values = body.get(field)
    if values is None:
        return None
    if not isinstance(values, list) or any(v not in allowed for v in values):
        raise BadRequest(21405, f"Pole '{field}' zawiera nieznaną wartość.")
    return set(values)


def _state_filter(body: dict[str, Any]) -> str | None:
    state = body.get("permissionState")
    if state not in (None, "Active", "Inactive"):
        raise BadRequest(21405, "Pole 'permissionState' musi być Active albo Inactive.")
    return state


def _state(sim: Simulator, grant: Grant) -> str:
    if grant.kind == INDIRECT and not sim.store.grants.indirect_active(grant):
        return "Inactive"
    return "Active"


def _common_item(sim: Simulator, grant: Grant) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": grant.id,
        "permissionScope": grant.permission,
        "description": grant.description,
        "permissionState": _state(sim, grant),
        "startDate": iso(grant.started),
        "canDelegate": grant.can_delegate,
    }
    if grant.kind == INDIRECT:
        assert grant.target is not None
        item["targetIdentifier"] = _ident(grant.target)
    elif grant.context[0] in ("Nip", "InternalId"):
        item["contextIdentifier"] = _ident(grant.context)
    if grant.subject_details is not None:
        name = "subjectEntityDetails" if grant.kind == ENTITY else "subjectPersonDetails"
        item[name] = dict(grant.subject_details)
    return item


async def query_persons(call: Call) -> Response:
    sim, auth = call.sim, call.session
    _require(call, ["CredentialsManage", "CredentialsRead", "SubunitManage"])
    body = await call.json()
    query_type = body.get("queryType")
    if query_type not in ("PermissionsInCurrentContext", "PermissionsGrantedInCurrentContext"):
        raise BadRequest(21405, "Pole 'queryType' ma nieprawidłową wartość.")
    author = _filter_identifier(
        body, "authorIdentifier", (*PERSON_SUBJECTS, "System"), value_optional=("System",)
    )
    authorized = _filter_identifier(body, "authorizedIdentifier", PERSON_SUBJECTS)
    in_context = _filter_identifier(body, "contextIdentifier", ("Nip", "InternalId"))
    target = _filter_identifier(
        body, "targetIdentifier", ("Nip", "AllPartners", "InternalId"), ("AllPartners",)
    )
    types = _filter_list(body, "permissionTypes", PERSON_PERMISSIONS)
    state = _state_filter(body)
    context = auth.context
    book = sim.store.grants
    if query_type == "PermissionsInCurrentContext":
        candidates = [g for g in book.in_context(context) if g.kind != AUTHORIZATION]
    else:
        candidates = [
            g
            for g in book.all()
            if g.author == auth.identity
            and (
                (g.kind == SUBUNIT and g.granted_from == context)
                or (g.kind in (PERSON, ENTITY, INDIRECT) and g.context == context)
            )
        ]
    found = [
        g
        for g in candidates
        if (author is None or (g.author[0] == author[0] and author[1] in ("", g.author[1])))
        and (authorized is None or g.subject == authorized)
        and (in_context is None or g.context == in_context)
        and (target is None or g.target == target)
        and (types is None or g.permission in types)
        and (state is None or _state(sim, g) == state)
    ]

    def render(grant: Grant) -> dict[str, Any]:
        item = _common_item(sim, grant)
        item["authorizedIdentifier"] = _ident(grant.subject)
        item["authorIdentifier"] = _ident(grant.author)
        return item

    return _paged(call, found, "permissions", render)


async def query_personal(call: Call) -> Response:
    sim, auth = call.sim, call.session
    body = await _optional_json(call)
    in_context = _filter_identifier(body, "contextIdentifier", ("Nip", "InternalId"))
    target = _filter_identifier(
        body, "targetIdentifier", ("Nip", "AllPartners", "InternalId"), ("AllPartners",)
    )
    types = _filter_list(body, "permissionTypes", PERSONAL_PERMISSIONS)
    state = _state_filter(body)
    context, identity = auth.context, auth.identity
    book = sim.store.grants
    found: list[Grant] = []
    if identity is not None:
        for grant in book.of_subject(identity):
            direct = grant.kind in (PERSON, SUBUNIT) and grant.context == context
            indirect = grant.kind == INDIRECT and (
                grant.context == context or grant.target in (context, ALL_PARTNERS)
            )
            if direct or indirect:
                found.append(grant)
        if context[0] == "Nip" and sim.is_owner(identity, context):
            found += [g for g in book.of_subject(context) if g.kind == ENTITY]
    found = [
        g
        for g in found
        if (in_context is None or g.context == in_context)
        and (target is None or g.target == target)
        and (types is None or g.permission in types)
        and (state is None or _state(sim, g) == state)
    ]

    def render(grant: Grant) -> dict[str, Any]:
        item = _common_item(sim, grant)
        if grant.kind == ENTITY:
            item["authorizedIdentifier"] = _ident(grant.subject)
        return item

    return _paged(call, found, "permissions", render)


async def query_entities(call: Call) -> Response:
    sim, auth = call.sim, call.session
    _require(call, ["CredentialsManage", "CredentialsRead"])
    body = await _optional_json(call)
    granting = _filter_identifier(body, "contextIdentifier", ("Nip", "InternalId"))
    received = [
        g
        for g in sim.store.grants.of_subject(("Nip", auth.context[1][:10]))
        if g.kind == ENTITY and (granting is None or g.context == granting)
    ]

    def render(grant: Grant) -> dict[str, Any]:
        return {
            "id": grant.id,
            "contextIdentifier": _ident(grant.context),
            "permissionScope": grant.permission,
            "description": grant.description,
            "startDate": iso(grant.started),
            "canDelegate": grant.can_delegate,
        }

    return _paged(call, received, "permissions", render)


async def query_authorizations(call: Call) -> Response:
    sim, auth = call.sim, call.session
    _require(call, ["CredentialsManage", "CredentialsRead", "PefInvoiceWrite"])
    body = await call.json()
    query_type = body.get("queryType")
    if query_type not in ("Granted", "Received"):
        raise BadRequest(21405, "Pole 'queryType' musi być Granted albo Received.")
    authorizing = _filter_identifier(body, "authorizingIdentifier", ("Nip",))
    raw = body.get("authorizedIdentifier")
    authorized: Identity | None
    if (
        isinstance(raw, dict)
        and raw.get("type") == "PeppolId"
        and isinstance(raw.get("value"), str)
    ):
        authorized = ("PeppolId", raw["value"])
    else:
        authorized = _filter_identifier(body, "authorizedIdentifier", ("Nip",))
    types = _filter_list(body, "permissionTypes", AUTHORIZATIONS)
    book = sim.store.grants
    own = ("Nip", auth.context[1][:10])
    if query_type == "Granted":
        candidates = [g for g in book.in_context(auth.context) if g.kind == AUTHORIZATION]
    else:
        candidates = [g for g in book.of_subject(own) if g.kind == AUTHORIZATION]
    found = [
        g
        for g in candidates
        if (authorizing is None or g.context == authorizing)
        and (authorized is None or g.subject == authorized)
        and (types is None or g.permission in types)
    ]

    def render(grant: Grant) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": grant.id,
            "authorizedEntityIdentifier": _ident(grant.subject),
            "authorizingEntityIdentifier": _ident(grant.context),
            "authorizationScope": grant.permission,
            "description": grant.description,
            "startDate": iso(grant.started),
        }
        if grant.author[0] in PERSON_SUBJECTS:
            item["authorIdentifier"] = _ident(grant.author)
        if grant.subject_details is not None:
            item["subjectEntityDetails"] = dict(grant.subject_details)
        return item

    return _paged(call, found, "authorizationGrants", render)


async def query_subunits(call: Call) -> Response:
    sim, auth = call.sim, call.session
    _require(call, ["CredentialsManage", "CredentialsRead", "SubunitManage"])
    body = await _optional_json(call)
    subunit = _filter_identifier(body, "subunitIdentifier", ("InternalId", "Nip"))
    found = [
        g
        for g in sim.store.grants.all()
        if g.kind == SUBUNIT
        and g.granted_from == auth.context
        and (subunit is None or g.context == subunit)
    ]

    def render(grant: Grant) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": grant.id,
            "authorizedIdentifier": _ident(grant.subject),
            "subunitIdentifier": _ident(grant.context),
            "authorIdentifier": _ident(grant.author),
            "permissionScope": grant.permission,
            "description": grant.description,
            "startDate": iso(grant.started),
        }
        if grant.subject_details is not None:
            item["subjectPersonDetails"] = dict(grant.subject_details)
        if grant.subunit_name is not None:
            item["subunitName"] = grant.subunit_name
        return item

    return _paged(call, found, "permissions", render)


async def query_roles(call: Call) -> Response:
    _require(call, ["CredentialsManage", "CredentialsRead"])
    offset, size = _page(call)
    found = roles(call.sim, call.session.context[1][:10])
    found.sort(key=lambda r: r["startDate"], reverse=True)
    start = offset * size
    return json_response(
        {"roles": found[start : start + size], "hasMore": start + size < len(found)}
    )


def routes(sim: Simulator) -> list[Any]:
    table: list[tuple[str, str, Any]] = [
        ("POST", "/permissions/persons/grants", grant_persons),
        ("POST", "/permissions/entities/grants", grant_entities),
        ("POST", "/permissions/authorizations/grants", grant_authorizations),
        ("POST", "/permissions/indirect/grants", grant_indirect),
        ("POST", "/permissions/subunits/grants", grant_subunits),
        ("DELETE", "/permissions/common/grants/{permissionId}", revoke_common),
        ("DELETE", "/permissions/authorizations/grants/{permissionId}", revoke_authorization),
        ("GET", "/permissions/operations/{referenceNumber}", operation_status),
        ("POST", "/permissions/query/personal/grants", query_personal),
        ("POST", "/permissions/query/persons/grants", query_persons),
        ("POST", "/permissions/query/entities/grants", query_entities),
        ("POST", "/permissions/query/authorizations/grants", query_authorizations),
        ("POST", "/permissions/query/subunits/grants", query_subunits),
        ("GET", "/permissions/query/entities/roles", query_roles),
    ]
    return [
        api_route(sim, method, path, handler, group="other", credential="access")
        for method, path, handler in table
    ]
