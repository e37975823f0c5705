"""The typed /permissions client against the simulator over real HTTP."""

from __future__ import annotations

import pytest

from ksefctl.ksef import KsefClient
from ksefctl.ksef.errors import PermissionDenied, PermissionOperationFailed
from ksefctl.ksef.permissions import Identifier, PersonName
from ksefctl.secret import Secret
from tests.ksef.conftest import NIP, OTHER_NIP, admin, mint
from tests.support.sim import SimHandle

PESEL = "15062788702"
NAME = PersonName("Anna", "Testowa")


async def test_grant_list_revoke_people_entities_and_authorizations(
    sim: SimHandle, client: KsefClient, secrets_seen: list[Secret]
) -> None:
    _, token = mint(sim)
    secrets_seen.append(token)
    async with await client.login_with_token("Nip", NIP, token) as session:
        permissions = session.permissions
        reference = await permissions.grant_persons(
            Identifier("Pesel", PESEL), ["InvoiceRead", "InvoiceWrite"], "księgowa", NAME
        )
        done = await permissions.wait(reference, deadline_s=10)
        assert done.code == 200
        granted = await permissions.persons()
        assert {(p.scope, p.state) for p in granted} == {
            ("InvoiceRead", "Active"),
            ("InvoiceWrite", "Active"),
        }
        assert all(p.authorized == Identifier("Pesel", PESEL) for p in granted)
        assert granted[0].person_name == NAME
        assert granted[0].started.tzinfo is not None

        office = await permissions.grant_entities(
            OTHER_NIP, {"InvoiceRead": True}, "biuro rachunkowe", "Biuro sp. z o.o."
        )
        await permissions.wait(office, deadline_s=10)
        delegated = await permissions.persons(authorized=Identifier("Nip", OTHER_NIP))
        assert [(p.scope, p.can_delegate, p.entity_name) for p in delegated] == [
            ("InvoiceRead", True, "Biuro sp. z o.o.")
        ]

        self_invoicing = await permissions.grant_authorization(
            Identifier("Nip", OTHER_NIP), "SelfInvoicing", "samofakturowanie", "Biuro sp. z o.o."
        )
        await permissions.wait(self_invoicing, deadline_s=10)
        [authorization] = await permissions.authorizations("Granted")
        assert authorization.authorized == Identifier("Nip", OTHER_NIP)
        await permissions.wait(await permissions.revoke_authorization(authorization.id), 10)
        assert await permissions.authorizations("Granted") == []

        for grant in granted:
            await permissions.wait(await permissions.revoke(grant.id), deadline_s=10)
        assert await permissions.persons(authorized=Identifier("Pesel", PESEL)) == []
        assert await permissions.roles() == []


async def test_refusals_carry_ksef_codes(sim: SimHandle, client: KsefClient) -> None:
    _, token = mint(sim)
    async with await client.login_with_token("Nip", NIP, token) as session:
        permissions = session.permissions
        reference = await permissions.grant_persons(
            Identifier("Nip", OTHER_NIP), ["EnforcementOperations"], "egzekucja", NAME
        )
        with pytest.raises(PermissionOperationFailed) as refused:
            await permissions.wait(reference, deadline_s=10)
        assert refused.value.operation_status == 430
        assert reference in str(refused.value)

    _, reader = mint(sim, permissions=["InvoiceRead"])
    async with await client.login_with_token("Nip", NIP, reader) as session:
        with pytest.raises(PermissionDenied) as denied:
            await session.permissions.grant_persons(
                Identifier("Pesel", PESEL), ["InvoiceRead"], "bez prawa", NAME
            )
        assert denied.value.status == 403
        assert denied.value.reason_code == "missing-permissions"


async def test_personal_and_received_views(sim: SimHandle, client: KsefClient) -> None:
    _, token = mint(sim)
    async with await client.login_with_token("Nip", NIP, token) as session:
        reference = await session.permissions.grant_entities(
            OTHER_NIP, {"InvoiceWrite": False}, "wystawianie faktur", "Biuro sp. z o.o."
        )
        await session.permissions.wait(reference, deadline_s=10)
    _, office_token = mint(sim, nip=OTHER_NIP)
    async with await client.login_with_token("Nip", OTHER_NIP, office_token) as office:
        [received] = await office.permissions.entities()
        assert (received.granted_by, received.scope) == (Identifier("Nip", NIP), "InvoiceWrite")
        personal = await office.permissions.personal()
        assert [p.scope for p in personal] == ["InvoiceWrite"]
    assert admin(sim, "/stats", method="GET")["requests"]
