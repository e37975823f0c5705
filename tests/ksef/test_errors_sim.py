"""Every error class, from a real simulator answer wherever the simulator can give one."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from ksefctl.ksef import (
    AmbiguousTokenCreation,
    ClientSettings,
    KsefClient,
    NotFound,
    PermissionDenied,
    RateLimited,
    RetryPolicy,
    ServerError,
    TransportError,
    UnexpectedResponse,
    ValidationFailed,
)
from ksefctl.ksef import auth as ksef_auth
from ksefctl.ksef.auth import IssuedToken
from ksefctl.ksef.session import Session
from ksefctl.ksef.transport import Transport
from ksefctl.manifest.model import ContextId
from ksefctl.secret import Secret
from tests.contract import ContractChecker
from tests.ksef.conftest import FAST_RETRY, NIP, mint, set_faults
from tests.support.sim import SimHandle


def assert_no_secret(error: BaseException, *secrets: Secret) -> None:
    text = str(error) + repr(error)
    assert "\n" not in str(error)
    for secret in secrets:
        assert secret.reveal() not in text


@pytest.mark.parametrize("problem_details", [True, False])
async def test_invalid_input_is_validation_failed_in_both_error_formats(
    sim: SimHandle,
    contract: ContractChecker,
    secrets_seen: list[Secret],
    problem_details: bool,
) -> None:
    _, token = mint(sim)
    secrets_seen.append(token)
    hooks = contract.async_hooks()
    hooks.pop("request")  # this test sends an invalid request on purpose
    async with (
        KsefClient(
            sim.base_url, ClientSettings(event_hooks=hooks, problem_details=problem_details)
        ) as ksef,
        await ksef.login_with_token("Nip", NIP, token) as session,
    ):
        with pytest.raises(ValidationFailed) as invalid:
            await session.generate_token(["InvoiceRead"], "abc")
    assert invalid.value.codes == [21405]
    assert str(invalid.value).startswith("KSeF 400 [21405] Błąd walidacji danych wejściowych")
    assert (invalid.value.trace_id is not None) is True
    assert_no_secret(invalid.value, token)


async def test_missing_permissions_are_permission_denied(
    sim: SimHandle, client: KsefClient, secrets_seen: list[Secret]
) -> None:
    other_reference, other = mint(sim, description="someone else's")
    _, reader = mint(sim, permissions=["InvoiceRead"], description="a reader")
    secrets_seen += [other, reader]
    async with await client.login_with_token("Nip", NIP, reader) as session:
        with pytest.raises(PermissionDenied) as lacking:  # 400 26001
            await session.generate_token(["CredentialsManage"], "more than I hold")
        assert lacking.value.codes == [26001]
        with pytest.raises(PermissionDenied) as forbidden:  # 403 problem details
            await session.revoke_token(other_reference)
        assert forbidden.value.status == 403
        assert forbidden.value.reason_code == "insufficient-resource-access"
        assert_no_secret(forbidden.value, reader, other, session._access.token)


async def test_unknown_authentication_operation_is_not_found(
    sim: SimHandle, client: KsefClient, secrets_seen: list[Secret]
) -> None:
    _, token = mint(sim)
    secrets_seen.append(token)
    transport = client._transport
    context = ContextId("Nip", NIP)
    key = await client.token_encryption_key()
    challenge = await ksef_auth.challenge(transport)
    pending = await ksef_auth.start_with_token(
        transport,
        context,
        challenge,
        key.encrypt_token(token, challenge.timestamp_ms),
        key.public_key_id,
    )
    secrets_seen.append(pending.token)
    bogus = ksef_auth.PendingAuth("20250101-AU-0000000000-0000000000-00", pending.token)
    with pytest.raises(NotFound) as missing:
        await ksef_auth.await_outcome(transport, context, bogus, 5)
    assert missing.value.codes == [21304]
    assert_no_secret(missing.value, token, pending.token)


async def test_a_429_storm_is_retried_then_reported(
    sim: SimHandle, contract: ContractChecker
) -> None:
    set_faults(sim, storm_rate=1.0, storm_retry_after=1)
    retry = RetryPolicy(max_attempts=2, max_rate_limited=1, base_delay_s=0.01)
    async with KsefClient(
        sim.base_url, ClientSettings(event_hooks=contract.async_hooks(), retry=retry)
    ) as ksef:
        with pytest.raises(RateLimited) as limited:
            await ksef.public_keys()
    assert limited.value.retry_after == 1.0
    assert ksef.stats.rate_limited["-"] == 2  # the first answer, and the one retry


async def test_server_errors_and_dropped_connections_after_retries(
    sim: SimHandle, contract: ContractChecker
) -> None:
    hooks = contract.async_hooks()
    hooks.pop("response")  # injected 500s are, by definition, outside the contract
    async with KsefClient(
        sim.base_url, ClientSettings(event_hooks=hooks, retry=FAST_RETRY)
    ) as client:
        set_faults(sim, error_rate=1.0)
        with pytest.raises(ServerError, match=r"^KSeF 500 Internal Server Error"):
            await client.public_keys()
        assert client.stats.requests["-"] == FAST_RETRY.max_attempts
        set_faults(sim, error_rate=0.0, drop_rate=1.0)
        with pytest.raises(TransportError, match="KSeF unreachable") as dropped:
            await client.public_keys()
        assert dropped.value.sent


async def test_connection_refused_is_a_transport_error_that_never_reached_ksef() -> None:
    async with KsefClient("http://127.0.0.1:9/v2", ClientSettings(retry=FAST_RETRY)) as ksef:
        with pytest.raises(TransportError) as refused:
            await ksef.public_keys()
    assert refused.value.sent is False


async def test_a_lost_answer_to_post_tokens_reports_the_orphan(
    sim: SimHandle, client: KsefClient, secrets_seen: list[Secret]
) -> None:
    _, token = mint(sim)
    secrets_seen.append(token)
    async with await client.login_with_token("Nip", NIP, token) as session:
        set_faults(sim, drop_after_commit=1)
        with pytest.raises(AmbiguousTokenCreation) as lost:
            await session.generate_token(["InvoiceRead"], "erp [n-7c1d9e]", find_marker="n-7c1d9e")
        [orphan] = lost.value.orphans
        assert lost.value.searched
        assert f"revoke orphan(s) {orphan}" in str(lost.value)
        info = await session.get_token(orphan)
        assert info.description == "erp [n-7c1d9e]"
        # The client never repeated the POST: exactly one token carries the marker.
        assert len(await session.list_tokens(description="n-7c1d9e")) == 1


def gateway(handler: dict[str, httpx.Response]) -> httpx.MockTransport:
    """Answers no simulator gives (it is faithful to the contract), keyed by 'METHOD path'."""

    def respond(request: httpx.Request) -> httpx.Response:
        return handler.get(f"{request.method} {request.url.path}", httpx.Response(599))

    return httpx.MockTransport(respond)


async def test_unreadable_answers_are_unexpected_response() -> None:
    cases = {
        "html": httpx.Response(
            200, content=b"<html>maintenance</html>", headers={"content-type": "text/html"}
        ),
        "wrong type": httpx.Response(200, json={"keys": []}),
        "missing field": httpx.Response(200, json=[{"certificate": "AAAA"}]),
    }
    for name, answer in cases.items():
        transport = gateway({"GET /v2/security/public-key-certificates": answer})
        async with KsefClient(
            "https://ksef.example/v2", ClientSettings(transport=transport)
        ) as ksef:
            with pytest.raises(UnexpectedResponse) as unexpected:
                await ksef.public_keys()
        assert "\n" not in str(unexpected.value), name


async def test_nothing_found_after_a_lost_answer_says_generating_again_is_safe() -> None:
    now = "2030-01-01T00:00:00+00:00"
    calls: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "POST" and request.url.path == "/v2/tokens":
            raise httpx.ReadTimeout("lost", request=request)
        if request.url.path == "/v2/tokens":
            return httpx.Response(200, json={"tokens": []})
        raise AssertionError(request.url)

    transport = Transport(
        "https://ksef.example/v2", ClientSettings(transport=httpx.MockTransport(respond))
    )
    far = IssuedToken(Secret("jwt"), datetime.fromisoformat(now), 1e9, 0.0)
    session = Session(transport, ContextId("Nip", NIP), "ref", far, far, ambiguity_recheck_s=0.0)
    with pytest.raises(AmbiguousTokenCreation) as lost:
        await session.generate_token(["InvoiceRead"], "erp [n-1]", find_marker="n-1")
    assert lost.value.orphans == [] and lost.value.searched
    assert "generating again is safe" in str(lost.value)
    assert calls == ["POST /v2/tokens", "GET /v2/tokens", "GET /v2/tokens"]  # never re-POSTed
    await transport.aclose()
