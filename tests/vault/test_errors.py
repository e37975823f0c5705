"""Failures reach the user as one readable line, never with a token or a secret in it."""

from __future__ import annotations

import logging

import hvac
import pytest

from ksefctl.manifest.model import SecretRef
from ksefctl.openbao import free_port, start_dev_server
from ksefctl.retry import RetryPolicy
from ksefctl.secret import Secret
from ksefctl.vault import (
    VaultConfig,
    VaultError,
    VaultPermissionDenied,
    VaultStore,
    VaultUnavailable,
)
from tests.conftest import Bao
from tests.vault.conftest import TOKEN_VALUE, write

VAULT_TOKEN = "root-do-not-print-me-7f3a"


def assert_one_clean_line(error: BaseException, *secrets: str) -> None:
    message = str(error)
    assert "\n" not in message and message
    for secret in secrets:
        assert secret not in message and secret not in repr(error)
    assert error.__cause__ is None and error.__suppress_context__  # no hvac body in tracebacks


async def test_vault_down_names_host_and_port_but_not_the_token() -> None:
    port = free_port()
    config = VaultConfig(address=f"http://127.0.0.1:{port}", token=Secret(VAULT_TOKEN), timeout=5)
    async with VaultStore(config) as store:
        with pytest.raises(VaultUnavailable) as error:
            await store.read_token_state(SecretRef("secret", "ksef/test/5265877635/erp"))
    assert f"127.0.0.1:{port}" in str(error.value)
    assert_one_clean_line(error.value, VAULT_TOKEN)


async def test_sealed_vault_is_unavailable() -> None:
    server = start_dev_server(root_token=VAULT_TOKEN)
    try:
        hvac.Client(url=server.address, token=VAULT_TOKEN).sys.seal()
        async with VaultStore(
            VaultConfig(address=server.address, token=Secret(VAULT_TOKEN)),
            # Not the half-minute patience a seal gets by default (tests/vault/test_seal.py).
            read_retry=RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.02),
        ) as store:
            with pytest.raises(VaultUnavailable, match="sealed") as error:
                await store.read_token_state(SecretRef("secret", "ksef/x"))
        assert_one_clean_line(error.value, VAULT_TOKEN)
    finally:
        server.stop()


async def test_forbidden_names_operation_and_path(bao: Bao, root: hvac.Client) -> None:
    weak = root.auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
    ref = SecretRef(bao.mount, "ksef/test/5265877635/erp")
    async with VaultStore(VaultConfig(address=bao.address, token=Secret(weak))) as store:
        with pytest.raises(VaultPermissionDenied) as read:
            await store.read_token_state(ref)
        with pytest.raises(VaultPermissionDenied) as written:
            await write(store, ref, cas=0)
    assert f"read on {ref}" in str(read.value)
    assert f"write on {ref}" in str(written.value)
    assert_one_clean_line(read.value, weak)
    assert_one_clean_line(written.value, weak, TOKEN_VALUE)


async def test_invalid_token_is_permission_denied(bao: Bao) -> None:
    config = VaultConfig(address=bao.address, token=Secret(VAULT_TOKEN))
    async with VaultStore(config) as store:
        with pytest.raises(VaultPermissionDenied) as error:
            await store.list_owner_secrets(bao.mount, "ksef/{nip}", "acme")
    assert_one_clean_line(error.value, VAULT_TOKEN)


async def test_no_secret_in_logs_reprs_or_messages(
    bao_env: Bao, root: hvac.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, hvac, urllib3
    ref = SecretRef(bao_env.mount, "ksef/test/5265877635/erp")
    admin = SecretRef(bao_env.mount, "ksef-admin/5265877635")
    root.secrets.kv.v2.create_or_update_secret(
        admin.path, {"token": "admin-ksef-token-value"}, mount_point=bao_env.mount
    )
    async with VaultStore() as store:
        await write(store, ref, cas=0)
        state = await store.read_token_state(ref)
        creds = await store.read_credentials(admin)
        with pytest.raises(VaultError) as conflict:
            await write(store, ref, cas=0)
        async with store.lock("acme", mount=bao_env.mount) as lease:
            shown = [repr(store), repr(store.config), repr(state), repr(creds), repr(lease)]

    assert caplog.records, "debug logging was captured"
    everything = caplog.text + "".join(shown) + str(conflict.value)
    for secret in (TOKEN_VALUE, "admin-ksef-token-value", bao_env.token):
        assert secret not in everything
