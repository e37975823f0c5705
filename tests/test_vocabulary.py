"""The shared words: one strict context parser, token statuses and their groups."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ksefctl.vocabulary import (
    FINAL,
    NOT_REVOKED,
    USABLE,
    ContextId,
    TokenStatus,
    is_valid_nip,
    nip_check_digit,
    parse_context,
)


def valid_nip(first_nine: str) -> str | None:
    digit = nip_check_digit(first_nine)
    return None if digit is None else first_nine + str(digit)


@given(st.from_regex(r"[0-9]{9}", fullmatch=True))
def test_every_context_parses_back_from_its_text(first_nine: str) -> None:
    nip = valid_nip(first_nine)
    if nip is None:
        return
    for context in (ContextId("Nip", nip), ContextId("InternalId", f"{nip}-00042")):
        assert parse_context(str(context)) == context


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Nip:5265877636", "check digit should be 5"),
        ("Nip:526587763", "10 digits"),
        ("Nip:", "10 digits"),
        ("InternalId:5265877635-1234", "{nip}-{5 digits}"),
        ("InternalId:5265877636-12345", "invalid NIP"),
        ("Pesel:5265877635", "expected Nip:"),
        ("5265877635", "expected Nip:"),
        ("nip:5265877635", "expected Nip:"),
        ("Nip:5265877635\n", "10 digits"),
    ],
)
def test_a_context_that_a_manifest_would_refuse_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="not a KSeF context") as error:
        parse_context(text)
    assert why in str(error.value)


@pytest.mark.parametrize("value", [None, 5265877635, ["Nip:5265877635"]])
def test_a_context_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="expected a string"):
        parse_context(value)


def test_a_long_bad_context_is_quoted_short() -> None:
    with pytest.raises(ValueError) as error:
        parse_context("Nip:" + "9" * 10_000)
    assert len(str(error.value)) < 200


def test_statuses_compare_with_ksef_text_and_groups_mean_what_they_say() -> None:
    listed: str = "Active"  # as KSeF's JSON gives it
    assert TokenStatus(listed) is TokenStatus.ACTIVE and listed == TokenStatus.ACTIVE
    assert set(NOT_REVOKED) == set(TokenStatus) - {TokenStatus.REVOKED}
    assert "Pending" in USABLE and "Revoking" not in USABLE and "Failed" not in USABLE
    assert set(FINAL) == {"Revoked", "Failed"}
    assert [str(s) for s in NOT_REVOKED] == ["Pending", "Active", "Revoking", "Failed"]


def test_nip_check_digit() -> None:
    assert is_valid_nip("5265877635") and not is_valid_nip("5265877636")
