"""Rate limits (429 + Retry-After, per context, adjustable) and KSeF's two error formats."""

from __future__ import annotations

from tests.simfixture import OTHER_NIP, SimHandle


def test_a_burst_over_the_per_second_limit_gets_429_with_retry_after(sim: SimHandle) -> None:
    owner = sim.owner_session()
    api = sim.client()
    statuses = [api.get("/tokens", headers=owner.headers).status_code for _ in range(12)]
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429, 429]
    refused = api.get("/tokens", headers=owner.headers)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["status"]["code"] == 429
    assert sim.stats()["throttled"] == 3
    # Limits are per context: another company is not slowed down by this one.
    other = sim.owner_session(OTHER_NIP)
    assert api.get("/tokens", headers=other.headers).status_code == 200


def test_limits_can_be_read_and_changed_per_context(sim: SimHandle) -> None:
    api = sim.client()
    owner = sim.owner_session()
    limits = api.get("/rate-limits", headers=owner.headers).json()
    assert limits["other"] == {"perSecond": 10, "perMinute": 30, "perHour": 120}
    limits["other"] = {"perSecond": 100, "perMinute": 4, "perHour": 1000}
    assert (
        api.post(
            "/testdata/rate-limits", headers=owner.headers, json={"rateLimits": limits}
        ).status_code
        == 200
    )
    assert api.get("/rate-limits", headers=owner.headers).json()["other"]["perMinute"] == 4
    assert api.delete("/testdata/rate-limits", headers=owner.headers).status_code == 200
    assert api.get("/rate-limits", headers=owner.headers).json()["other"]["perMinute"] == 30

    other = sim.owner_session(OTHER_NIP)
    limits["other"] = {"perSecond": 100, "perMinute": 3, "perHour": 1000}
    api.post("/testdata/rate-limits", headers=other.headers, json={"rateLimits": limits})
    statuses = [api.get("/tokens", headers=other.headers).status_code for _ in range(4)]
    # The POST counted against its own endpoint, not against GET /tokens.
    assert statuses == [200, 200, 200, 429]


def test_legacy_error_format_by_default_and_problem_details_on_request(sim: SimHandle) -> None:
    owner = sim.owner_session()
    body = {"permissions": ["NoSuchPermission"], "description": "x"}
    legacy = sim.client(invalid_requests=True).post("/tokens", headers=owner.headers, json=body)
    assert legacy.status_code == 400
    assert legacy.headers["content-type"] == "application/json"
    assert legacy.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] == 21405

    problem = sim.client({"X-Error-Format": "problem-details"}, invalid_requests=True)
    modern = problem.post("/tokens", headers=owner.headers, json=body)
    assert modern.status_code == 400
    assert modern.headers["content-type"] == "application/problem+json"
    assert modern.json()["errors"][0]["code"] == 21405
    assert modern.json()["instance"] == "/v2/tokens"

    for _ in range(10):
        problem.get("/tokens", headers=owner.headers)
    throttled = problem.get("/tokens", headers=owner.headers)
    assert throttled.status_code == 429
    assert throttled.json()["title"] == "Too Many Requests"


def test_unauthenticated_requests_are_problem_details_in_either_format(sim: SimHandle) -> None:
    response = sim.client().get("/tokens", headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401
