"""VaultStore against a real OpenBao: the KV v2 contract of SPEC.md, check-and-set, history, pruning."""

from __future__ import annotations

import hvac
import pytest

from ksefctl.manifest.model import SecretRef
from ksefctl.secret import Secret
from ksefctl.vault import CasConflict, VaultError, VaultNotFound, VaultStore, template_prefix
from tests.conftest import Bao
from tests.vault.conftest import CREATED, custom_metadata, read_data, write
from tests.vault.conftest import TOKEN_VALUE as TOKEN


def at(bao: Bao, path: str = "ksef/test/5265877635/erp") -> SecretRef:
    return SecretRef(bao.mount, path)


async def test_written_token_has_exactly_the_spec_data_and_metadata(
    store: VaultStore, bao: Bao, root: hvac.Client
) -> None:
    ref = at(bao)
    version = await write(store, ref, cas=0)

    assert version == 1
    assert read_data(root, ref) == {
        "token": TOKEN,
        "referenceNumber": "20251001-EC-0000000001-AB",
        "context": "Nip:5265877635",
        "permissions": ["InvoiceRead", "InvoiceWrite"],
        "environment": "test",
        "createdAt": "2025-10-01T12:30:00Z",
    }
    meta = custom_metadata(root, ref)
    assert meta["managedBy"] == "ksefctl"
    assert meta["owner"] == "acme"
    assert meta["token"] == "erp"
    assert meta["context"] == "Nip:5265877635"
    assert meta["referenceNumber"] == "20251001-EC-0000000001-AB"
    assert TOKEN not in str(meta)


async def test_token_state_reports_version_and_reference_but_not_the_value(
    store: VaultStore, bao: Bao
) -> None:
    ref = at(bao)
    await write(store, ref, cas=0)

    state = await store.read_token_state(ref)

    assert state.exists and state.version == 1
    assert state.reference_number == "20251001-EC-0000000001-AB"
    assert state.created == CREATED
    assert TOKEN not in repr(state)


async def test_never_written_path_is_version_zero(store: VaultStore, bao: Bao) -> None:
    state = await store.read_token_state(at(bao, "ksef/test/nothing/here"))
    assert not state.exists and state.version == 0 and state.reference_number is None


async def test_path_without_a_token_value_does_not_count_as_existing(
    store: VaultStore, bao: Bao, root: hvac.Client
) -> None:
    ref = at(bao)
    root.secrets.kv.v2.create_or_update_secret(
        ref.path, {"note": "hand-made"}, mount_point=bao.mount
    )
    state = await store.read_token_state(ref)
    assert not state.exists and state.version == 1


async def test_check_and_set_refuses_a_stale_version(store: VaultStore, bao: Bao) -> None:
    ref = at(bao)
    await write(store, ref, cas=0)

    with pytest.raises(CasConflict) as first:
        await write(store, ref, cas=0, token="second-writer-token")
    with pytest.raises(CasConflict):
        await write(store, ref, cas=7, token="second-writer-token")

    assert str(ref) in str(first.value)
    assert "second-writer-token" not in str(first.value)
    assert (await store.read_token_state(ref)).version == 1


async def test_rotation_keeps_the_old_version_in_history(
    store: VaultStore, bao: Bao, root: hvac.Client
) -> None:
    ref = at(bao)
    await write(store, ref, cas=0, token="old-token", reference="20251001-EC-OLD")
    version = await write(store, ref, cas=1, token="new-token", reference="20251001-EC-NEW")

    assert version == 2
    assert read_data(root, ref, version=1)["token"] == "old-token"
    assert read_data(root, ref)["token"] == "new-token"
    assert custom_metadata(root, ref)["referenceNumber"] == "20251001-EC-NEW"
    assert (await store.read_token_state(ref)).reference_number == "20251001-EC-NEW"


async def test_soft_delete_is_recoverable_and_records_the_reason(
    store: VaultStore, bao: Bao, root: hvac.Client
) -> None:
    ref = at(bao)
    await write(store, ref, cas=0)

    assert await store.soft_delete(ref, "context removed from manifest", expected_version=1)

    state = await store.read_token_state(ref)
    assert not state.exists and state.version == 1  # CAS must still name version 1
    meta = custom_metadata(root, ref)
    assert meta["deletedReason"] == "context removed from manifest"
    assert meta["deletedAt"].endswith("Z")
    assert meta["owner"] == "acme"

    root.secrets.kv.v2.undelete_secret_versions(ref.path, [1], mount_point=bao.mount)
    assert read_data(root, ref)["token"] == TOKEN

    # A later write starts from the deleted version and clears the deletion record.
    await store.soft_delete(ref, "again")
    assert await write(store, ref, cas=1, token="fresh") == 2
    assert "deletedReason" not in custom_metadata(root, ref)


