"""The KSeF error tree, and the one place HTTP error bodies are mapped into it.

KSeF answers errors in two shapes: the legacy ``exception.exceptionDetailList``
body and RFC 7807 problem details (asked for with ``X-Error-Format``); a 429
may also come as ``{status: {code, description, details}}``.  All of them end
up as one :class:`KsefError` whose ``str`` is a single readable line.  Bodies
are never echoed verbatim (an HTML error page or a proxy's answer could carry
anything), and no message ever contains a token, key or JWT.
"""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from ksefctl.errors import KsefctlError


class KsefError(KsefctlError):
    """KSeF refused a request or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        codes: Sequence[int] = (),
        description: str = "",
        details: Sequence[str] = (),
        trace_id: str | None = None,
        retry_after: float | None = None,
        reason_code: str | None = None,
    ) -> None:
        super().__init__(_one_line(message))
        self.status = status
        self.codes = list(codes)
        self.description = description
        self.details = list(details)
        self.trace_id = trace_id
        self.retry_after = retry_after
        self.reason_code = reason_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class AuthenticationFailed(KsefError):
    """Login ended with a non-200 authentication status (415, 425, 450, 460, 470, 500)."""

    @property
    def auth_status(self) -> int:
        return self.codes[0] if self.codes else 0


class NotAuthenticated(KsefError):
    """KSeF refused the access, refresh or authentication token (HTTP 401)."""


class PermissionDenied(KsefError):
    """The session lacks a permission (403, or 26001 when granting more than one holds)."""


class NotFound(KsefError):
    """The token, authentication operation or resource does not exist (404, 410)."""


class RateLimited(KsefError):
    """KSeF answered 429 Too Many Requests; ``retry_after`` says how long to wait."""


class WaitTooLong(KsefError):
    """A rate limit would hold the request longer than ``--max-wait``; nothing was sent."""


class ValidationFailed(KsefError):
    """KSeF rejected the request as invalid (400: 21405 and friends)."""


class ServerError(KsefError):
    """KSeF failed with a 5xx; the request may or may not have been carried out."""


class TransportError(KsefError):
    """No usable HTTP answer: connection refused or dropped, timeout, TLS failure."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        # False when the request provably never reached KSeF (connect failed),
        # so even a non-idempotent call may be repeated.
        self.sent = sent


class UnexpectedResponse(KsefError):
    """KSeF answered something this client cannot read (bad JSON, HTML, missing fields)."""


class InsecureEndpoint(KsefError):
    """The base URL would send credentials in clear text to a remote host."""


class TokenStatusTimeout(KsefError):
    """A token did not reach the awaited status in time, or ended in another final one."""


class PermissionOperationFailed(KsefError):
    """A permission grant or revocation ended refused; ``codes[0]`` is KSeF's status code
    (400 failed, 410 identifiers in the wrong relation, 420 no right, 430 context role,
    440 relation not allowed, 450 identifier type not allowed, 500/550 KSeF failed)."""

    @property
    def operation_status(self) -> int:
        return self.codes[0] if self.codes else 0


class PermissionOperationTimeout(KsefError):
    """A permission operation was still in progress (status 100) at the caller's deadline."""


class EnrollmentFailed(KsefError):
    """A certificate enrolment ended refused; ``codes[0]`` is its status (400 refused, 500, 550)."""


class EnrollmentTimeout(KsefError):
    """A certificate enrolment was still in progress (status 100) at the caller's deadline."""


class CertificateQuotaExceeded(KsefError):
    """The subject may not enrol more: 25006 (enrolments) or 25007 (active certificates)."""


class AmbiguousTokenCreation(KsefError):
    """``POST /tokens`` may have created a token whose secret was lost on the way back.

    ``orphans`` lists the reference numbers of the tokens found by the
    caller's marker; they can never be used (nobody has their secret) and
    should be revoked.  An empty list after ``searched`` means a careful
    re-check found nothing: no token was created and generating again (with
    a fresh marker) is safe.
    """

    def __init__(self, message: str, *, orphans: Sequence[str], searched: bool) -> None:
        super().__init__(message)
        self.orphans = list(orphans)
        self.searched = searched


