"""The one ``sim`` fixture (tests/support/sim.py) with roomy limits, a contract checker on
every request, and a leak detector."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from ksefctl.ksef import ClientSettings, KsefClient
from ksefctl.secret import Secret
from ksefctl.sim.config import SimConfig
from ksefctl.sim.server import RunningSimulator
from tests.contract import ContractChecker
from tests.support.limits import FAST_RETRY, ROOMY
from tests.support.sim import SimHandle

__all__ = ["FAST_RETRY", "ROOMY"]

NIP = "5265877635"
OTHER_NIP = "7762811692"
ADMIN_PERMISSIONS = ["CredentialsManage", "CredentialsRead", "InvoiceRead", "InvoiceWrite"]


@pytest.fixture
def sim_config() -> SimConfig:
    # Generous limits for tests that are not about rate limits; the rate-limit test sets its own.
    return SimConfig.from_mapping(
        {
            "seed": 7,
            "rate_limits": {"other": list(ROOMY)},
            "faults": {
                "activation_delay_s": 0.05,
                "revocation_delay_s": 0.05,
                "permission_delay_s": 0.05,
                "enrollment_delay_s": 0.05,
            },
        }
    )


@pytest.fixture
def contract() -> Iterator[ContractChecker]:
    checker = ContractChecker.load()
    yield checker
    checker.assert_clean()


@pytest.fixture
def secrets_seen(caplog: pytest.LogCaptureFixture) -> Iterator[list[Secret]]:
    """Secrets a test handled; none may appear in anything logged at DEBUG."""
    caplog.set_level(logging.DEBUG)
    seen: list[Secret] = []
    yield seen
    text = caplog.text
    for secret in seen:
        assert secret.reveal() not in text, "a secret leaked into the log"


@pytest.fixture
async def client(
    sim: SimHandle, contract: ContractChecker, secrets_seen: list[Secret]
) -> AsyncIterator[KsefClient]:
    async with KsefClient(
        sim.base_url,
        ClientSettings(
            event_hooks=contract.async_hooks(), retry=FAST_RETRY, ambiguity_recheck_s=0.05
        ),
    ) as ksef:
        yield ksef


def admin(
    sim: SimHandle | RunningSimulator, path: str, body: Any = None, method: str = "POST"
) -> Any:
    """The simulator's own control API (outside the KSeF contract)."""
    response = httpx.request(method, f"{sim.admin_url}{path}", json=body, timeout=10)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def mint(
    sim: SimHandle,
    nip: str = NIP,
    permissions: list[str] | None = None,
    description: str = "minted for a test",
) -> tuple[str, Secret]:
    """An Active KSeF token made by the context's owner: (reference number, secret)."""
    made = admin(
        sim,
        "/tokens",
        {
            "context": {"type": "Nip", "value": nip},
            "permissions": permissions or ADMIN_PERMISSIONS,
            "description": description,
        },
    )
    return made["referenceNumber"], Secret(made["token"])


def set_faults(sim: SimHandle, **faults: Any) -> None:
    admin(sim, "/faults", faults, method="PUT")
