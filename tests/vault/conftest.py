"""Fixtures for the Vault tests: a VaultStore on the per-test KV v2 mount, and a root client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import hvac
import pytest

from ksefctl.manifest.model import SecretRef
from ksefctl.secret import Secret
from ksefctl.vault import VaultStore
from tests.conftest import Bao

CREATED = datetime(2025, 10, 1, 12, 30, tzinfo=UTC)
TOKEN_VALUE = "20251001-EC-TOKENVALUE|nip-5265877635|secretpart"


@pytest.fixture
def root(bao: Bao) -> hvac.Client:
    return hvac.Client(url=bao.address, token=bao.token)


@pytest.fixture
async def store(bao_env: Bao) -> AsyncIterator[VaultStore]:
    async with VaultStore(concurrency=8) as opened:
        yield opened


async def write(
    store: VaultStore,
    ref: SecretRef,
    *,
    cas: int,
    token: str = TOKEN_VALUE,
    reference: str = "20251001-EC-0000000001-AB",
    owner: str = "acme",
    name: str = "erp",
    permissions: Sequence[str] = ("InvoiceRead", "InvoiceWrite"),
) -> int:
    return await store.write_token(
        ref,
        token=Secret(token),
        reference_number=reference,
        context="Nip:5265877635",
        permissions=permissions,
        environment="test",
        created_at=CREATED,
        owner=owner,
        token_name=name,
        cas=cas,
    )


def read_data(root: hvac.Client, ref: SecretRef, version: int | None = None) -> dict[str, object]:
    response = root.secrets.kv.v2.read_secret_version(
        ref.path, version=version, mount_point=ref.mount, raise_on_deleted_version=True
    )
    data: dict[str, object] = response["data"]["data"]
    return data


def custom_metadata(root: hvac.Client, ref: SecretRef) -> dict[str, str]:
    response = root.secrets.kv.v2.read_secret_metadata(ref.path, mount_point=ref.mount)
    return dict(response["data"]["custom_metadata"] or {})


async def eventually(condition: Callable[[], bool], deadline: float = 10.0) -> None:
    """Poll ``condition()`` until true (no fixed sleeps)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.02)
