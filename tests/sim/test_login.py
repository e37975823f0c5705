"""Logging in with a KSeF token: challenge, encrypted token, status, redeem, refresh, sessions."""

from __future__ import annotations

from tests.simfixture import OWNER_NIP, SimHandle, poll_auth


def _auth_headers(started: dict[str, object]) -> dict[str, str]:
    token = started["authenticationToken"]
    assert isinstance(token, dict)
    return {"Authorization": f"Bearer {token['token']}"}


def test_token_login_end_to_end_gives_working_access_and_refresh_tokens(sim: SimHandle) -> None:
    minted = sim.mint_token(permissions=["CredentialsManage"])
    api = sim.client()

    started = sim.start_token_login(minted.token, client=api)
    assert started.status_code == 202
    reference = started.json()["referenceNumber"]
    headers = _auth_headers(started.json())
    assert poll_auth(api, reference, headers)["code"] == 200
    tokens = api.post("/auth/token/redeem", headers=headers).json()

    access = {"Authorization": f"Bearer {tokens['accessToken']['token']}"}
    listed = api.get("/tokens", headers=access).json()["tokens"]
    assert [t["referenceNumber"] for t in listed] == [minted.reference_number]
    assert "lastUseDate" in listed[0]  # the login counts as a use

    refreshed = api.post(
        "/auth/token/refresh",
        headers={"Authorization": f"Bearer {tokens['refreshToken']['token']}"},
    )
    assert refreshed.status_code == 200
    again = {"Authorization": f"Bearer {refreshed.json()['accessToken']['token']}"}
    assert api.get("/tokens", headers=again).status_code == 200


def test_status_is_100_while_authentication_is_in_progress(sim: SimHandle) -> None:
    sim.set_faults(auth_delay_s=60)
    minted = sim.mint_token()
    api = sim.client()
    started = sim.start_token_login(minted.token, client=api).json()
    headers = _auth_headers(started)
    status = api.get(f"/auth/{started['referenceNumber']}", headers=headers).json()["status"]
    assert status["code"] == 100
    early = api.post("/auth/token/redeem", headers=headers)
    assert early.status_code == 400
    assert early.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] == 21301
    sim.advance_clock(61)
    assert poll_auth(api, started["referenceNumber"], headers)["code"] == 200


def test_a_challenge_is_single_use(sim: SimHandle) -> None:
    minted = sim.mint_token()
    api = sim.client()
    challenge = api.post("/auth/challenge").json()
    assert sim.start_token_login(minted.token, client=api, challenge=challenge).status_code == 202
    reused = sim.start_token_login(minted.token, client=api, challenge=challenge)
    assert reused.status_code == 400
    assert reused.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] == 21111


def test_a_challenge_expires_after_ten_minutes(sim: SimHandle) -> None:
    minted = sim.mint_token()
    api = sim.client()
    challenge = api.post("/auth/challenge").json()
    sim.advance_clock(601)
    expired = sim.start_token_login(minted.token, client=api, challenge=challenge)
    assert expired.status_code == 400
    assert expired.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] == 21111


def test_a_wrong_timestamp_fails_with_450(sim: SimHandle) -> None:
    minted = sim.mint_token()
    api = sim.client()
    challenge = api.post("/auth/challenge").json()
    started = sim.start_token_login(
        minted.token, client=api, challenge=challenge, timestamp_ms=challenge["timestampMs"] - 1
    )
    assert started.status_code == 202
    status = poll_auth(api, started.json()["referenceNumber"], _auth_headers(started.json()))
    assert status["code"] == 450
    assert status["details"] == ["Nieprawidłowy czas tokena"]


def test_unknown_public_key_id_is_21470(sim: SimHandle) -> None:
    api = sim.client()
    challenge = api.post("/auth/challenge").json()
    response = api.post(
        "/auth/ksef-token",
        json={
            "challenge": challenge["challenge"],
            "contextIdentifier": {"type": "Nip", "value": OWNER_NIP},
            "encryptedToken": "AAAA",
            "publicKeyId": "A" * 43 + "=",
        },
    )
    assert response.status_code == 400
    assert response.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] == 21470


