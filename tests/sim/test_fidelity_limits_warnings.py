"""Per-endpoint rate-limit counters with the contract's values (limity_limity-api.md,
open-api.json x-rate-limits), and API 2.6's X-System-Warning header."""

from __future__ import annotations

from pathlib import Path

import pytest

from ksefctl.sim.app import build_app
from ksefctl.sim.config import SimConfig
from ksefctl.sim.service import Simulator
from ksefctl.sim.web import RATE_GROUPS
from tests.contract import OPENAPI, ContractChecker
from tests.simfixture import SimHandle


def test_every_served_endpoint_has_the_contracts_limits(tmp_path: Path) -> None:
    spec = ContractChecker.load().spec
    sim = Simulator(SimConfig())
    try:
        build_app(sim)
    finally:
        sim.close()
    served = {name: group for name, group in RATE_GROUPS.items()}
    assert len(served) >= 20
    for name, group in served.items():
        method, path = name.split(" ", 1)
        operation = spec["paths"][path.removeprefix("/v2")][method.lower()]
        documented = operation["x-rate-limits"]
        expected = (
            documented.get("perSecond", 0),
            documented.get("perMinute", 0),
            documented.get("perHour", 0),
        )
        assert sim.limits_for(group, None) == expected, (name, OPENAPI)


def test_each_endpoint_counts_on_its_own(sim: SimHandle) -> None:
    sim.set_limits(limits={"other": [1000, 3, 1000]})
    api = sim.client()
    owner = sim.owner_session()
    listed = [api.get("/tokens", headers=owner.headers).status_code for _ in range(4)]
    assert listed == [200, 200, 200, 429]
    # Same group, same context and IP, other endpoints: untouched counters.
    assert api.get("/rate-limits", headers=owner.headers).status_code == 200
    created = api.post(
        "/tokens",
        headers=owner.headers,
        json={"permissions": ["InvoiceRead"], "description": "x" * 5},
    )
    assert created.status_code == 202
    reference = created.json()["referenceNumber"]
    assert api.get(f"/tokens/{reference}", headers=owner.headers).status_code == 200
    refused = api.get("/tokens", headers=owner.headers)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1


def test_public_endpoints_count_on_their_own_per_ip(sim: SimHandle) -> None:
    sim.set_limits(authPerSecond=2)
    api = sim.client()
    statuses = []
    for _ in range(50):  # until the per-second limit of POST /auth/challenge bites
        statuses.append(api.post("/auth/challenge").status_code)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429
    assert api.get("/security/public-key-certificates").status_code == 200


@pytest.mark.parametrize(
    ("forced", "sent"),
    [
        ("[W001]: Nagłówek przestarzały", "[W001]: Naglowek przestarzaly"),
        ("[A]: one | [B]: two", "[A]: one | [B]: two"),
    ],
)
def test_a_test_system_warning_is_echoed_ascii_folded(
    sim: SimHandle, forced: str, sent: str
) -> None:
    api = sim.client()
    answered = api.post("/auth/challenge", headers={b"X-Test-System-Warning": forced.encode()})
    assert answered.status_code == 200
    assert answered.headers["X-System-Warning"] == sent
    assert "X-System-Warning" not in api.post("/auth/challenge").headers


def test_a_configured_system_warning_rides_on_every_answer_errors_included(
    sim: SimHandle,
) -> None:
    sim.set_faults(system_warning="[SIM-1]: planned maintenance")
    api = sim.client()
    owner = sim.owner_session()
    assert api.get("/tokens", headers=owner.headers).headers["X-System-Warning"] == (
        "[SIM-1]: planned maintenance"
    )
    unauthorised = api.get("/tokens")
    assert unauthorised.status_code == 401
    assert unauthorised.headers["X-System-Warning"] == "[SIM-1]: planned maintenance"
    both = api.get("/tokens", headers={**owner.headers, "X-Test-System-Warning": "[T]: forced"})
    assert both.headers["X-System-Warning"] == "[SIM-1]: planned maintenance | [T]: forced"
