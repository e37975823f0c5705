"""KSeF's two error formats and the errors the simulator raises.

KSeF answers 400 and 429 in its legacy ``{exception: …}`` / ``{status: …}``
shape unless the request carries ``X-Error-Format: problem-details``; 401,
403 and 410 are always RFC 7807 problem details.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from ksefctl.sim.ids import iso

PROBLEM_JSON = "application/problem+json"
ERROR_FORMAT_HEADER = "x-error-format"

DESCRIPTIONS = {
    21001: "Nieczytelna treść.",
    21111: "Nieprawidłowe wyzwanie autoryzacyjne.",
    21115: "Nieprawidłowy certyfikat.",
    21117: "Nieprawidłowy identyfikator podmiotu dla wskazanego typu kontekstu.",
    21217: "Nieprawidłowe kodowanie znaków.",
    21301: "Brak autoryzacji.",
    21304: "Brak uwierzytelnienia.",
    21308: "Próba wykorzystania metod autoryzacyjnych osoby zmarłej.",
    21401: "Dokument nie jest zgodny ze schemą (xsd).",
    21405: "Błąd walidacji danych wejściowych.",
    21418: "Przekazany token kontynuacji ma nieprawidłowy format.",
    21470: "Przesłany identyfikator klucza jest nieznany lub wskazuje na wycofany klucz.",
    26001: "Nie można nadać tokenowi uprawnień których nie posiadasz.",
    26002: "Nie można wygenerować tokena dla obecnego typu kontekstu.",
    30001: "Podmiot lub uprawnienie już istnieje.",
    9101: "Nieprawidłowy dokument.",
    9102: "Brak podpisu.",
    9103: "Przekroczona liczba dozwolonych podpisów.",
    9105: "Nieprawidłowy podpis.",
}

FORBIDDEN_DETAILS = {
    "missing-permissions": "Brak wymaganych uprawnień do wykonania operacji w bieżącym kontekście.",
    "ip-not-allowed": "Żądanie pochodzi z adresu IP innego niż wskazany podczas uwierzytelnienia.",
    "insufficient-resource-access": "Brak dostępu do wskazanego zasobu.",
    "context-type-not-allowed": "Operacja nie jest dostępna dla uwierzytelnionego typu kontekstu.",
}


class ApiError(Exception):
    """An answer other than success; ``render`` turns it into status, headers and body."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status

    def render(self, path: str, problem_details: bool) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError


class BadRequest(ApiError):
    def __init__(self, code: int, *details: str) -> None:
        super().__init__(400)
        self.code = code
        self.details = list(details)

    def render(self, path: str, problem_details: bool) -> tuple[int, dict[str, str], bytes]:
        description = DESCRIPTIONS.get(self.code, "Błąd.")
        now = iso(time.time())
        if problem_details:
            body: dict[str, Any] = {
                "title": "Bad Request",
                "status": 400,
                "instance": path,
                "detail": "Żądanie jest nieprawidłowe.",
                "errors": [
                    {"code": self.code, "description": description, "details": self.details}
                ],
                "timestamp": now,
                "traceId": uuid.uuid4().hex,
            }
            return 400, {"content-type": PROBLEM_JSON}, _dump(body)
        body = {
            "exception": {
                "exceptionDetailList": [
                    {
                        "exceptionCode": self.code,
                        "exceptionDescription": description,
                        "details": self.details,
                    }
                ],
                "referenceNumber": str(uuid.uuid4()),
                "serviceCode": uuid.uuid4().hex,
                "serviceCtx": "srvKSEFSIM",
                "serviceName": "ksefctl-sim",
                "timestamp": now,
            }
        }
        return 400, {"content-type": "application/json"}, _dump(body)


class Unauthorized(ApiError):
    def __init__(self, detail: str = "Wymagane jest uwierzytelnienie.") -> None:
        super().__init__(401)
        self.detail = detail

    def render(self, path: str, problem_details: bool) -> tuple[int, dict[str, str], bytes]:
        body = {
            "title": "Unauthorized",
            "status": 401,
            "detail": self.detail,
            "instance": path,
            "traceId": uuid.uuid4().hex,
            "timestamp": iso(time.time()),
        }
        return 401, {"content-type": PROBLEM_JSON}, _dump(body)


class Forbidden(ApiError):
    def __init__(self, reason_code: str, security: dict[str, Any] | None = None) -> None:
        super().__init__(403)
        self.reason_code = reason_code
        self.security = security

    def render(self, path: str, problem_details: bool) -> tuple[int, dict[str, str], bytes]:
        body = {
            "title": "Forbidden",
            "status": 403,
            "detail": FORBIDDEN_DETAILS.get(self.reason_code, "Odmowa dostępu."),
            "instance": path,
            "reasonCode": self.reason_code,
            "security": self.security,
            "traceId": uuid.uuid4().hex,
            "timestamp": iso(time.time()),
        }
        return 403, {"content-type": PROBLEM_JSON}, _dump(body)


class Gone(ApiError):
    def __init__(self) -> None:
        super().__init__(410)

    def render(self, path: str, problem_details: bool) -> tuple[int, dict[str, str], bytes]:
        body = {
            "title": "Gone",
            "status": 410,
            "instance": path,
            "detail": "Operacja wygasła i nie jest już dostępna.",
            "timestamp": iso(time.time()),
            "traceId": uuid.uuid4().hex,
        }
        return 410, {"content-type": PROBLEM_JSON}, _dump(body)


class TooManyRequests(ApiError):
    def __init__(self, retry_after: int, detail: str) -> None:
        super().__init__(429)
        self.retry_after = retry_after
        self.detail = detail

    def render(self, path: str, problem_details: bool) -> tuple[int, dict[str, str], bytes]:
        headers = {"retry-after": str(self.retry_after)}
        if problem_details:
            body: dict[str, Any] = {
                "title": "Too Many Requests",
                "status": 429,
                "instance": path,
                "detail": self.detail,
                "timestamp": iso(time.time()),
                "traceId": uuid.uuid4().hex,
            }
            return 429, {**headers, "content-type": PROBLEM_JSON}, _dump(body)
        body = {
            "status": {"code": 429, "description": "Too Many Requests", "details": [self.detail]}
        }
        return 429, {**headers, "content-type": "application/json"}, _dump(body)


class InternalError(ApiError):
    """An injected server failure: KSeF documents no body for it, so it mimics a gateway page."""

    def __init__(self) -> None:
        super().__init__(500)

    def render(self, path: str, problem_details: bool) -> tuple[int, dict[str, str], bytes]:
        body = {"title": "Internal Server Error", "status": 500, "instance": path}
        return 500, {"content-type": PROBLEM_JSON}, _dump(body)


def _dump(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
