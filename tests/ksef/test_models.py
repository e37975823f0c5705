"""Strict parsing of KSeF answers: wrong shapes are clear errors, dates are always aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ksefctl.ksef.errors import UnexpectedResponse
from ksefctl.ksef.models import TokenInfo, parse_datetime

ITEM = {
    "referenceNumber": "20251010-EC-1DCE3E3000-12ECB5B36E-45",
    "authorIdentifier": {"type": "Nip", "value": "5265877635"},
    "contextIdentifier": {"type": "Nip", "value": "5265877635"},
    "description": "erp [ksefctl owner=acme]",
    "requestedPermissions": ["InvoiceRead", "InvoiceWrite"],
    "dateCreated": "2025-10-10T08:15:30.1234567+02:00",
    "status": "Active",
}


def test_token_info_parses_the_documented_item() -> None:
    info = TokenInfo.parse(ITEM, "GET /tokens")
    assert info.permissions == frozenset({"InvoiceRead", "InvoiceWrite"})
    assert info.created == datetime(2025, 10, 10, 6, 15, 30, 123456, tzinfo=UTC)
    assert info.last_used is None
    assert info.status_details == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": None}, "lacks 'status'"),
        ({"requestedPermissions": "InvoiceRead"}, "'requestedPermissions' is a string"),
        ({"dateCreated": "yesterday"}, "'dateCreated' is a string, expected an ISO 8601"),
        ({"contextIdentifier": []}, "contextIdentifier with a list"),
    ],
)
def test_malformed_items_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(UnexpectedResponse, match=message):
        TokenInfo.parse({**ITEM, **change}, "GET /tokens")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-10-11T12:23:56Z", datetime(2025, 10, 11, 12, 23, 56, tzinfo=UTC)),
        ("2025-10-11T12:23:56.0154302", datetime(2025, 10, 11, 12, 23, 56, 15430, tzinfo=UTC)),
        (
            "2025-10-11T14:23:56.5+02:00",
            datetime(2025, 10, 11, 14, 23, 56, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_parse_datetime_forms(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


OFFSETS = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)


@given(st.datetimes(timezones=OFFSETS))
def test_parse_datetime_round_trips_isoformat(moment: datetime) -> None:
    parsed = parse_datetime(moment.isoformat())
    assert parsed.tzinfo is not None
    assert parsed == moment
