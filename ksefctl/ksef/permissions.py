"""Permission grants in one context: grant, revoke, wait for the operation, query.

Reached from a logged-in session as ``session.permissions``.  Every grant and
revocation is an asynchronous KSeF operation: the call returns its reference
number and :meth:`Permissions.wait` polls ``GET /permissions/operations/{ref}``
until it ends — 200, or a refusal raised as :class:`PermissionOperationFailed`
carrying KSeF's status code.  Queries return every page, as typed records.

A grant POST is never repeated blindly (``idempotent=False``): KSeF ignores a
duplicate grant, but a lost answer is the caller's to resolve by querying.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ksefctl.ksef.auth import json_of
from ksefctl.ksef.errors import PermissionOperationFailed, PermissionOperationTimeout
from ksefctl.ksef.models import Fields

if TYPE_CHECKING:
    from ksefctl.ksef.session import Session

IN_PROGRESS = 100
SUCCEEDED = 200
PAGE_SIZE = 100


@dataclass(frozen=True)
class Identifier:
    """``{type, value}`` as KSeF writes identifiers: Nip, Pesel, Fingerprint, InternalId,
    PeppolId, or AllPartners / System (no value)."""

    type: str
    value: str | None = None

    def to_api(self) -> dict[str, str]:
        return (
            {"type": self.type} if self.value is None else {"type": self.type, "value": self.value}
        )

    @classmethod
    def parse(cls, f: Fields) -> Identifier:
        return cls(f.text("type"), f.opt_text("value"))


ALL_PARTNERS = Identifier("AllPartners")


@dataclass(frozen=True)
class PersonName:
    """The ``subjectDetails`` KSeF requires for a person identified by NIP or PESEL."""

    first_name: str
    last_name: str

    def to_api(self) -> dict[str, Any]:
        return {
            "subjectDetailsType": "PersonByIdentifier",
            "personById": {"firstName": self.first_name, "lastName": self.last_name},
        }


@dataclass(frozen=True)
class OperationStatus:
    code: int  # 100 in progress, 200 done, 400/410/420/430/440/450/500/550 refused
    description: str
    details: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.code != IN_PROGRESS


@dataclass(frozen=True)
class PersonPermission:
    """One record of ``query/persons/grants`` or ``query/personal/grants``."""

    id: str
    scope: str  # InvoiceRead, CredentialsManage, …
    description: str
    state: str  # Active | Inactive
    started: datetime
    can_delegate: bool
    authorized: Identifier | None
    author: Identifier | None
    context: Identifier | None
    target: Identifier | None
    person_name: PersonName | None
    entity_name: str | None

    @classmethod
    def parse(cls, data: Any, where: str) -> PersonPermission:
        f = Fields(data, where)
        person = f.opt_obj("subjectPersonDetails")
        entity = f.opt_obj("subjectEntityDetails")
        return cls(
            id=f.text("id"),
            scope=f.text("permissionScope"),
            description=f.text("description"),
            state=f.text("permissionState"),
            started=f.moment("startDate"),
            can_delegate=_flag(f, "canDelegate"),
            authorized=_opt_identifier(f, "authorizedIdentifier"),
            author=_opt_identifier(f, "authorIdentifier"),
            context=_opt_identifier(f, "contextIdentifier"),
            target=_opt_identifier(f, "targetIdentifier"),
            person_name=PersonName(person.text("firstName"), person.text("lastName"))
            if person
            else None,
            entity_name=entity.text("fullName") if entity else None,
        )


@dataclass(frozen=True)
class EntityPermission:
    """An invoice permission another context gave the current one (``query/entities/grants``)."""

    id: str
    granted_by: Identifier
    scope: str
    description: str
    started: datetime
    can_delegate: bool

    @classmethod
    def parse(cls, data: Any, where: str) -> EntityPermission:
        f = Fields(data, where)
        return cls(
            id=f.text("id"),
            granted_by=Identifier.parse(f.obj("contextIdentifier")),
            scope=f.text("permissionScope"),
            description=f.text("description"),
            started=f.moment("startDate"),
            can_delegate=_flag(f, "canDelegate"),
        )


@dataclass(frozen=True)
class AuthorizationGrant:
    """An entity authorization: SelfInvoicing, RRInvoicing, TaxRepresentative, PefInvoicing."""

    id: str
    scope: str
    authorizing: Identifier
    authorized: Identifier
    description: str
    started: datetime
    author: Identifier | None

    @classmethod
    def parse(cls, data: Any, where: str) -> AuthorizationGrant:
        f = Fields(data, where)
        return cls(
            id=f.text("id"),
            scope=f.text("authorizationScope"),
            authorizing=Identifier.parse(f.obj("authorizingEntityIdentifier")),
            authorized=Identifier.parse(f.obj("authorizedEntityIdentifier")),
            description=f.text("description"),
            started=f.moment("startDate"),
            author=_opt_identifier(f, "authorIdentifier"),
        )


@dataclass(frozen=True)
class SubunitPermission:
    """An administrator of a subunit appointed from the current context."""

    id: str
    subunit: Identifier
    authorized: Identifier
    author: Identifier
    scope: str
    description: str
    started: datetime
    subunit_name: str | None

    @classmethod
    def parse(cls, data: Any, where: str) -> SubunitPermission:
        f = Fields(data, where)
        return cls(
            id=f.text("id"),
            subunit=Identifier.parse(f.obj("subunitIdentifier")),
            authorized=Identifier.parse(f.obj("authorizedIdentifier")),
            author=Identifier.parse(f.obj("authorIdentifier")),
            scope=f.text("permissionScope"),
            description=f.text("description"),
            started=f.moment("startDate"),
            subunit_name=f.opt_text("subunitName"),
        )


@dataclass(frozen=True)
class EntityRole:
    role: str  # VatGroupUnit, LocalGovernmentSubUnit, CourtBailiff, …
    description: str
    started: datetime
    parent: Identifier | None

    @classmethod
    def parse(cls, data: Any, where: str) -> EntityRole:
        f = Fields(data, where)
        return cls(
            role=f.text("role"),
            description=f.text("description"),
            started=f.moment("startDate"),
            parent=_opt_identifier(f, "parentEntityIdentifier"),
        )


def _opt_identifier(f: Fields, key: str) -> Identifier | None:
    found = f.opt_obj(key)
    return Identifier.parse(found) if found is not None else None


def _flag(f: Fields, key: str) -> bool:
    value = f._get(key, False)
    return bool(value) if isinstance(value, bool) else False


def _filters(**values: Any) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, Identifier):
            body[key] = value.to_api()
        elif isinstance(value, str):
            body[key] = value
        else:
            body[key] = list(value)
    return body


class Permissions:
    """The /permissions API in the context of one session."""

    def __init__(self, session: Session, *, poll_delay_s: float = 0.1) -> None:
        self._session = session
        self._poll_delay_s = poll_delay_s

    def __repr__(self) -> str:
        return f"Permissions({self._session.context})"

    # -- operations ------------------------------------------------------------

    async def _start(self, method: str, path: str, body: Any = None) -> str:
        where = f"{method} {path}"
        response = await self._session._call(
            method, path, idempotent=method == "DELETE", ok=(202,), json=body
        )
        return Fields(json_of(response, where), where).text("referenceNumber")

    async def grant_persons(
        self,
        subject: Identifier,
        permissions: Iterable[str],
        description: str,
        name: PersonName,
    ) -> str:
        """Grant a person (Nip, Pesel, Fingerprint) permissions to work in this context."""
        body = {
            "subjectIdentifier": subject.to_api(),
            "permissions": list(permissions),
            "description": description,
            "subjectDetails": name.to_api(),
        }
        return await self._start("POST", "/permissions/persons/grants", body)

    async def grant_entities(
        self,
        nip: str,
        permissions: Mapping[str, bool],
        description: str,
        full_name: str,
    ) -> str:
        """Give a company (by NIP) InvoiceRead/InvoiceWrite; the bool is ``canDelegate``."""
        body = {
            "subjectIdentifier": {"type": "Nip", "value": nip},
            "permissions": [{"type": p, "canDelegate": d} for p, d in permissions.items()],
            "description": description,
            "subjectDetails": {"fullName": full_name},
        }
        return await self._start("POST", "/permissions/entities/grants", body)

    async def grant_authorization(
        self, subject: Identifier, permission: str, description: str, full_name: str
    ) -> str:
        """An entity authorization (SelfInvoicing, RRInvoicing, TaxRepresentative, PefInvoicing)."""
        body = {
            "subjectIdentifier": subject.to_api(),
            "permission": permission,
            "description": description,
            "subjectDetails": {"fullName": full_name},
        }
        return await self._start("POST", "/permissions/authorizations/grants", body)

    async def grant_indirect(
        self,
        subject: Identifier,
        permissions: Iterable[str],
        description: str,
        name: PersonName,
        target: Identifier = ALL_PARTNERS,
    ) -> str:
        """Pass delegable invoice permissions to a person for one client (or all partners)."""
        body = {
            "subjectIdentifier": subject.to_api(),
            "targetIdentifier": target.to_api(),
            "permissions": list(permissions),
            "description": description,
            "subjectDetails": name.to_api(),
        }
        return await self._start("POST", "/permissions/indirect/grants", body)

    async def grant_subunit_admin(
        self,
        subject: Identifier,
        subunit: Identifier,
        description: str,
        name: PersonName,
        subunit_name: str | None = None,
    ) -> str:
        """Appoint the administrator (CredentialsManage) of a subunit (InternalId or Nip)."""
        body: dict[str, Any] = {
            "subjectIdentifier": subject.to_api(),
            "contextIdentifier": subunit.to_api(),
            "description": description,
            "subjectDetails": name.to_api(),
        }
        if subunit_name is not None:
            body["subunitName"] = subunit_name
        return await self._start("POST", "/permissions/subunits/grants", body)

    async def revoke(self, permission_id: str) -> str:
        """Revoke a person, entity, indirect or subunit grant by its id."""
        path = f"/permissions/common/grants/{quote(permission_id, safe='')}"
        return await self._start("DELETE", path)

    async def revoke_authorization(self, permission_id: str) -> str:
        path = f"/permissions/authorizations/grants/{quote(permission_id, safe='')}"
        return await self._start("DELETE", path)

    async def operation_status(self, reference_number: str) -> OperationStatus:
        path = f"/permissions/operations/{quote(reference_number, safe='')}"
        response = await self._session._call("GET", path, idempotent=True)
        status = Fields(json_of(response, f"GET {path}"), f"GET {path}").obj("status")
        return OperationStatus(
            status.integer("code"),
            status.text("description"),
            tuple(status.texts("details", required=False)),
        )

    async def wait(self, reference_number: str, deadline_s: float = 60.0) -> OperationStatus:
        """Poll the operation until it ends; a refusal raises with KSeF's code."""
        deadline = time.monotonic() + deadline_s
        delay = self._poll_delay_s
        while True:
            status = await self.operation_status(reference_number)
            if status.code == SUCCEEDED:
                return status
            if status.done:
                details = f": {'; '.join(status.details)}" if status.details else ""
                raise PermissionOperationFailed(
                    f"permission operation {reference_number} in {self._session.context} "
                    f"refused [{status.code}] {status.description}{details}",
                    codes=[status.code],
                    description=status.description,
                    details=status.details,
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise PermissionOperationTimeout(
                    f"permission operation {reference_number} in {self._session.context} "
                    f"still in progress after {deadline_s:g} s"
                )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 1.5, 2.0)

    # -- queries ---------------------------------------------------------------

    async def _pages(self, method: str, path: str, key: str, body: Any = None) -> list[Any]:
        items: list[Any] = []
        for page in range(10_000):
            where = f"{method} {path} (page {page + 1})"
            response = await self._session._call(
                method,
                path,
                idempotent=True,
                params={"pageOffset": page, "pageSize": PAGE_SIZE},
                json=body,
            )
            f = Fields(json_of(response, where), where)
            items += [(item, f"{where}.{key}[{i}]") for i, item in enumerate(f.array(key))]
            if not f._get("hasMore", False):
                return items
        raise PermissionOperationTimeout(f"{method} {path} kept answering hasMore")

    async def persons(
        self,
        query_type: str = "PermissionsInCurrentContext",
        *,
        author: Identifier | None = None,
        authorized: Identifier | None = None,
        context: Identifier | None = None,
        target: Identifier | None = None,
        permission_types: Iterable[str] | None = None,
        state: str | None = None,
    ) -> list[PersonPermission]:
        """``query/persons/grants``: everyone's grants in this context, or those made here
        by the caller (``PermissionsGrantedInCurrentContext``)."""
        body = _filters(
            queryType=query_type,
            authorIdentifier=author,
            authorizedIdentifier=authorized,
            contextIdentifier=context,
            targetIdentifier=target,
            permissionTypes=permission_types,
            permissionState=state,
        )
        found = await self._pages("POST", "/permissions/query/persons/grants", "permissions", body)
        return [PersonPermission.parse(item, where) for item, where in found]

    async def personal(
        self,
        *,
        context: Identifier | None = None,
        target: Identifier | None = None,
        permission_types: Iterable[str] | None = None,
        state: str | None = None,
    ) -> list[PersonPermission]:
        """``query/personal/grants``: what the caller itself holds in this context."""
        body = _filters(
            contextIdentifier=context,
            targetIdentifier=target,
            permissionTypes=permission_types,
            permissionState=state,
        )
        path = "/permissions/query/personal/grants"
        found = await self._pages("POST", path, "permissions", body)
        return [PersonPermission.parse(item, where) for item, where in found]

    async def entities(self, *, granted_by: Identifier | None = None) -> list[EntityPermission]:
        body = _filters(contextIdentifier=granted_by)
        path = "/permissions/query/entities/grants"
        found = await self._pages("POST", path, "permissions", body)
        return [EntityPermission.parse(item, where) for item, where in found]

    async def authorizations(
        self,
        query_type: str = "Granted",
        *,
        authorizing: Identifier | None = None,
        authorized: Identifier | None = None,
        permission_types: Iterable[str] | None = None,
    ) -> list[AuthorizationGrant]:
        body = _filters(
            queryType=query_type,
            authorizingIdentifier=authorizing,
            authorizedIdentifier=authorized,
            permissionTypes=permission_types,
        )
        path = "/permissions/query/authorizations/grants"
        found = await self._pages("POST", path, "authorizationGrants", body)
        return [AuthorizationGrant.parse(item, where) for item, where in found]

    async def subunits(self, *, subunit: Identifier | None = None) -> list[SubunitPermission]:
        body = _filters(subunitIdentifier=subunit)
        path = "/permissions/query/subunits/grants"
        found = await self._pages("POST", path, "permissions", body)
        return [SubunitPermission.parse(item, where) for item, where in found]

    async def roles(self) -> list[EntityRole]:
        found = await self._pages("GET", "/permissions/query/entities/roles", "roles")
        return [EntityRole.parse(item, where) for item, where in found]
