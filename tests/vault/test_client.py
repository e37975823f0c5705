"""VaultClient, the one KV v2 client the store, the owner lock and the session cache share:
each public call against OpenBao, checked with a separate hvac client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import hvac
import pytest

from ksefctl.secret import Secret
from ksefctl.vault import CasConflict, VaultClient, VaultConfig, VaultPermissionDenied
from ksefctl.vocabulary import SecretRef
from tests.conftest import Bao
from tests.vault.conftest import custom_metadata, read_data


@pytest.fixture
async def client(bao: Bao) -> AsyncIterator[VaultClient]:
    config = VaultConfig(address=bao.address, token=Secret(bao.token))
    async with VaultClient(config, concurrency=4) as opened:
        yield opened


def at(bao: Bao, path: str) -> SecretRef:
    return SecretRef(bao.mount, path)


async def test_check_and_set_writes_and_reads_of_any_version(
    client: VaultClient, bao: Bao, root: hvac.Client
) -> None:
    ref = at(bao, "ksef/a b/ü/erp")  # encoded as hvac would
    assert (await client.read(ref)).number == 0
    first = await client.write(ref, {"token": "one"}, cas=0)
    second = await client.write(ref, {"token": "two"}, cas=first.version)
    assert (first.version, second.version) == (1, 2)
    with pytest.raises(CasConflict):
        await client.write(ref, {"token": "three"}, cas=1)
    assert read_data(root, ref) == {"token": "two"}
    current, old = await client.read(ref), await client.read(ref, version=1)
    assert current.live and current.number == 2 and current.data == {"token": "two"}
    assert old.number == 1 and old.data == {"token": "one"}


async def test_metadata_is_written_field_by_field_and_merged(
    client: VaultClient, bao: Bao, root: hvac.Client
) -> None:
    ref = at(bao, "ksef/meta")
    assert await client.read_metadata(ref) is None
    await client.write(ref, {"token": "t"}, cas=0)
    root.secrets.kv.v2.update_metadata(ref.path, delete_version_after="768h", mount_point=bao.mount)
    await client.write_metadata(ref, custom_metadata={"owner": "acme"}, max_versions=3)
    await client.merge_metadata(ref, {"note": "kept"})
    assert custom_metadata(root, ref) == {"owner": "acme", "note": "kept"}
    raw = root.secrets.kv.v2.read_secret_metadata(ref.path, mount_point=bao.mount)["data"]
    assert raw["max_versions"] == 3
    assert raw["delete_version_after"] == "768h0m0s"  # the operator's retention survives
    metadata = await client.read_metadata(ref)
    assert metadata is not None and metadata.current_version == 1 and metadata.current_live
    # The data write answers with the path's custom_metadata (no read needed to merge).
    assert (await client.write(ref, {"token": "u"}, cas=1)).custom_metadata["note"] == "kept"


async def test_soft_delete_undelete_and_delete_all(
    client: VaultClient, bao: Bao, root: hvac.Client
) -> None:
    ref = at(bao, "ksef/gone")
    await client.write(ref, {"token": "t"}, cas=0)
    await client.write_metadata(ref, custom_metadata={"owner": "acme"})
    await client.delete_versions(ref, [1])
    deleted = await client.read(ref)
    assert not deleted.live and deleted.deleted and deleted.number == 1
    assert deleted.custom_metadata == {"owner": "acme"}  # a 404 that still says whose it was
    metadata = await client.read_metadata(ref)
    assert metadata is not None and metadata.current_deleted and not metadata.current_live
    await client.undelete_versions(ref, [1])
    assert (await client.read(ref)).data == {"token": "t"}
    await client.delete_all(ref)
    assert await client.read_metadata(ref) is None
    assert (await client.read(ref)).number == 0
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version(
            ref.path, version=1, mount_point=bao.mount, raise_on_deleted_version=True
        )


async def test_list_keys_of_a_folder(client: VaultClient, bao: Bao) -> None:
    for path in ("ksef/test/1/erp", "ksef/test/1/bi", "ksef/test/2/erp", "ksef/top"):
        await client.write(at(bao, path), {"token": "t"}, cas=0)
    assert sorted(await client.list_keys(bao.mount, "ksef/")) == ["test/", "top"]
    assert sorted(await client.list_keys(bao.mount, "ksef/test/1/")) == ["bi", "erp"]
    assert await client.list_keys(bao.mount, "nothing/here/") == []


async def test_errors_name_the_operation_and_path(bao: Bao, root: hvac.Client) -> None:
    weak = root.auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
    ref = at(bao, "ksef/locked")
    config = VaultConfig(address=bao.address, token=Secret(weak))
    async with VaultClient(config) as client:
        with pytest.raises(VaultPermissionDenied, match=f"write lock on {ref}") as error:
            await client.write(ref, {"token": "secret-value-9"}, cas=0, operation="write lock")
    assert weak not in str(error.value) and "secret-value-9" not in str(error.value)
