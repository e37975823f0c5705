"""X-System-Warning (API 2.6): parsed, grouped by warning with its endpoints, bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ksefctl.ksef import ClientSettings, KsefClient
from ksefctl.ksef.warnings import MAX_DISTINCT, MAX_LENGTH, SystemWarnings, parse
from ksefctl.secret import Secret
from tests.contract import ContractChecker
from tests.ksef.conftest import NIP, mint, set_faults
from tests.support.sim import SimHandle


def test_documented_format_and_free_text() -> None:
    assert parse("[W001]: Pole X bedzie wymagane | [W002]: Stary format") == [
        ("W001", "Pole X bedzie wymagane"),
        ("W002", "Stary format"),
    ]
    assert parse("  something odd  ") == [(None, "something odd")]
    assert parse("   ") == []


def test_grouped_by_warning_with_every_endpoint_once() -> None:
    warnings = SystemWarnings()
    for endpoint in ("GET /tokens", "POST /tokens", "GET /tokens", "GET /tokens"):
        warnings.note(endpoint, "[W1]: soon refused")
    warnings.note("GET /rate-limits", "[W2]: other")
    first, _ = warnings.items()
    assert (first.code, first.message, first.count) == ("W1", "soon refused", 4)
    assert first.endpoints == ("GET /tokens", "POST /tokens")
    assert str(first) == "[W1] soon refused (GET /tokens, POST /tokens, 4 times)"
    assert warnings.to_json()[1] == {
        "code": "W2",
        "message": "other",
        "endpoints": ["GET /rate-limits"],
        "count": 1,
    }


@given(st.lists(st.text(), max_size=200))
def test_hostile_headers_stay_printable_short_and_few(headers: list[str]) -> None:
    warnings = SystemWarnings()
    for header in headers:
        warnings.note("GET /tokens", header)
    items = warnings.items()
    assert len(items) <= MAX_DISTINCT
    for item in items:
        assert item.message and len(item.message) <= MAX_LENGTH
        assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in str(item))


async def test_warnings_the_simulator_sends_are_collected_by_the_client(
    sim: SimHandle, contract: ContractChecker, secrets_seen: list[Secret]
) -> None:
    _, token = mint(sim)
    secrets_seen.append(token)
    set_faults(sim, system_warning="[W100]: Ten klient uzywa przestarzalego naglowka")
    async with KsefClient(sim.base_url, ClientSettings(event_hooks=contract.async_hooks())) as ksef:
        async with await ksef.login_with_token("Nip", NIP, token) as session:
            await session.list_tokens()
            await session.list_tokens()
        (warning,) = ksef.warnings.items()
    assert warning.code == "W100"
    assert warning.message == "Ten klient uzywa przestarzalego naglowka"
    assert "GET /tokens" in warning.endpoints and "POST /auth/challenge" in warning.endpoints
    assert all("{" in e or "/" in e for e in warning.endpoints)
    assert warning.count == ksef.stats.total_requests()