def _one_line(text: str) -> str:
    return " ".join(text.split())


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int | float)]
    if isinstance(value, str):
        return [value]
    return []


def _collect(
    items: Any,
    code_key: str,
    description_key: str,
    codes: list[int],
    descriptions: list[str],
    details: list[str],
) -> None:
    """Gather the error items of either format; they differ only in their key names."""
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        code = _int(item.get(code_key))
        if code is not None:
            codes.append(code)
        descriptions += _strings(item.get(description_key))
        details += _strings(item.get("details"))


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _traceparent_id(service_code: str) -> str:
    # The legacy ``serviceCode`` is a W3C traceparent (00-<trace id>-<span>-00).
    parts = service_code.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else service_code


def _parse_body(body: Any) -> tuple[list[int], str, list[str], str | None, str | None]:
    """(codes, description, details, trace id, reason code) from either error format."""
    if not isinstance(body, dict):
        return [], "", [], None, None
    codes: list[int] = []
    descriptions: list[str] = []
    details: list[str] = []
    exception = body.get("exception")
    if isinstance(exception, dict):
        _collect(
            exception.get("exceptionDetailList"),
            "exceptionCode",
            "exceptionDescription",
            codes,
            descriptions,
            details,
        )
        service_code = exception.get("serviceCode")
        trace = _traceparent_id(service_code) if isinstance(service_code, str) else None
        return codes, "; ".join(descriptions), details, trace, None
    status = body.get("status")
    if isinstance(status, dict):  # the legacy 429 body
        code = _int(status.get("code"))
        return (
            [code] if code is not None else [],
            "; ".join(_strings(status.get("description"))),
            _strings(status.get("details")),
            None,
            None,
        )
    # RFC 7807 problem details
    _collect(body.get("errors"), "code", "description", codes, descriptions, details)
    if not descriptions:
        descriptions = _strings(body.get("detail")) or _strings(body.get("title"))
    elif isinstance(body.get("detail"), str) and not details:
        details = [body["detail"]]
    trace = body.get("traceId")
    reason = body.get("reasonCode")
    return (
        codes,
        "; ".join(descriptions),
        details,
        trace if isinstance(trace, str) and trace else None,
        reason if isinstance(reason, str) and reason else None,
    )


def error_from_response(response: httpx.Response) -> KsefError:
    """The :class:`KsefError` for a non-2xx KSeF answer."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    if 300 <= status < 400:
        return UnexpectedResponse(
            f"KSeF {status}: redirect to {response.headers.get('location', '?')} not followed "
            "(check the base URL)",
            status=status,
        )
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if body is None and response.content:
        what = content_type or "a body"
        cls: type[KsefError] = ServerError if status >= 500 else UnexpectedResponse
        if status == 429:
            cls = RateLimited
        return cls(
            f"KSeF {status} {response.reason_phrase}: answered {what} instead of JSON",
            status=status,
            retry_after=retry_after,
        )
    codes, description, details, trace, reason = _parse_body(body)
    if not description:
        description = response.reason_phrase or "error"
    message = f"KSeF {status}"
    if codes:
        message += f" [{', '.join(str(c) for c in codes)}]"
    message += f" {description.rstrip('. ') if details else description}"
    if reason:
        message += f" ({reason})"
    if details:
        message += ": " + "; ".join(details)
    if trace:
        message += f" (trace {trace})"
    cls = _class_for(status, codes)
    return cls(
        message,
        status=status,
        codes=codes,
        description=description,
        details=details,
        trace_id=trace,
        retry_after=retry_after,
        reason_code=reason,
    )


def _class_for(status: int, codes: Sequence[int]) -> type[KsefError]:
    if status == 429:
        return RateLimited
    if status == 401:
        return NotAuthenticated
    if status == 403 or 26001 in codes:
        return PermissionDenied
    if 25006 in codes or 25007 in codes:
        return CertificateQuotaExceeded
    if 25005 in codes or 25008 in codes:
        return NotFound
    if status in (404, 410) or 21304 in codes:
        return NotFound
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return ValidationFailed
    return UnexpectedResponse
