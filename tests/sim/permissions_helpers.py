"""Small steps the permission stories share: grant, wait for the operation, list."""

from __future__ import annotations

from typing import Any

import httpx

from tests.simfixture import Session

PESEL = "15062788702"
OTHER_PESEL = "22271569167"
PERSON_DETAILS = {
    "subjectDetailsType": "PersonByIdentifier",
    "personById": {"firstName": "Anna", "lastName": "Testowa"},
}


def person_grant(
    subject: tuple[str, str], permissions: list[str], description: str = "grant for a test"
) -> dict[str, Any]:
    return {
        "subjectIdentifier": {"type": subject[0], "value": subject[1]},
        "permissions": permissions,
        "description": description,
        "subjectDetails": PERSON_DETAILS,
    }


def wait_operation(api: httpx.Client, session: Session, reference: str) -> dict[str, Any]:
    """GET /permissions/operations/{ref} until it leaves 100 (in progress)."""
    for _ in range(2000):
        response = api.get(f"/permissions/operations/{reference}", headers=session.headers)
        assert response.status_code == 200, response.text
        status: dict[str, Any] = response.json()["status"]
        if status["code"] != 100:
            return status
    raise AssertionError(f"permission operation {reference} still in progress")


def operate(
    api: httpx.Client, session: Session, method: str, path: str, body: Any = None
) -> dict[str, Any]:
    """Start a grant or revocation and return its final status."""
    response = api.request(method, path, headers=session.headers, json=body)
    assert response.status_code == 202, response.text
    return wait_operation(api, session, response.json()["referenceNumber"])


def grant_persons(
    api: httpx.Client, session: Session, subject: tuple[str, str], permissions: list[str]
) -> dict[str, Any]:
    return operate(
        api, session, "POST", "/permissions/persons/grants", person_grant(subject, permissions)
    )


def persons(
    api: httpx.Client,
    session: Session,
    query_type: str = "PermissionsInCurrentContext",
    **filters: Any,
) -> list[dict[str, Any]]:
    """Every page of POST /permissions/query/persons/grants."""
    found: list[dict[str, Any]] = []
    for page in range(100):
        response = api.post(
            "/permissions/query/persons/grants",
            headers=session.headers,
            params={"pageOffset": page, "pageSize": 100},
            json={"queryType": query_type, **filters},
        )
        assert response.status_code == 200, response.text
        found += response.json()["permissions"]
        if not response.json()["hasMore"]:
            return found
    raise AssertionError("too many pages")


def code_of(response: httpx.Response) -> int:
    body = response.json()
    if "exception" in body:
        return int(body["exception"]["exceptionDetailList"][0]["exceptionCode"])
    return int(body["errors"][0]["code"])
