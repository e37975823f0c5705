"""The aiohttp path to Vault (KV reads, token writes): TLS as configured, the token
never sent anywhere but VAULT_ADDR, a path prefix of VAULT_ADDR kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.types import Receive, Scope, Send

from ksefctl.manifest.model import SecretRef
from ksefctl.retry import RetryPolicy
from ksefctl.secret import Secret
from ksefctl.vault import VaultConfig, VaultStore, VaultUnavailable
from tests.support.servers import certificate_authority, serve

TOKEN = "vault-token-never-elsewhere-51c2"
REF = SecretRef("secret", "ksef/test/5265877635/erp")
KV_ANSWER = {
    "data": {
        "data": {"token": "t", "referenceNumber": "20261125-EC-0000000000-0000000000-00"},
        "metadata": {"version": 3, "custom_metadata": {"owner": "acme"}, "deletion_time": ""},
    }
}


def kv_server(seen: list[tuple[str, str | None]]):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        token = headers.get(b"x-vault-token")
        seen.append((scope["path"], token.decode() if token else None))
        body = json.dumps(KV_ANSWER).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def config(address: str, **extra: object) -> VaultConfig:
    return VaultConfig(address=address, token=Secret(TOKEN), timeout=5, **extra)  # type: ignore[arg-type]


async def test_custom_ca_verifies_and_an_unknown_ca_is_refused(tmp_path: Path) -> None:
    ca, cert, key = certificate_authority(tmp_path)
    seen: list[tuple[str, str | None]] = []
    with serve(kv_server(seen), ssl_certfile=str(cert), ssl_keyfile=str(key)) as port:
        address = f"https://127.0.0.1:{port}"
        async with VaultStore(config(address, cacert=str(ca))) as store:
            state = await store.read_token_state(REF)
        assert state.exists and state.version == 3
        async with VaultStore(config(address)) as store:
            with pytest.raises(VaultUnavailable, match="TLS") as error:
                await store.read_token_state(REF)
        assert TOKEN not in str(error.value)
    assert seen == [("/v1/secret/data/ksef/test/5265877635/erp", TOKEN)]


async def test_a_redirect_is_not_followed_with_the_token() -> None:
    elsewhere: list[tuple[str, str | None]] = []
    with serve(kv_server(elsewhere)) as other:

        async def redirecting(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            location = f"http://127.0.0.1:{other}{scope['path']}".encode()
            await send(
                {"type": "http.response.start", "status": 307, "headers": [(b"location", location)]}
            )
            await send({"type": "http.response.body", "body": b""})

        with serve(redirecting) as port:
            async with VaultStore(config(f"http://127.0.0.1:{port}")) as store:
                with pytest.raises(VaultUnavailable, match="redirected") as error:
                    await store.read_token_state(REF)
    assert elsewhere == []
    assert TOKEN not in str(error.value)


async def test_a_path_prefix_of_vault_addr_is_kept() -> None:
    seen: list[tuple[str, str | None]] = []
    with serve(kv_server(seen)) as port:
        async with VaultStore(config(f"http://127.0.0.1:{port}/vault/")) as store:
            await store.read_token_state(SecretRef("secret", "ksef/a b/erp"))
    assert seen == [("/vault/v1/secret/data/ksef/a b/erp", TOKEN)]


def flaky_server(failures: int, seen: list[str]):  # type: ignore[no-untyped-def]
    """Answers 503 (Vault sealed / standby) ``failures`` times, then like a healthy KV."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        seen.append(scope["method"])
        status, body = (
            (503, {"errors": ["Vault is sealed"]})
            if len(seen) <= failures
            else (
                200,
                KV_ANSWER,
            )
        )
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return app


FAST = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05)


async def test_a_read_rides_out_a_brief_outage() -> None:
    seen: list[str] = []
    with serve(flaky_server(2, seen)) as port:
        async with VaultStore(config(f"http://127.0.0.1:{port}"), read_retry=FAST) as store:
            state = await store.read_token_state(REF)
    assert state.exists and seen == ["GET"] * 3


async def test_a_lasting_outage_fails_after_the_retries_and_writes_are_never_resent() -> None:
    seen: list[str] = []
    with serve(flaky_server(100, seen)) as port:
        async with VaultStore(config(f"http://127.0.0.1:{port}"), read_retry=FAST) as store:
            with pytest.raises(VaultUnavailable, match="sealed"):
                await store.read_token_state(REF)
            assert seen == ["GET"] * 3
            # Vault is known to be down: the next read fails at its first refusal.
            with pytest.raises(VaultUnavailable, match="sealed"):
                await store.read_token_state(REF)
            assert seen == ["GET"] * 4
            with pytest.raises(VaultUnavailable, match="sealed"):
                await store.write_token(
                    REF,
                    token=Secret("never-resent"),
                    reference_number="20261125-EC-0000000000-0000000000-00",
                    context="Nip:5265877635",
                    permissions=["InvoiceRead"],
                    environment="test",
                    created_at=datetime.now(UTC),
                    owner="acme",
                    token_name="erp",
                    cas=0,
                )
    assert seen == ["GET"] * 4 + ["POST"]


async def test_after_giving_up_reads_retry_again_once_vault_answers() -> None:
    seen: list[str] = []
    with serve(flaky_server(4, seen)) as port:
        async with VaultStore(config(f"http://127.0.0.1:{port}"), read_retry=FAST) as store:
            for _ in range(2):
                with pytest.raises(VaultUnavailable):
                    await store.read_token_state(REF)
            assert len(seen) == 4
            assert (await store.read_token_state(REF)).exists  # Vault is back
            assert not store.client.reads_gave_up


def flaky_listing(failures: int, seen: list[str]):  # type: ignore[no-untyped-def]
    """503 ``failures`` times, then one folder holding one secret managed for acme."""
    calls: list[str] = []
    answers = {
        "LIST": {"data": {"keys": ["erp"]}},
        "GET": {
            "data": {
                "current_version": 1,
                "custom_metadata": {"managedBy": "ksefctl", "owner": "acme"},
                "versions": {"1": {"deletion_time": "", "destroyed": False}},
            }
        },
    }

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        seen.append(scope["method"])
        calls.append(scope["method"])
        failing = len(calls) <= failures
        status, body = (
            (503, {"errors": ["Vault is sealed"]}) if failing else (200, answers[scope["method"]])
        )
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return app


async def test_lists_and_metadata_reads_ride_out_a_brief_outage_too() -> None:
    seen: list[str] = []
    with serve(flaky_listing(2, seen)) as port:
        async with VaultStore(config(f"http://127.0.0.1:{port}"), read_retry=FAST) as store:
            found = await store.list_owner_secrets("secret", "ksef/", "acme")
            assert [ref.path for ref, _ in found] == ["ksef/erp"]
            assert seen == ["LIST"] * 3 + ["GET"]
