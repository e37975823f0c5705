"""The ``bao`` fixtures: one real OpenBao dev server per session, a fresh KV v2 mount per test."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ksefctl.openbao import DevServer, start_dev_server


@dataclass(frozen=True)
class Bao:
    """Connection details for the test OpenBao, with a KV v2 mount unique to one test."""

    address: str
    token: str
    mount: str


@pytest.fixture(scope="session")
def bao_server() -> Iterator[DevServer]:
    server = start_dev_server(root_token=f"root-{secrets.token_hex(8)}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bao(bao_server: DevServer) -> Iterator[Bao]:
    """A fresh KV v2 mount per test, so tests never see each other's secrets."""
    import hvac

    mount = f"kv-{uuid.uuid4().hex[:12]}"
    client = hvac.Client(url=bao_server.address, token=bao_server.root_token)
    client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    try:
        yield Bao(address=bao_server.address, token=bao_server.root_token, mount=mount)
    finally:
        client.sys.disable_secrets_engine(mount)


@pytest.fixture
def bao_env(bao: Bao, monkeypatch: pytest.MonkeyPatch) -> Bao:
    """The standard VAULT_* variables pointing at the test OpenBao."""
    monkeypatch.setenv("VAULT_ADDR", bao.address)
    monkeypatch.setenv("VAULT_TOKEN", bao.token)
    monkeypatch.delenv("VAULT_NAMESPACE", raising=False)
    return bao
