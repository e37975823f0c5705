"""The story of a KSeF public-key rotation, through the CLI, with KSeF-token logins.

A KSeF-token login sends the token encrypted under one of KSeF's public keys
(bezpieczenstwo_klucze-publiczne-do-szyfrowania.md).  Key A is in use; a
planned rotation publishes key B next to it and ksefctl moves to B; A leaves
the list when the transition ends.  Then B is retired in an emergency while a
run holds it in its cache: every context's login is refused once with 21470,
the key list is fetched again once for the whole run, and the run finishes
with nothing lost.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import httpx
import hvac.exceptions
import pytest

from ksefctl.cli import _common
from tests.e2e.conftest import NIPS, World

CONTEXTS = NIPS[:2]
KEYS_ROUTE = "GET /v2/security/public-key-certificates"
LOGIN_ROUTE = "POST /v2/auth/ksef-token"


def manifest(world: World, tokens: str) -> Path:
    contexts = "".join(
        f'  - nip: "{nip}"\n    tokens:\n{textwrap.indent(tokens, "      ")}' for nip in CONTEXTS
    )
    text = textwrap.dedent(
        f"""\
        apiVersion: ksefctl/v1
        kind: TokenPolicy
        metadata:
          name: acme
        spec:
          ksef:
            environment: "{world.sim.base_url}"
            name: sim
          vault:
            mount: {world.bao.mount}
            path: "ksef/{{environment}}/{{nip}}/{{token}}"
          auth:
            ksefToken:
              vault: "ksef-login/{{nip}}"
          contexts:
        """
    )
    path = world.directory / "tokens.yaml"
    path.write_text(text + contexts)
    return path


ONE = "- name: erp\n  permissions: [InvoiceRead, InvoiceWrite]\n"
TWO = ONE + "- name: reader\n  permissions: [InvoiceRead]\n"


class KeyWatch:
    """Notes the publicKeyId of every KSeF-token login the CLI sends, and can retire
    the key the run has just fetched (before it logs in with it)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.sent: list[str] = []
        self.retire_after_fetch = False

    def hooks(self, hooks: dict[str, list[Any]]) -> dict[str, list[Any]]:
        async def on_request(request: httpx.Request) -> None:
            if request.url.path.endswith("/auth/ksef-token"):
                self.sent.append(json.loads(request.content)["publicKeyId"])

        async def on_response(response: httpx.Response) -> None:
            if self.retire_after_fetch and response.url.path.endswith(
                "/security/public-key-certificates"
            ):
                self.retire_after_fetch = False
                await response.aread()
                listed = [k for k in response.json() if "KsefTokenEncryption" in k["usage"]]
                newest = max(listed, key=lambda k: k["validFrom"])["publicKeyId"]
                # The simulator runs in its own thread: a blocking admin call is fine here.
                self.world.sim.admin(
                    "POST", "/public-keys", {"action": "retire", "publicKeyId": newest}
                )

        return {
            "request": [*hooks.get("request", []), on_request],
            "response": [*hooks.get("response", []), on_response],
        }


@pytest.fixture
def watch(world: World, monkeypatch: pytest.MonkeyPatch) -> KeyWatch:
    world.sim.set_limits(enabled=False)  # pacing is not this story's subject
    for nip in CONTEXTS:
        minted = world.sim.mint_token(nip, description="ksefctl login")
        world.vault.secrets.kv.v2.create_or_update_secret(
            path=f"ksef-login/{nip}", mount_point=world.bao.mount, secret={"token": minted.token}
        )
    key_watch = KeyWatch(world)
    checked = _common.run_settings  # already wrapped by the world fixture (contract hooks)

    def watched(*args: Any, **kwargs: Any) -> Any:
        settings = checked(*args, **kwargs)
        settings.event_hooks = key_watch.hooks(settings.event_hooks or {})
        return settings

    monkeypatch.setattr(_common, "run_settings", watched)
    return key_watch


def token_keys(world: World) -> list[str]:
    with world.sim.client() as http:
        listed = http.get("/security/public-key-certificates").json()
    return [k["publicKeyId"] for k in listed if "KsefTokenEncryption" in k["usage"]]


def requests(world: World) -> dict[str, int]:
    return dict(world.sim.stats()["requests"])


def apply(world: World, path: Path) -> str:
    result = world.ksefctl("apply", "-f", str(path), "--auto-approve", "--no-session-cache")
    assert result.code == 0, result
    return result.out


def held(world: World) -> dict[tuple[str, str], str]:
    return {
        (nip, name): str(world.secret(nip, name)["data"]["referenceNumber"])
        for nip in CONTEXTS
        for name in ("erp", "reader")
        if _exists(world, nip, name)
    }


def _exists(world: World, nip: str, name: str) -> bool:
    try:
        world.secret(nip, name)
    except hvac.exceptions.InvalidPath:
        return False
    return True


def test_planned_then_emergency_rotation_of_the_public_key_loses_nothing(
    world: World, watch: KeyWatch
) -> None:
    # Key A is the only token-encryption key: apply logs into both contexts with it.
    (key_a,) = token_keys(world)
    apply(world, manifest(world, ONE))
    assert watch.sent == [key_a, key_a]
    first = held(world)
    assert len(first) == 2

    # Planned rotation: A and B both listed; ksefctl chooses B (the latest validFrom).
    key_b = world.sim.admin("POST", "/public-keys", {"action": "publish"})["created"]["publicKeyId"]
    assert token_keys(world) == [key_a, key_b]
    watch.sent.clear()
    out = apply(world, manifest(world, ONE))
    assert "No changes" in out, out
    assert watch.sent == [key_b, key_b]

    # The transition ends: A leaves the list, B stays (nothing new is published).
    ended = world.sim.admin("POST", "/public-keys", {"action": "retire", "publicKeyId": key_a})
    assert ended["created"] is None and token_keys(world) == [key_b]

    # Emergency: B is retired right after this run fetched the list, so both
    # contexts' first logins are refused with 21470; one refetch serves both.
    watch.sent.clear()
    watch.retire_after_fetch = True
    before = requests(world)
    out = apply(world, manifest(world, TWO))
    after = requests(world)
    (key_c,) = token_keys(world)
    assert key_c not in (key_a, key_b)
    assert after[KEYS_ROUTE] - before.get(KEYS_ROUTE, 0) == 2
    assert after[LOGIN_ROUTE] - before.get(LOGIN_ROUTE, 0) == 4
    assert sorted(watch.sent) == sorted([key_b, key_b, key_c, key_c])
    assert "Apply complete: 2 created, 0 replaced, 0 revoked." in out, out

    # Nothing lost: the erp tokens are the same, Active, and still log in.
    second = held(world)
    for key, reference in first.items():
        assert second[key] == reference
    for nip in CONTEXTS:
        statuses = {t["referenceNumber"]: t["status"] for t in world.tokens(nip)}
        assert statuses[first[(nip, "erp")]] == "Active"
        assert statuses[second[(nip, "reader")]] in ("Pending", "Active")
        world.sim.login_with_token(world.secret(nip, "erp")["data"]["token"], ("Nip", nip))
