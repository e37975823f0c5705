from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ksefctl.manifest.marker import (
    MAX_DESCRIPTION,
    MIN_DESCRIPTION,
    decode,
    encode,
    max_user_description,
    new_nonce,
    owner_query,
    render,
    user_text,
)
from ksefctl.manifest.model import Marker

owners = st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")
tokens = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,62}\Z")
nonces = st.from_regex(r"\A[a-z2-7]{10}\Z")
markers = st.builds(Marker, owner=owners, token=tokens, nonce=nonces)


@st.composite
def fitting(draw: st.DrawFn) -> tuple[str, Marker]:
    marker = draw(markers)
    limit = max_user_description(marker.owner, marker.token)
    text = draw(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=limit))
    return text, marker


@given(fitting())
def test_round_trip(case: tuple[str, Marker]) -> None:
    text, marker = case
    description = encode(text, marker)
    assert MIN_DESCRIPTION <= len(description) <= MAX_DESCRIPTION
    assert decode(description) == marker
    assert user_text(description).strip() == text.strip()
    assert description.startswith(text.strip())  # the user's words come first
    assert owner_query(marker.owner).lower() in description.lower()


@given(markers, markers)
def test_owner_query_matches_no_other_owner(a: Marker, b: Marker) -> None:
    if a.owner != b.owner:
        assert owner_query(a.owner) not in encode("", b)


@given(fitting())
def test_truncated_descriptions_are_not_markers(case: tuple[str, Marker]) -> None:
    text, marker = case
    description = encode(text, marker)
    for cut in range(1, len(render(marker))):
        assert decode(description[:-cut]) is None


NEAR_MISSES = [
    "[ksefctl owner=acme token=erp id=abcdefghij]x",  # not at the end
    "[ksefctl owner=acme token=erp id=abcdefghi]",  # nonce too short
    "[ksefctl owner=acme token=erp id=abcdefghijk]",  # nonce too long
    "[ksefctl owner=acme token=erp id=abcdefgh01]",  # 0 and 1 are not base32
    "[KSEFCTL owner=acme token=erp id=abcdefghij]",
    "[ksefctl owner=Acme token=erp id=abcdefghij]",
    "[ksefctl owner=acme token=erp]",
    "[ksefctl token=erp owner=acme id=abcdefghij]",
    "[ksefctl  owner=acme token=erp id=abcdefghij]",
    "[ksefctl owner=-acme token=erp id=abcdefghij]",
    "[ksefctl owner=acme token=../erp id=abcdefghij]",
    "BI[ksefctl owner=acme token=erp id=abcdefghij]",  # glued to the text
    "BI\n[ksefctl owner=acme token=erp id=abcdefghij]",
    "ksefctl owner=acme token=erp id=abcdefghij",
    "Token for ERP made by hand",
    "",
]


@pytest.mark.parametrize("description", NEAR_MISSES)
def test_near_misses_are_not_markers(description: str) -> None:
    assert decode(description) is None


def test_example_format() -> None:
    marker = Marker("acme-group", "erp", "k7f3m2q4xa")
    assert (
        encode("BI read-only", marker)
        == "BI read-only [ksefctl owner=acme-group token=erp id=k7f3m2q4xa]"
    )
    assert encode("  ", marker) == "[ksefctl owner=acme-group token=erp id=k7f3m2q4xa]"
    # a marker-looking text typed by a user is not what decode returns
    spoof = encode("[ksefctl owner=evil token=x id=aaaaaaaaaa]", marker)
    assert decode(spoof) == marker


def test_longest_names_still_leave_room() -> None:
    assert max_user_description("a" * 63, "b" * 63) > 60
    with pytest.raises(ValueError):
        encode("x" * (max_user_description("acme", "erp") + 1), Marker("acme", "erp", new_nonce()))


def test_encode_refuses_what_decode_would_not_read() -> None:
    with pytest.raises(ValueError):
        encode("x", Marker("Acme", "erp", new_nonce()))


def test_nonces_are_fresh_and_well_formed() -> None:
    seen = {new_nonce() for _ in range(2000)}
    assert len(seen) == 2000
    assert all(re.fullmatch(r"[a-z2-7]{10}", n) for n in seen)
