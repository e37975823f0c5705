"""Every object in ksefctl.vault and ksefctl.ksef that holds a secret keeps it out of
repr() and str(): a KSeF token, an access or refresh JWT, a Vault token, a login
credential, a private key.  Each is built holding a distinctive value, then printed."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from ksefctl.ksef.auth import IssuedToken, PendingAuth
from ksefctl.ksef.models import GeneratedToken
from ksefctl.ksef.session import Session
from ksefctl.ksef.transport import Transport
from ksefctl.ksef.xades_signing import load_identity
from ksefctl.secret import Secret
from ksefctl.testcert import make_seal_certificate
from ksefctl.vault import LoginRequest, VaultConfig, VaultStore
from ksefctl.vault.http import VaultHttp
from ksefctl.vault.kv import KvVersion
from ksefctl.vault.sessions import CachedSession, CacheEntry
from ksefctl.vocabulary import ContextId

KSEF_TOKEN = "20251001-EC-0000000001-AB|nip-5265877635|s3cretKsefTail0f64hex"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZWZyZXNoIn0.c2lnbmF0dXJlLXNlY3JldC1yZWZyZXNo"
VAULT_TOKEN = "hvs.VaultTokenNeverPrinted42"
ROLE_SECRET = "approle-secret-id-never-printed"
CONTEXT = ContextId("Nip", "5265877635")


def assert_clean(holder: object, *secrets: str) -> None:
    for text in (repr(holder), str(holder), f"{holder}", f"{holder!r}"):
        for secret in secrets:
            assert secret not in text, f"{type(holder).__name__} shows a secret: {text}"
            # A KSeF token's secret tail alone is enough to misuse it.
            assert secret.rsplit("|", 1)[-1] not in text


def issued(value: str) -> IssuedToken:
    return IssuedToken(Secret(value), datetime.now(UTC), 900.0, time.monotonic())


def test_a_kv_version_read_from_vault_hides_its_data() -> None:
    version = KvVersion({"token": KSEF_TOKEN, "refreshToken": JWT}, 3, {"owner": "acme"}, False)
    assert_clean(version, KSEF_TOKEN, JWT)
    assert "3" in repr(version)  # still useful in a debugger


def test_vault_objects_holding_tokens_and_login_material() -> None:
    config = VaultConfig(address="http://127.0.0.1:9", token=Secret(VAULT_TOKEN))
    session = CachedSession("20251001-AU-1", Secret(JWT), datetime.now(UTC), "http://x/v2", "f")
    assert_clean(config, VAULT_TOKEN)
    assert_clean(session, JWT)
    assert_clean(CacheEntry(session, 2), JWT)
    assert_clean(
        LoginRequest("approle", {"role_id": "r", "secret_id": Secret(ROLE_SECRET)}), ROLE_SECRET
    )
    assert_clean(VaultHttp(config, lambda: VAULT_TOKEN, concurrency=1), VAULT_TOKEN)


async def test_a_logged_in_vault_store_hides_its_token() -> None:
    store = VaultStore(VaultConfig(address="http://127.0.0.1:9", token=Secret(VAULT_TOKEN)))
    try:
        await store.login()  # the token method: no request, the token is now in use
        assert_clean(store, VAULT_TOKEN)
    finally:
        await store.aclose()


async def test_ksef_objects_holding_tokens_and_keys() -> None:
    assert_clean(GeneratedToken("20251001-EC-0000000001-AB", Secret(KSEF_TOKEN)), KSEF_TOKEN)
    assert_clean(PendingAuth("20251001-AU-1", Secret(JWT)), JWT)
    assert_clean(issued(JWT), JWT)
    transport = Transport("http://127.0.0.1:9/v2")
    try:
        access_jwt = JWT.replace("refresh", "access")
        assert_clean(
            Session(transport, CONTEXT, "20251001-AU-1", issued(access_jwt), issued(JWT)),
            JWT,
            access_jwt,
        )
    finally:
        await transport.aclose()


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_a_signing_identity_hides_its_private_key(key_type: str) -> None:
    certificate, key = make_seal_certificate("5265877635", key_type=key_type)  # type: ignore[arg-type]
    identity = load_identity(certificate, key)
    body_lines = [line for line in key.decode().splitlines() if "-----" not in line]
    assert_clean(identity, *body_lines)
    number = identity.private_key.private_numbers()
    secret_number = str(getattr(number, "private_value", None) or getattr(number, "d", ""))
    assert_clean(identity, secret_number)