def test_revoked_pending_and_foreign_tokens_cannot_log_in(sim: SimHandle) -> None:
    owner = sim.owner_session()
    api = sim.client()
    revoked = sim.mint_token()
    assert (
        api.delete(f"/tokens/{revoked.reference_number}", headers=owner.headers).status_code == 204
    )
    sim.set_faults(activation_delay_s=3600)
    still_pending = sim.mint_token(active=False)
    other_context = sim.mint_token(nip="7762811692")
    cases = [
        (revoked.token, "Token unieważniony"),
        (still_pending.token, "Token nieaktywny"),
        (other_context.token, "Nieprawidłowy token"),
        (revoked.token[:-4] + "0000", "Nieprawidłowy token"),
    ]
    for token, detail in cases:
        started = sim.start_token_login(token, client=api)
        status = poll_auth(api, started.json()["referenceNumber"], _auth_headers(started.json()))
        assert (status["code"], status["details"]) == (450, [detail])


def test_redeem_works_once(sim: SimHandle) -> None:
    minted = sim.mint_token()
    api = sim.client()
    started = sim.start_token_login(minted.token, client=api).json()
    headers = _auth_headers(started)
    poll_auth(api, started["referenceNumber"], headers)
    assert api.post("/auth/token/redeem", headers=headers).status_code == 200
    second = api.post("/auth/token/redeem", headers=headers)
    assert second.status_code == 400
    detail = second.json()["exception"]["exceptionDetailList"][0]
    assert detail["exceptionCode"] == 21301
    assert "już pobrane" in detail["details"][0]


def test_missing_expired_or_wrong_kind_of_bearer_is_401(sim: SimHandle) -> None:
    api = sim.client()
    session = sim.owner_session()
    assert api.get("/tokens").status_code == 401
    refresh_as_access = {"Authorization": f"Bearer {session.refresh_token}"}
    assert api.get("/tokens", headers=refresh_as_access).status_code == 401
    sim.advance_clock(16 * 60)
    expired = api.get("/tokens", headers=session.headers)
    assert expired.status_code == 401
    assert expired.headers["content-type"] == "application/problem+json"
    # The refresh token outlives the access token and mints a fresh one.
    fresh = api.post("/auth/token/refresh", headers=refresh_as_access)
    assert fresh.status_code == 200


def test_sessions_can_be_listed_and_ended(sim: SimHandle) -> None:
    api = sim.client()
    first = sim.login_with_token(sim.mint_token().token)
    second = sim.login_with_token(sim.mint_token().token)
    items = api.get("/auth/sessions", headers=second.headers).json()["items"]
    assert [i["referenceNumber"] for i in items] == [
        second.reference_number,
        first.reference_number,
    ]
    assert [i["isCurrent"] for i in items] == [True, False]

    assert (
        api.delete(f"/auth/sessions/{first.reference_number}", headers=second.headers).status_code
        == 204
    )
    assert api.delete("/auth/sessions/current", headers=second.headers).status_code == 204
    for ended in (first, second):
        refused = api.post(
            "/auth/token/refresh", headers={"Authorization": f"Bearer {ended.refresh_token}"}
        )
        assert refused.status_code == 400
    # Access tokens already issued stay valid until they expire, as in KSeF.
    assert api.get("/tokens", headers=second.headers).status_code == 200


def test_the_contract_checker_sees_every_exchange(sim: SimHandle) -> None:
    from tests.contract import ContractChecker

    ContractChecker.load()  # skips with the reason when ../shared/ksef/open-api.json is absent
    assert sim.checker is not None
    sim.login_with_token(sim.mint_token().token)
    # keys, challenge, ksef-token, status, redeem: each request and response checked
    assert sim.checker.checked >= 10
    assert sim.checker.violations == []
