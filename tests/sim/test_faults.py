"""Fault injection: dropped connections, drop after commit, injected 5xx, storms, Failed activations."""

from __future__ import annotations

import httpx
import pytest

from ksefctl.sim.config import Faults, SimConfig
from tests.simfixture import SimHandle, start_sim


def test_drop_after_commit_creates_the_token_but_never_answers(sim: SimHandle) -> None:
    sim.set_limits(enabled=False)
    owner = sim.owner_session()
    sim.set_faults(drop_after_commit=1)
    api = sim.client()
    with pytest.raises(httpx.RemoteProtocolError):
        api.post(
            "/tokens",
            headers=owner.headers,
            json={"permissions": ["InvoiceRead"], "description": "lost reply"},
        )
    # The client never saw the reference number, but the token exists and can be found.
    found = api.get("/tokens", params={"description": "lost reply"}, headers=owner.headers).json()[
        "tokens"
    ]
    assert len(found) == 1
    assert sim.stats()["injected"]["dropsAfterCommit"] == 1
    # Only the next N requests were affected.
    again = api.post(
        "/tokens",
        headers=owner.headers,
        json={"permissions": ["InvoiceRead"], "description": "answered"},
    )
    assert again.status_code == 202


def test_dropped_connections_and_server_errors(sim: SimHandle) -> None:
    sim.set_faults(drop_rate=1.0, path_prefix="/v2/auth/challenge")
    api = sim.client(injected_faults=True)
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/auth/challenge")
    sim.set_faults(drop_rate=0.0, error_rate=1.0)
    assert api.post("/auth/challenge").status_code == 500
    assert api.get("/security/public-key-certificates").status_code == 200  # outside the prefix
    stats = sim.stats()["injected"]
    assert stats == {"drops": 1, "errors": 1}


def test_a_429_storm_sends_retry_after(sim: SimHandle) -> None:
    sim.set_faults(storm_rate=1.0, storm_retry_after=7)
    response = sim.client().get("/security/public-key-certificates")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_share_of_failed_activations_is_reproducible(sim: SimHandle) -> None:
    sim.set_limits(enabled=False)
    sim.set_faults(failed_activation_rate=0.5, activation_delay_s=0)
    owner = sim.owner_session()
    api = sim.client()
    for i in range(20):
        api.post(
            "/tokens",
            headers=owner.headers,
            json={"permissions": ["InvoiceRead"], "description": f"token {i}"},
        )
    tokens = api.get("/tokens", params={"pageSize": 20}, headers=owner.headers).json()["tokens"]
    statuses = [t["status"] for t in tokens]
    assert set(statuses) == {"Active", "Failed"}
    failed = [t for t in tokens if t["status"] == "Failed"]
    assert all(t["statusDetails"] for t in failed)
    assert 3 <= statuses.count("Failed") <= 17


def test_latency_from_config_delays_answers() -> None:
    handle = start_sim(SimConfig(faults=Faults(latency_ms=30)))
    try:
        assert handle.set_faults()["latency_ms"] == 30
        response = handle.client().post("/auth/challenge")
        assert response.status_code == 200
        assert response.elapsed.total_seconds() >= 0.03
    finally:
        handle.close()
