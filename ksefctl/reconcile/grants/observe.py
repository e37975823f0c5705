"""Observe one context's grants: reads only.

Two queries, each one page of up to 100 records for a context of ordinary
size: ``query/persons/grants`` (persons, entities and indirect grants in the
context — KSeF lists grants to persons and to companies together) and
``query/authorizations/grants`` (``Granted``: the entity authorizations the
context gave).  A third, ``query/personal/grants`` filtered to
CredentialsManage, is asked only when someone holds CredentialsManage by
grant here: it tells which of those records ksefctl's own login rests on
(lock-out protection).  A login as the context's owner holds everything
without a record, so the usual context costs two queries.
"""

from __future__ import annotations

import asyncio

from ksefctl.ksef import Session
from ksefctl.ksef.permissions import AuthorizationGrant, Identifier, PersonPermission
from ksefctl.manifest.grants import owner_of
from ksefctl.reconcile.grants.model import CREDENTIALS_MANAGE, ObservedGrant, ObservedGrants


def _ident(identifier: Identifier | None) -> str:
    if identifier is None:
        return ""
    return identifier.type if identifier.value is None else f"{identifier.type}:{identifier.value}"


def from_person_record(record: PersonPermission) -> ObservedGrant:
    if record.target is not None:
        kind = "indirect"
    elif record.entity_name is not None:
        kind = "entity"
    else:
        kind = "person"
    authorized = record.authorized or Identifier("Unknown", "")
    name = record.entity_name or (
        f"{record.person_name.first_name} {record.person_name.last_name}"
        if record.person_name
        else ""
    )
    return ObservedGrant(
        id=record.id,
        kind=kind,
        subject_type=authorized.type,
        subject=authorized.value or "",
        permission=record.scope,
        description=record.description,
        started=record.started,
        can_delegate=record.can_delegate,
        state=record.state,
        author=_ident(record.author),
        target=_ident(record.target),
        holder=name,
        owner=owner_of(record.description),
    )


def from_authorization(record: AuthorizationGrant) -> ObservedGrant:
    return ObservedGrant(
        id=record.id,
        kind="authorization",
        subject_type=record.authorized.type,
        subject=record.authorized.value or "",
        permission=record.scope,
        description=record.description,
        started=record.started,
        author=_ident(record.author),
        owner=owner_of(record.description),
    )


async def observe_grants(session: Session) -> ObservedGrants:
    permissions = session.permissions
    # Independent queries: one round trip's wait, not two.
    listed, granted = await asyncio.gather(
        permissions.persons(), permissions.authorizations("Granted")
    )
    persons = [from_person_record(r) for r in listed]
    authorizations = [from_authorization(r) for r in granted]
    own: frozenset[str] = frozenset()
    if any(g.permission == CREDENTIALS_MANAGE for g in persons):
        mine = await permissions.personal(permission_types=[CREDENTIALS_MANAGE])
        ids = {g.id for g in persons}
        own = frozenset(r.id for r in mine if r.id in ids)
    grants = sorted([*persons, *authorizations], key=lambda g: (g.grantee, g.permission, g.id))
    return ObservedGrants(grants=tuple(grants), own_credentials=own)
