"""Stories of the KSeF session cache: repeat runs resume instead of logging in.

A run leaves each context's session open and its refresh token in Vault at
``<mount>/.ksefctl/sessions/<owner>/<environment>/<Type-value>``; the next run
resumes it with one refresh.  Whatever KSeF refuses falls back to a full
login; ``--no-session-cache`` neither reads nor writes the cache and ends its
sessions; break-glass ``revoke`` ends and forgets the cached ones.
"""

from __future__ import annotations

from typing import Any

import hvac.exceptions
import pytest

from tests.e2e.conftest import NIPS, World

ONE_TOKEN_EACH = """\
defaults:
  tokens:
    - name: erp
      permissions: [InvoiceRead]
contexts:
  - nip: "5265877635"
  - nip: "7762811692"
"""
CONTEXTS = NIPS[:2]
LOGIN = ("POST /v2/auth/challenge", "POST /v2/auth/xades-signature", "POST /v2/auth/token/redeem")
REFRESH = "POST /v2/auth/token/refresh"
END_CURRENT = "DELETE /v2/auth/sessions/current"


def cached(world: World, nip: str) -> dict[str, Any] | None:
    try:
        response = world.vault.secrets.kv.v2.read_secret_version(
            path=f".ksefctl/sessions/acme/sim/Nip-{nip}",
            mount_point=world.bao.mount,
            raise_on_deleted_version=True,
        )
    except hvac.exceptions.InvalidPath:
        return None
    return dict(response["data"]["data"])


def requests(world: World) -> dict[str, int]:
    return dict(world.sim.stats()["requests"])


def plan(world: World, *extra: str) -> dict[str, int]:
    """A no-op plan from fresh counters; the requests it sent."""
    world.sim.admin("POST", "/stats/reset")
    result = world.ksefctl("plan", "-f", str(world.directory / "tokens.yaml"), *extra)
    assert result.code == 0, result
    assert "No changes" in result.out, result
    return requests(world)


def assert_never_printed(world: World, refresh_tokens: list[str]) -> None:
    printed = "".join(world.outputs)
    for token in refresh_tokens:
        assert token not in printed
    assert "eyJ" not in printed  # no JWT of any kind


@pytest.fixture
def applied(world: World) -> World:
    manifest = world.manifest(ONE_TOKEN_EACH)
    result = world.ksefctl("apply", "-f", str(manifest), "--auto-approve")
    assert result.code == 0, result
    return world


def test_a_repeat_plan_resumes_each_context_with_two_requests(applied: World) -> None:
    world = applied
    # The apply logged in fully, left its sessions open and cached them.
    first = {nip: cached(world, nip) for nip in CONTEXTS}
    for nip, record in first.items():
        assert record is not None, nip
        assert record["baseUrl"] == world.sim.base_url
    metadata = world.vault.secrets.kv.v2.read_secret_metadata(
        path=f".ksefctl/sessions/acme/sim/Nip-{CONTEXTS[0]}", mount_point=world.bao.mount
    )["data"]
    assert metadata["max_versions"] == 1  # no superseded refresh token stays in history
    assert metadata["custom_metadata"]["owner"] == "acme"

    sent = plan(world)

    # Refresh + one token list per context: no login, no public keys, no session end.
    assert sent == {REFRESH: len(CONTEXTS), "GET /v2/tokens": len(CONTEXTS)}, sent
    assert sum(world.sim.stats()["contexts"].values()) <= 2 * len(CONTEXTS)
    # The same sessions stay cached for the next run.
    assert {nip: cached(world, nip) for nip in CONTEXTS} == first
    assert_never_printed(world, [r["refreshToken"] for r in first.values() if r])


def test_a_session_ksef_refuses_falls_back_to_a_full_login_and_is_replaced(
    applied: World,
) -> None:
    world = applied
    ended, expired = CONTEXTS
    old = {nip: cached(world, nip) for nip in CONTEXTS}
    assert all(old.values())
    # One session is ended behind ksefctl's back (as KSeF's web application can) …
    owner = world.sim.owner_session(ended)
    with world.sim.client(owner.headers) as http:
        gone = http.delete(f"/auth/sessions/{old[ended]['referenceNumber']}")  # type: ignore[index]
        assert gone.status_code == 204, gone.text
    # … and, a week later, every refresh token has expired (access tokens too).
    world.sim.advance_clock(8 * 24 * 3600)

    sent = plan(world)

    assert sent[REFRESH] == 2, sent  # each cached session tried once, refused
    for call in LOGIN:
        assert sent[call] == 2, (call, sent)
    # plan writes nothing to Vault: the dead records stay, its own sessions are ended.
    assert {nip: cached(world, nip) for nip in CONTEXTS} == old
    assert sent[END_CURRENT] == 2, sent

    # The next apply (a no-op) replaces them; plans then resume again.
    result = world.ksefctl("apply", "-f", str(world.directory / "tokens.yaml"), "--auto-approve")
    assert result.code == 0, result
    for nip in (ended, expired):
        new = cached(world, nip)
        assert new is not None and old[nip] is not None
        assert new["referenceNumber"] != old[nip]["referenceNumber"]  # type: ignore[index]
    again = plan(world)
    assert again == {REFRESH: 2, "GET /v2/tokens": 2}, again
    tokens = [r["refreshToken"] for r in old.values() if r]
    tokens += [r["refreshToken"] for nip in CONTEXTS if (r := cached(world, nip))]
    assert_never_printed(world, tokens)


def test_without_the_cache_runs_log_in_fully_and_end_their_sessions(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.manifest(ONE_TOKEN_EACH)
    created = world.ksefctl(
        "apply", "-f", str(world.directory / "tokens.yaml"), "--auto-approve", "--no-session-cache"
    )
    assert created.code == 0, created
    assert all(cached(world, nip) is None for nip in CONTEXTS)

    sent = plan(world, "--no-session-cache")
    assert sent[END_CURRENT] == len(CONTEXTS) and REFRESH not in sent, sent
    assert all(cached(world, nip) is None for nip in CONTEXTS)

    monkeypatch.setenv("KSEFCTL_SESSION_CACHE", "off")
    sent = plan(world)
    assert sent[END_CURRENT] == len(CONTEXTS) and REFRESH not in sent, sent
    assert all(cached(world, nip) is None for nip in CONTEXTS)


def test_break_glass_revoke_ends_and_forgets_the_cached_session(applied: World) -> None:
    world = applied
    leaked, other = CONTEXTS
    record = cached(world, leaked)
    assert record is not None

    result = world.ksefctl(
        "revoke",
        "-f",
        str(world.directory / "tokens.yaml"),
        "--nip",
        leaked,
        "--all-managed",
        "--yes",
    )
    assert result.code == 0, result

    assert cached(world, leaked) is None
    assert cached(world, other) is not None  # another company's session is not touched
    # The leaked refresh token no longer gets an access token.
    with world.sim.client({"Authorization": f"Bearer {record['refreshToken']}"}) as http:
        refused = http.post("/auth/token/refresh")
    assert refused.status_code in (400, 401), refused.text
    assert_never_printed(world, [record["refreshToken"]])
