"""Ending a session with a refresh token, and XAdES refusals with the documented 400 codes
(open-api.json, POST /auth/xades-signature) or the documented 460 details."""

from __future__ import annotations

import datetime
from typing import Any

import httpx
import pytest

from ksefctl.ksef.xades_signing import build_auth_request, load_identity, sign_auth_request
from ksefctl.testcert import make_seal_certificate
from tests.simfixture import OWNER_NIP, SimHandle, poll_auth

XML = {"Content-Type": "application/xml"}


def _error_code(response: httpx.Response) -> int:
    code: int = response.json()["exception"]["exceptionDetailList"][0]["exceptionCode"]
    return code


def test_the_current_session_can_be_ended_with_its_refresh_token(sim: SimHandle) -> None:
    session = sim.owner_session()
    api = sim.client()
    refresh = {"Authorization": f"Bearer {session.refresh_token}"}
    assert api.delete("/auth/sessions/current", headers=refresh).status_code == 204
    assert api.post("/auth/token/refresh", headers=refresh).status_code == 400
    # The access token issued before lives until it expires, as documented.
    assert api.get("/tokens", headers=session.headers).status_code == 200
    # An authentication token is still no credential for it.
    assert (
        api.delete("/auth/sessions/current", headers={"Authorization": "Bearer x"}).status_code
        == 401
    )


def _signed(api: httpx.Client, **certificate: Any) -> bytes:
    challenge = api.post("/auth/challenge").json()["challenge"]
    seal = make_seal_certificate(OWNER_NIP, **certificate)
    return sign_auth_request(build_auth_request(challenge, "Nip", OWNER_NIP), load_identity(*seal))


def _unsigned(api: httpx.Client) -> bytes:
    return build_auth_request(api.post("/auth/challenge").json()["challenge"], "Nip", OWNER_NIP)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda api: b"<not-xml", 21001),
        (lambda api: b"\xff\xfe\x00garbage", 21001),
        (_unsigned, 9102),
        (lambda api: _signed(api).replace(OWNER_NIP.encode(), b"7762811692", 1), 9105),
        (
            lambda api: _signed(api).replace(
                b"</AuthTokenRequest>", b"<Extra/></AuthTokenRequest>", 1
            ),
            21401,
        ),
    ],
    ids=["not-xml", "not-text", "unsigned", "tampered", "schema"],
)
def test_a_broken_document_is_400_with_its_documented_code(
    sim: SimHandle, make: Any, code: int
) -> None:
    api = sim.client(invalid_requests=True)
    refused = api.post("/auth/xades-signature", content=make(api), headers=XML)
    assert refused.status_code == 400, refused.text
    assert _error_code(refused) == code


def test_a_doubly_signed_document_is_9103(sim: SimHandle) -> None:
    api = sim.client()
    once = _signed(api)
    seal = make_seal_certificate(OWNER_NIP)
    twice = sign_auth_request(once, load_identity(*seal))
    refused = api.post("/auth/xades-signature", content=twice, headers=XML)
    assert refused.status_code == 400
    assert _error_code(refused) == 9103


def test_an_expired_certificate_ends_460_with_the_documented_detail(sim: SimHandle) -> None:
    api = sim.client()
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    started = api.post(
        "/auth/xades-signature",
        content=_signed(api, valid_from=long_ago, valid_days=1),
        headers=XML,
    )
    assert started.status_code == 202, started.text
    headers = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
    status = poll_auth(api, started.json()["referenceNumber"], headers)
    assert status["code"] == 460
    assert status["details"] == ["Nieważny certyfikat"]