async def test_soft_delete_refuses_a_version_it_did_not_observe(
    store: VaultStore, bao: Bao
) -> None:
    ref = at(bao)
    await write(store, ref, cas=0)
    await write(store, ref, cas=1, token="newer")

    with pytest.raises(CasConflict):
        await store.soft_delete(ref, "prune", expected_version=1)
    assert (await store.read_token_state(ref)).exists


async def test_soft_delete_of_nothing_is_a_no_op(store: VaultStore, bao: Bao) -> None:
    assert not await store.soft_delete(at(bao, "ksef/none"), "prune")


async def test_update_metadata_merges(store: VaultStore, bao: Bao, root: hvac.Client) -> None:
    ref = at(bao)
    await write(store, ref, cas=0)
    await store.update_metadata(ref, {"revokedReference": "20251001-EC-OLD"})

    meta = custom_metadata(root, ref)
    assert meta["revokedReference"] == "20251001-EC-OLD"
    assert meta["owner"] == "acme" and meta["managedBy"] == "ksefctl"


async def test_list_owner_secrets_finds_only_this_owners_live_secrets(
    store: VaultStore, bao: Bao, root: hvac.Client
) -> None:
    mine = [at(bao, "ksef/test/5265877635/erp"), at(bao, "ksef/test/7762811692/reader")]
    for ref in mine:
        await write(store, ref, cas=0)
    await write(store, at(bao, "ksef/test/5265877635/bi"), cas=0, owner="other-group")
    deleted = at(bao, "ksef/test/1111111111/erp")
    await write(store, deleted, cas=0)
    await store.soft_delete(deleted, "pruned earlier")
    root.secrets.kv.v2.create_or_update_secret(
        "ksef/test/5265877635/manual", {"token": "x"}, mount_point=bao.mount
    )
    root.secrets.kv.v2.create_or_update_secret(
        "elsewhere/erp", {"token": "x"}, mount_point=bao.mount
    )

    found = await store.list_owner_secrets(bao.mount, "ksef/{environment}/{nip}/{token}", "acme")

    assert [ref for ref, _ in found] == mine
    assert all(meta["owner"] == "acme" for _, meta in found)


async def test_list_from_the_mount_root_skips_ksefctl_locks(store: VaultStore, bao: Bao) -> None:
    await write(store, at(bao, "test/5265877635/erp"), cas=0)
    async with store.lock("acme", mount=bao.mount):
        found = await store.list_owner_secrets(bao.mount, "{environment}/{nip}/{token}", "acme")
    assert [ref.path for ref, _ in found] == ["test/5265877635/erp"]
    assert await store.list_owner_secrets(bao.mount, "nowhere/{nip}", "acme") == []


def test_template_prefix() -> None:
    assert template_prefix("ksef/{environment}/{nip}/{token}") == "ksef/"
    assert template_prefix("a/b/ksef-{environment}/{token}") == "a/b/"
    assert template_prefix("{environment}/{token}") == ""
    assert template_prefix("ksef/tokens/") == "ksef/tokens/"


async def test_read_credentials_wraps_every_value(
    store: VaultStore, bao: Bao, root: hvac.Client
) -> None:
    ref = at(bao, "ksef-admin/5265877635")
    root.secrets.kv.v2.create_or_update_secret(
        ref.path,
        {"certificate": "-----BEGIN CERTIFICATE-----", "privateKey": "-----BEGIN PRIVATE KEY-----"},
        mount_point=bao.mount,
    )
    creds = await store.read_credentials(ref)

    assert set(creds) == {"certificate", "privateKey"}
    assert all(isinstance(v, Secret) for v in creds.values())
    assert creds["privateKey"].reveal() == "-----BEGIN PRIVATE KEY-----"
    assert "PRIVATE" not in repr(creds)


async def test_read_credentials_names_the_path_when_missing_or_incomplete(
    store: VaultStore, bao: Bao, root: hvac.Client
) -> None:
    missing = at(bao, "ksef-admin/0000000000")
    with pytest.raises(VaultNotFound, match=str(missing)):
        await store.read_credentials(missing)

    ref = at(bao, "ksef-admin/5265877635")
    root.secrets.kv.v2.create_or_update_secret(
        ref.path, {"certificate": "-----BEGIN CERTIFICATE-----"}, mount_point=bao.mount
    )
    with pytest.raises(VaultError, match=rf"{ref}.*keys present: certificate"):
        await store.read_credentials(ref)
    with pytest.raises(VaultError, match="lack password"):
        await store.read_credentials(ref, required=["certificate", "password"])
