"""The per-owner lease lock: one holder at a time, waiting, expiry of a dead holder, renewal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import hvac
import pytest

from ksefctl.vault import LockLost, LockTimeout, VaultStore
from tests.conftest import Bao
from tests.vault.conftest import eventually, read_data


async def test_lock_records_holder_and_releases(
    store: VaultStore, bao: Bao, root: hvac.Client
) -> None:
    lock = store.lock("acme", mount=bao.mount, holder="ci-runner-1", ttl=30)
    async with lock as lease:
        lease.ensure_held()
        record = read_data(root, lease.ref)
        assert lease.ref.path == ".ksefctl/locks/acme"
        assert record["holder"] == "ci-runner-1" and record["owner"] == "acme"
    assert read_data(root, lock.ref)["holder"] == ""
    with pytest.raises(LockLost):
        lock.ensure_held()

    # Released: the next holder gets it at once, even with no patience at all.
    async with store.lock("acme", mount=bao.mount, holder="ci-runner-2", timeout=0):
        pass


async def test_second_holder_times_out_naming_the_first(store: VaultStore, bao: Bao) -> None:
    async with store.lock("acme", mount=bao.mount, holder="laptop:4242", ttl=30):
        with pytest.raises(LockTimeout) as error:
            async with store.lock(
                "acme", mount=bao.mount, holder="ci", timeout=0.2, poll_interval=0.05
            ):
                pass
    assert "laptop:4242" in str(error.value) and "acme" in str(error.value)
    assert error.value.expires is not None and error.value.expires > datetime.now(UTC)


async def test_other_owners_are_not_blocked(store: VaultStore, bao: Bao) -> None:
    async with store.lock("acme", mount=bao.mount), store.lock("other", mount=bao.mount, timeout=0):
        pass


async def test_waiter_gets_the_lock_when_the_holder_releases(store: VaultStore, bao: Bao) -> None:
    first = store.lock("acme", mount=bao.mount, holder="first", ttl=30)
    await first.acquire()
    second = store.lock("acme", mount=bao.mount, holder="second", timeout=20, poll_interval=0.05)
    waiter = asyncio.create_task(second.acquire())
    await asyncio.sleep(0.2)
    assert not waiter.done()

    await first.release()
    await asyncio.wait_for(waiter, 10)
    assert second.held
    await second.release()


async def test_simultaneous_contenders_exactly_one_wins(store: VaultStore, bao: Bao) -> None:
    locks = [store.lock("acme", mount=bao.mount, holder=f"h{i}", timeout=0) for i in range(6)]
    results = await asyncio.gather(*(lock.acquire() for lock in locks), return_exceptions=True)
    assert sum(result is None for result in results) == 1
    assert all(isinstance(r, LockTimeout) for r in results if r is not None)
    for lock in locks:
        await lock.release()


async def test_a_killed_holders_lock_expires_after_its_ttl(
    store: VaultStore, bao: Bao, root: hvac.Client
) -> None:
    # What a holder killed mid-run leaves behind: its record, never renewed again.
    expires = datetime.now(UTC) + timedelta(seconds=1)
    root.secrets.kv.v2.create_or_update_secret(
        ".ksefctl/locks/acme",
        {"holder": "dead-host:1", "owner": "acme", "expiresAt": expires.isoformat()},
        cas=0,
        mount_point=bao.mount,
    )
    with pytest.raises(LockTimeout, match="dead-host:1"):
        await store.lock("acme", mount=bao.mount, timeout=0).acquire()

    async with store.lock(
        "acme", mount=bao.mount, holder="survivor", timeout=15, poll_interval=0.1
    ):
        assert datetime.now(UTC) >= expires
        assert read_data(root, store.lock("acme", mount=bao.mount).ref)["holder"] == "survivor"


async def test_lease_is_renewed_while_held(store: VaultStore, bao: Bao) -> None:
    async with store.lock("acme", mount=bao.mount, holder="long-run", ttl=0.6) as lease:
        first_version, first_expiry = lease.version, lease.expires
        await eventually(lambda: lease.version >= first_version + 3)
        assert lease.expires is not None and first_expiry is not None
        assert lease.expires > first_expiry
        # Well past the original TTL, the lease still keeps others out.
        with pytest.raises(LockTimeout):
            await store.lock("acme", mount=bao.mount, timeout=0).acquire()
        lease.ensure_held()


async def test_a_taken_over_lease_is_reported_lost(
    store: VaultStore, bao: Bao, root: hvac.Client
) -> None:
    with pytest.raises(LockLost):
        async with store.lock("acme", mount=bao.mount, holder="slow", ttl=0.6) as lease:
            # Someone else writes the lock record (as after our lease had expired).
            root.secrets.kv.v2.create_or_update_secret(
                lease.ref.path,
                {"holder": "usurper", "expiresAt": datetime.now(UTC).isoformat()},
                mount_point=bao.mount,
            )
            await eventually(lambda: lease.lost)
            with pytest.raises(LockLost):
                lease.ensure_held()
    # Release did not overwrite the usurper's record.
    assert read_data(root, lease.ref)["holder"] == "usurper"


async def test_lock_after_its_versions_were_deleted_and_destroyed(
    store: VaultStore, bao: Bao, root: hvac.Client
) -> None:
    async with store.lock("acme", mount=bao.mount) as lease:
        pass
    kv = root.secrets.kv.v2
    kv.delete_latest_version_of_secret(lease.ref.path, mount_point=bao.mount)
    async with store.lock("acme", mount=bao.mount, timeout=0) as again:
        pass
    kv.destroy_secret_versions(lease.ref.path, [again.version], mount_point=bao.mount)
    async with store.lock("acme", mount=bao.mount, timeout=0):
        pass
    kv.delete_metadata_and_all_versions(lease.ref.path, mount_point=bao.mount)
    async with store.lock("acme", mount=bao.mount, timeout=0) as fresh:
        assert fresh.version == 1
