"""A Vault sealed for a few seconds costs a wait, not the contexts (docs/reliability.md).

A dedicated OpenBao dev server is sealed while twenty reads are in flight and
unsealed a moment later: every read returns its secret.  A Vault that does
not answer at all (nothing listening) still fails within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ksefctl.openbao import DevServer, free_port, start_dev_server
from ksefctl.vault import VaultStore
from ksefctl.vault.errors import VaultUnavailable
from ksefctl.vocabulary import SecretRef


@pytest.fixture
def sealable(tmp_path: Path) -> Iterator[tuple[DevServer, str]]:
    log = tmp_path / "bao.log"
    server = start_dev_server(root_token=f"root-{secrets.token_hex(8)}", log_file=log)
    try:
        deadline = time.monotonic() + 10
        while not (found := re.search(r"Unseal Key: (\S+)", log.read_text())):
            assert time.monotonic() < deadline, "the dev server printed no unseal key"
            time.sleep(0.05)
        yield server, found.group(1)
    finally:
        server.stop()


def _sys(server: DevServer, method: str, path: str, body: object = None) -> httpx.Response:
    headers = {"X-Vault-Token": server.root_token}
    return httpx.request(method, f"{server.address}/v1/sys/{path}", json=body, headers=headers)


async def test_reads_ride_out_a_brief_seal(
    sealable: tuple[DevServer, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ksefctl.vault")
    server, unseal_key = sealable
    monkeypatch.setenv("VAULT_ADDR", server.address)
    monkeypatch.setenv("VAULT_TOKEN", server.root_token)
    refs = [SecretRef("secret", f"ksef/test/{i}/erp") for i in range(20)]
    for ref in refs:
        written = httpx.post(
            f"{server.address}/v1/secret/data/{ref.path}",
            json={"data": {"token": f"value-{ref.path}"}},
            headers={"X-Vault-Token": server.root_token},
        )
        assert written.status_code == 200, written.text
    assert _sys(server, "PUT", "seal").status_code == 204

    def unseal_after_the_reads_started() -> None:
        time.sleep(1.0)  # the outage being ridden out, not a wait for a condition
        assert _sys(server, "PUT", "unseal", {"key": unseal_key}).json()["sealed"] is False

    unsealer = threading.Thread(target=unseal_after_the_reads_started)
    async with VaultStore(concurrency=8) as store:
        unsealer.start()
        values = await asyncio.gather(*(store.read_credentials(ref) for ref in refs))
    unsealer.join()
    assert [v["token"].reveal() for v in values] == [f"value-{r.path}" for r in refs]
    assert "sealed" in caplog.text and "retrying in" in caplog.text  # the seal was met


async def test_a_vault_that_does_not_answer_is_not_waited_for(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("VAULT_TOKEN", "s.nothing")
    caplog.set_level(logging.INFO, logger="ksefctl.vault")
    async with VaultStore() as store:
        with pytest.raises(VaultUnavailable, match="cannot reach Vault"):
            await store.read_credentials(SecretRef("secret", "ksef/x"))
        # A handful of quick retries, not the half-minute patience kept for a sealed Vault.
        retries = caplog.text.count("retrying in")
        assert retries == store.client.quick_retry.max_attempts - 1, caplog.text
