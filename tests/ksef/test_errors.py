"""Both KSeF error formats, and whatever else a gateway may answer, become one readable line."""

from __future__ import annotations

import json
import ssl

import httpx
import pytest

from ksefctl.ksef.errors import (
    KsefError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    UnexpectedResponse,
    ValidationFailed,
    error_from_response,
    parse_retry_after,
)
from ksefctl.ksef.transport import TlsError, transport_failure


def response(status: int, body: object = None, **headers: str) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    if body is not None:
        headers.setdefault("content-type", "application/json")
    return httpx.Response(status, content=content, headers=headers)


def test_problem_details_400_is_validation_failed_with_code_details_and_trace() -> None:
    error = error_from_response(
        response(
            400,
            {
                "title": "Bad Request",
                "status": 400,
                "instance": "/v2/tokens",
                "detail": "Żądanie jest nieprawidłowe.",
                "errors": [
                    {
                        "code": 21405,
                        "description": "Błąd walidacji danych wejściowych.",
                        "details": ["description: za krótki"],
                    }
                ],
                "timestamp": "2025-07-11T12:23:56.0154302+00:00",
                "traceId": "1234",
            },
            **{"content-type": "application/problem+json"},
        )
    )
    assert isinstance(error, ValidationFailed)
    assert str(error) == (
        "KSeF 400 [21405] Błąd walidacji danych wejściowych: description: za krótki (trace 1234)"
    )
    assert (error.status, error.codes, error.trace_id) == (400, [21405], "1234")


def test_legacy_exception_body_is_parsed_with_every_code() -> None:
    error = error_from_response(
        response(
            400,
            {
                "exception": {
                    "exceptionDetailList": [
                        {"exceptionCode": 21470, "exceptionDescription": "Nieznany klucz."},
                        {"exceptionCode": 21405, "exceptionDescription": "Błąd.", "details": ["x"]},
                    ],
                    "serviceCode": "00-c02cc3747020c605be02159bf3324f0e-eee7647dc67aa74a-00",
                    "timestamp": "2025-10-11T12:23:56.0154302",
                }
            },
        )
    )
    assert isinstance(error, ValidationFailed)
    assert error.codes == [21470, 21405]
    assert error.trace_id == "c02cc3747020c605be02159bf3324f0e"
    assert str(error).startswith("KSeF 400 [21470, 21405] Nieznany klucz.; Błąd: x (trace c02cc")


def test_26001_is_permission_denied_even_as_a_400() -> None:
    body = {"exception": {"exceptionDetailList": [{"exceptionCode": 26001}]}}
    assert isinstance(error_from_response(response(400, body)), PermissionDenied)


def test_403_problem_details_carries_reason_code() -> None:
    error = error_from_response(
        response(
            403,
            {
                "title": "Forbidden",
                "status": 403,
                "detail": "Brak wymaganych uprawnień.",
                "reasonCode": "missing-permissions",
                "security": {"requiredAnyOfPermissions": ["CredentialsManage"]},
                "timestamp": "2025-07-11T12:23:56Z",
            },
        )
    )
    assert isinstance(error, PermissionDenied)
    assert error.reason_code == "missing-permissions"
    assert "missing-permissions" in str(error)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, NotAuthenticated), (404, NotFound), (410, NotFound), (503, ServerError)],
)
def test_status_classes(status: int, cls: type[KsefError]) -> None:
    error = error_from_response(response(status, {"title": "x", "status": status, "detail": "d"}))
    assert type(error) is cls


def test_legacy_429_body_and_retry_after() -> None:
    error = error_from_response(
        response(
            429,
            {"status": {"code": 429, "description": "Too Many Requests", "details": ["limit"]}},
            **{"retry-after": "7"},
        )
    )
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0
    assert str(error) == "KSeF 429 [429] Too Many Requests: limit"


def test_html_error_page_is_one_clear_line_without_the_page() -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>"
    error = error_from_response(
        httpx.Response(502, content=page, headers={"content-type": "text/html"})
    )
    assert isinstance(error, ServerError)
    assert str(error) == "KSeF 502 Bad Gateway: answered text/html instead of JSON"


def test_non_json_4xx_is_unexpected_and_redirects_are_refused() -> None:
    error = error_from_response(httpx.Response(400, content=b"{oops"))
    assert isinstance(error, UnexpectedResponse)
    redirect = error_from_response(httpx.Response(302, headers={"location": "https://evil/"}))
    assert isinstance(redirect, UnexpectedResponse)
    assert "not followed" in str(redirect)


def test_wrongly_typed_error_bodies_do_not_crash() -> None:
    for body in ([1, 2], "text", {"errors": "nope"}, {"exception": {"exceptionDetailList": [3]}}):
        error = error_from_response(response(400, body))
        assert isinstance(error, ValidationFailed)
        assert "\n" not in str(error)


def test_retry_after_in_seconds_or_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:05 GMT", now=now) == 5.0


def test_transport_failures_say_whether_the_request_may_have_reached_ksef() -> None:
    request = httpx.Request("POST", "https://ksef.example/v2/tokens")
    never = transport_failure(httpx.ConnectError("refused", request=request), "POST", "/tokens")
    assert never.sent is False and not isinstance(never, TlsError)
    for lost in (httpx.ReadTimeout("slow", request=request), httpx.RemoteProtocolError("gone")):
        assert transport_failure(lost, "POST", "/tokens").sent is True
    assert transport_failure(httpx.ConnectTimeout("slow"), "POST", "/tokens").sent is False


def test_tls_failures_are_recognised_by_type_not_by_wording() -> None:
    # The message says nothing about SSL: only the chained exception's type tells.
    wrapped = httpx.ConnectError("handshake went wrong")
    wrapped.__cause__ = ssl.SSLCertVerificationError("verify failed")
    failure = transport_failure(wrapped, "GET", "/security/public-key-certificates")
    assert isinstance(failure, TlsError) and failure.sent is False
    worded = transport_failure(httpx.ConnectError("SSL CERTIFICATE"), "GET", "/x")
    assert not isinstance(worded, TlsError)
