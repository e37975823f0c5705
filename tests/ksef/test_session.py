"""Logging in and managing tokens against the simulator over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx
import pytest

from ksefctl.ksef import (
    AuthenticationFailed,
    ClientSettings,
    KsefClient,
    KsefError,
    NotAuthenticated,
    TokenStatusTimeout,
)
from ksefctl.ksef.pacing import REFRESH
from ksefctl.secret import Secret
from tests.ksef.conftest import NIP, OTHER_NIP, admin, mint
from tests.support.sim import SimHandle


def sim_stats(sim: SimHandle) -> dict[str, object]:
    return admin(sim, "/stats", method="GET")  # type: ignore[no-any-return]


async def test_token_login_and_the_whole_token_lifecycle(
    sim: SimHandle, client: KsefClient, secrets_seen: list[Secret]
) -> None:
    _, admin_token = mint(sim)
    secrets_seen.append(admin_token)
    async with await client.login_with_token("Nip", NIP, admin_token) as session:
        secrets_seen += [session._access.token, session._refresh.token]
        generated = await session.generate_token(
            ["InvoiceRead"], "erp reader [nonce-1f2e]", find_marker="nonce-1f2e"
        )
        secrets_seen.append(generated.token)
        reference, context, _ = generated.token.reveal().split("|")
        assert (reference, context.lower()) == (generated.reference_number, f"nip-{NIP}")
        assert generated.token.reveal() not in repr(generated)

        active = await session.wait_for_status(generated.reference_number, {"Active"}, 5)
        assert active.permissions == frozenset({"InvoiceRead"})
        assert (active.context_type, active.context_value) == ("Nip", NIP)
        assert active.created.tzinfo is not None

        fetched = await session.get_token(generated.reference_number)
        assert fetched.description == "erp reader [nonce-1f2e]"
        found = await session.list_tokens(statuses=["Active"], description="NONCE-1F2E")
        assert [t.reference_number for t in found] == [generated.reference_number]
        by_author = await session.list_tokens(author_identifier=NIP, author_identifier_type="Nip")
        assert generated.reference_number in {t.reference_number for t in by_author}

        await session.revoke_token(generated.reference_number)
        revoked = await session.wait_for_status(generated.reference_number, {"Revoked"}, 5)
        assert revoked.status == "Revoked"
        with pytest.raises(TokenStatusTimeout, match="ended Revoked, not Active"):
            await session.wait_for_status(generated.reference_number, {"Active"}, 5)
    assert session.closed
    await session.close()  # idempotent
    with pytest.raises(KsefError, match="closed"):
        await session.list_tokens()
    # The session really ended on KSeF's side: its refresh token is dead.
    with pytest.raises(KsefError) as ended:
        await session._transport.request(
            REFRESH,
            "/auth/token/refresh",
            context=session.context,
            idempotent=True,
            bearer=session._refresh.token,
        )
    assert ended.value.status in (400, 401)
    stats = client.stats
    assert stats.requests[f"Nip:{NIP}"] > 0
    assert stats.total_rate_limited() == 0


async def test_certificate_login_with_a_test_seal(
    client: KsefClient, secrets_seen: list[Secret]
) -> None:
    pytest.importorskip("ksefctl.ksef.xades_signing")
    from ksefctl.ksef.xades_signing import load_identity
    from ksefctl.testcert import make_seal_certificate

    identity = load_identity(*make_seal_certificate(NIP, key_type="ec"))
    async with await client.login_with_certificate("Nip", NIP, identity) as session:
        secrets_seen.append(session._access.token)
        generated = await session.generate_token(["InvoiceWrite"], "seal-made token")
        secrets_seen.append(generated.token)
        [info] = await session.list_tokens(description="seal-made")
        assert (info.author_type, info.author_value) == ("Nip", NIP)


async def test_failed_logins_carry_the_ksef_status(
    sim: SimHandle, client: KsefClient, secrets_seen: list[Secret]
) -> None:
    pytest.importorskip("ksefctl.ksef.xades_signing")
    from ksefctl.ksef.xades_signing import load_identity
    from ksefctl.testcert import make_seal_certificate

    # A certificate identified by fingerprint holds no permissions in someone else's context.
    stranger = load_identity(*make_seal_certificate(OTHER_NIP, key_type="ec"))
    with pytest.raises(AuthenticationFailed) as no_rights:
        await client.login_with_certificate("Nip", NIP, stranger, "certificateFingerprint")
    assert no_rights.value.auth_status == 415
    assert str(no_rights.value).startswith(f"KSeF login into Nip:{NIP} failed with status 415")

    reference, token = mint(sim)
    secrets_seen.append(token)
    async with await client.login_with_token("Nip", NIP, token) as session:
        await session.revoke_token(reference)
        await session.wait_for_status(reference, {"Revoked"}, 5)
    with pytest.raises(AuthenticationFailed) as revoked:
        await client.login_with_token("Nip", NIP, token)
    assert revoked.value.auth_status == 450
    assert token.reveal() not in str(revoked.value) + repr(revoked.value)


async def test_access_token_is_refreshed_before_it_expires(
    sim: SimHandle, client: KsefClient, secrets_seen: list[Secret]
) -> None:
    sim.simulator.config.access_token_ttl_s = 3.0
    _, token = mint(sim)
    secrets_seen.append(token)
    async with await client.login_with_token("Nip", NIP, token) as session:
        first = session._access.token
        secrets_seen.append(first)
        deadline = time.monotonic() + 10
        while session._access.token == first:
            assert time.monotonic() < deadline, "the access token was never refreshed"
            await session.list_tokens()
            await asyncio.sleep(0.1)
        secrets_seen.append(session._access.token)
        await session.list_tokens()
    statuses = sim_stats(sim)["statuses"]
    assert isinstance(statuses, dict)
    assert "401" not in statuses  # refreshed ahead of time, never after a refusal


async def test_an_access_token_refused_early_is_refreshed_once_and_the_call_repeated(
    sim: SimHandle, client: KsefClient, secrets_seen: list[Secret]
) -> None:
    _, token = mint(sim)
    secrets_seen.append(token)
    async with await client.login_with_token("Nip", NIP, token) as session:
        # KSeF stops accepting the access token before its validUntil (as after a
        # key rotation).  Moving the simulator's clock would do it too, but the
        # simulator then refuses the fresh JWTs it issues (see the report).
        session._access = dataclasses.replace(session._access, token=Secret("not-a-jwt"))
        assert await session.list_tokens()
        assert sim_stats(sim)["statuses"]["401"] == 1  # type: ignore[index]
        # With the refresh token refused as well: a clear NotAuthenticated, no loop.
        session._access = dataclasses.replace(session._access, token=Secret("not-a-jwt"))
        session._refresh = dataclasses.replace(session._refresh, token=Secret("not-a-jwt"))
        with pytest.raises(NotAuthenticated):
            await session.list_tokens()
        assert sim_stats(sim)["statuses"]["401"] == 3  # type: ignore[index]


async def test_listing_follows_continuation_tokens_over_every_page(
    sim: SimHandle, client: KsefClient, secrets_seen: list[Secret]
) -> None:
    async with httpx.AsyncClient(base_url=sim.admin_url, timeout=30) as admin_api:

        async def mint_one(i: int) -> str:
            body = {
                "context": {"type": "Nip", "value": NIP},
                "permissions": ["InvoiceRead"],
                "description": f"bulk token {i:03d}",
            }
            response = await admin_api.post("/tokens", json=body)
            return str(response.json()["referenceNumber"])

        # In parallel (the simulator answers each request in ~45 ms), then ordered
        # by creation as KSeF lists them.
        made = await asyncio.gather(*(mint_one(i) for i in range(150)))
    by_ref = {ref: sim.simulator.store.tokens[ref].seq for ref in made}
    made = sorted(made, key=by_ref.__getitem__)
    _, token = mint(sim, description="the admin")
    secrets_seen.append(token)
    async with await client.login_with_token("Nip", NIP, token) as session:
        before = client.stats.requests[f"Nip:{NIP}"]
        everything = await session.list_tokens()
        pages_of_100 = client.stats.requests[f"Nip:{NIP}"] - before
        small_pages = await session.list_tokens(description="bulk", page_size=10)
    assert pages_of_100 == 2
    assert len(everything) == 151
    refs = [t.reference_number for t in small_pages]
    assert refs == list(reversed(made))  # every one, once, newest first
    assert [t.created for t in everything] == sorted((t.created for t in everything), reverse=True)


async def test_plain_http_to_a_remote_host_is_refused() -> None:
    from ksefctl.ksef import InsecureEndpoint

    with pytest.raises(InsecureEndpoint):
        KsefClient("http://api-test.ksef.mf.gov.pl/v2")


async def test_redirects_are_not_followed(sim: SimHandle) -> None:
    # The simulator never redirects; a gateway in front of KSeF might, and the
    # Authorization header must not follow it anywhere.
    transport = httpx.MockTransport(
        lambda request: httpx.Response(307, headers={"location": "https://elsewhere/v2"})
    )
    async with KsefClient(sim.base_url, ClientSettings(transport=transport)) as ksef:
        with pytest.raises(KsefError, match="redirect to https://elsewhere/v2 not followed"):
            await ksef.public_keys()
