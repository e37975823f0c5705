"""The example policies, loaded into OpenBao as written: ksefctl can do its whole job, consumers only read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from ksefctl.manifest.model import ContextId, SecretRef
from ksefctl.openbao import DevServer
from ksefctl.secret import Secret
from ksefctl.vault import VaultConfig, VaultPermissionDenied, VaultStore
from ksefctl.vault.sessions import CachedSession, SessionCache
from tests.conftest import REPO
from tests.vault.conftest import TOKEN_VALUE, write

POLICIES = REPO / "examples" / "vault"
MOUNT = "secret"  # the policies are written for the default layout on the dev server's KV v2 mount


@dataclass(frozen=True)
class Loaded:
    root: hvac.Client
    ksefctl_policy: str
    consumer_policy: str


@pytest.fixture
def policies(bao_server: DevServer) -> Iterator[Loaded]:
    client = hvac.Client(url=bao_server.address, token=bao_server.root_token)
    names = []
    for file in ("ksefctl-policy.hcl", "consumer-policy.hcl"):
        name = f"{Path(file).stem}-{uuid.uuid4().hex[:8]}"
        client.sys.create_or_update_policy(name, (POLICIES / file).read_text())
        names.append(name)
    yield Loaded(client, *names)
    for name in names:
        client.sys.delete_policy(name)


def as_store(store: VaultStore) -> hvac.Client:
    """A plain hvac client holding the same token as ``store`` (what else could it do?)."""
    token = store.client.token
    assert token is not None
    return hvac.Client(url=store.config.address, token=token.reveal())


def store_with(client: hvac.Client, policy: str) -> VaultStore:
    token = client.auth.token.create(policies=[policy], no_default_policy=True, ttl="10m")
    config = VaultConfig(address=client.url, token=Secret(token["auth"]["client_token"]))
    return VaultStore(config, concurrency=4)


async def test_ksefctl_policy_allows_the_full_cycle_and_consumers_only_read(
    policies: Loaded,
) -> None:
    server_root = policies.root
    run = uuid.uuid4().hex[:8]
    owner = f"acme-{run}"
    ref = SecretRef(MOUNT, f"ksef/test-{run}/5265877635/erp")
    admin = SecretRef(MOUNT, f"ksef-admin/{run}-5265877635")
    server_root.secrets.kv.v2.create_or_update_secret(
        admin.path, {"certificate": "CERT", "privateKey": "KEY"}, mount_point=MOUNT
    )

    async with store_with(server_root, policies.ksefctl_policy) as store:
        assert set(await store.read_credentials(admin)) == {"certificate", "privateKey"}
        async with store.lock(owner, mount=MOUNT, timeout=0):
            assert (await store.read_token_state(ref)).version == 0
            assert await write(store, ref, cas=0, owner=owner) == 1
            assert await write(store, ref, cas=1, owner=owner) == 2
            await store.update_metadata(ref, {"note": "rotated"})
            found = await store.list_owner_secrets(MOUNT, "ksef/{environment}/{nip}/{token}", owner)
            assert [r for r, _ in found] == [ref]

        async with store_with(server_root, policies.consumer_policy) as consumer:
            direct = as_store(consumer).secrets.kv.v2.read_secret_version(
                ref.path, mount_point=MOUNT, raise_on_deleted_version=True
            )
            assert direct["data"]["data"]["token"] == TOKEN_VALUE
            assert (await consumer.read_token_state(ref)).exists
            with pytest.raises(VaultPermissionDenied):
                await write(consumer, ref, cas=2, owner=owner)
            with pytest.raises(VaultPermissionDenied):
                await consumer.update_metadata(ref, {"owner": "me"})
            with pytest.raises(VaultPermissionDenied):
                await consumer.soft_delete(ref, "not mine")
            with pytest.raises(VaultPermissionDenied):
                await consumer.read_credentials(admin)

        # Cached KSeF sessions: written, read and forgotten by ksefctl, invisible to consumers.
        cache = SessionCache(store)
        session_ref = cache.ref(MOUNT, owner, "test", ContextId("Nip", "5265877635"))
        record = CachedSession(
            "20251010-AU-1",
            Secret("refresh-jwt"),
            datetime.now(UTC).replace(microsecond=0) + timedelta(days=7),
            "https://api-test.ksef.mf.gov.pl/v2",
            "fp",
        )
        assert await cache.write(session_ref, owner, record, cas=0)
        assert (await cache.read(session_ref)).session == record
        assert await cache.write(session_ref, owner, record, cas=1)
        async with store_with(server_root, policies.consumer_policy) as consumer:
            with pytest.raises(VaultPermissionDenied):
                await consumer.read_credentials(session_ref, required=["refreshToken"])
        await cache.forget(session_ref)
        assert (await cache.read(session_ref)).version == 0
        assert cache.available

        assert await store.soft_delete(ref, "pruned", expected_version=2)
        assert not (await store.read_token_state(ref)).exists

        # Least privilege: nothing outside its folders, no destroying history.
        with pytest.raises(VaultPermissionDenied):
            await store.read_token_state(SecretRef(MOUNT, f"elsewhere/{run}"))
        with pytest.raises(hvac.exceptions.Forbidden):
            as_store(store).secrets.kv.v2.destroy_secret_versions(ref.path, [1], mount_point=MOUNT)

    server_root.secrets.kv.v2.delete_metadata_and_all_versions(ref.path, mount_point=MOUNT)
    server_root.secrets.kv.v2.delete_metadata_and_all_versions(admin.path, mount_point=MOUNT)
    server_root.secrets.kv.v2.delete_metadata_and_all_versions(
        f".ksefctl/locks/{owner}", mount_point=MOUNT
    )
