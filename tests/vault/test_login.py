"""Logging into a real OpenBao by token, AppRole and JWT; Kubernetes up to the request it sends."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import hvac
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ksefctl.manifest.model import Desired, Policy, SecretRef
from ksefctl.manifest.vault_auth import VaultAuthSpec, parse_vault_auth
from ksefctl.secret import Secret
from ksefctl.vault import (
    VaultConfig,
    VaultConfigError,
    VaultLogin,
    VaultLoginFailed,
    VaultStore,
    build_login_request,
)
from tests.conftest import Bao
from tests.vault.conftest import eventually

EnableAuth = Callable[[str], str]  # enables an auth method at a fresh path, returns the path


@pytest.fixture
def readable(bao: Bao, root: hvac.Client) -> Iterator[tuple[str, SecretRef]]:
    """A policy that may read the test mount, and a secret there to read."""
    policy = f"read-{bao.mount}"
    root.sys.create_or_update_policy(
        policy, f'path "{bao.mount}/data/*" {{ capabilities = ["read"] }}'
    )
    root.secrets.kv.v2.create_or_update_secret(
        "ksef/test/5265877635/erp",
        {"token": "t", "referenceNumber": "20251001-EC-LOGIN"},
        mount_point=bao.mount,
    )
    yield policy, SecretRef(bao.mount, "ksef/test/5265877635/erp")
    root.sys.delete_policy(policy)


@pytest.fixture
def auth_mount(root: hvac.Client) -> Iterator[EnableAuth]:
    mounts: list[str] = []

    def enable(method: str) -> str:
        path = f"{method}-{uuid.uuid4().hex[:8]}"
        root.sys.enable_auth_method(method, path=path)
        mounts.append(path)
        return path

    yield enable
    for path in mounts:
        root.sys.disable_auth_method(path)


async def can_read(store: VaultStore, ref: SecretRef) -> bool:
    async with store:
        return (await store.read_token_state(ref)).reference_number == "20251001-EC-LOGIN"


async def test_token_from_the_environment(bao_env: Bao, readable: tuple[str, SecretRef]) -> None:
    assert await can_read(VaultStore(), readable[1])


async def test_token_from_vault_token_file(
    bao: Bao, readable: tuple[str, SecretRef], tmp_path: Path
) -> None:
    (tmp_path / ".vault-token").write_text(bao.token + "\n")
    config = VaultConfig.from_env({"VAULT_ADDR": bao.address}, home=tmp_path)
    assert await can_read(VaultStore(config), readable[1])


async def test_no_token_at_all_is_a_login_error(bao: Bao, tmp_path: Path) -> None:
    config = VaultConfig.from_env({"VAULT_ADDR": bao.address}, home=tmp_path)
    with pytest.raises(VaultLoginFailed, match="VAULT_TOKEN"):
        async with VaultStore(config):
            pass


async def test_approle_login(
    bao: Bao, root: hvac.Client, readable: tuple[str, SecretRef], auth_mount: EnableAuth
) -> None:
    mount = auth_mount("approle")
    root.auth.approle.create_or_update_approle(
        "ksefctl", token_policies=[readable[0]], mount_point=mount
    )
    role_id = root.auth.approle.read_role_id("ksefctl", mount_point=mount)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("ksefctl", mount_point=mount)["data"][
        "secret_id"
    ]
    login = VaultLogin.from_mapping({"method": "approle", "mount": mount})
    config = VaultConfig(address=bao.address)

    env = {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    assert await can_read(VaultStore(config, login, environ=env), readable[1])

    wrong = {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": "not-the-secret-id"}
    with pytest.raises(VaultLoginFailed) as error:
        await can_read(VaultStore(config, login, environ=wrong), readable[1])
    assert f"auth/{mount}/login" in str(error.value)
    assert "not-the-secret-id" not in str(error.value) and secret_id not in str(error.value)

    with pytest.raises(VaultLoginFailed, match="VAULT_ROLE_ID"):
        await can_read(VaultStore(config, login, environ={}), readable[1])


@dataclass(frozen=True)
class Issuer:
    """A CI identity provider: an RSA key whose public half Vault trusts."""

    key: rsa.RSAPrivateKey

    def sign(self, **claims: object) -> str:
        now = int(time.time())
        body: dict[str, object] = {
            "iss": "https://ci.example",
            "sub": "repo:acme/tokens",
            "aud": "ksefctl",
        }
        body.update({"iat": now, "nbf": now - 5, "exp": now + 300})
        body.update(claims)
        return jwt.encode(body, self.key, algorithm="RS256")


@pytest.fixture
def jwt_auth(
    root: hvac.Client, readable: tuple[str, SecretRef], auth_mount: EnableAuth
) -> tuple[str, Issuer]:
    mount: str = auth_mount("jwt")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    root.adapter.post(
        f"/v1/auth/{mount}/config",
        json={"jwt_validation_pubkeys": [public.decode()], "bound_issuer": "https://ci.example"},
    )
    root.adapter.post(
        f"/v1/auth/{mount}/role/ksefctl",
        json={
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["ksefctl"],
            "bound_claims": {"sub": "repo:acme/tokens"},
            "token_policies": [readable[0]],
            "token_ttl": "5m",
        },
    )
    return mount, Issuer(key)


async def test_jwt_login_from_variable_and_file(
    bao: Bao, jwt_auth: tuple[str, Issuer], readable: tuple[str, SecretRef], tmp_path: Path
) -> None:
    mount, issuer = jwt_auth
    config = VaultConfig(address=bao.address)
    login = VaultLogin(method="jwt", mount=mount, role="ksefctl")
    assert await can_read(
        VaultStore(config, login, environ={"VAULT_JWT": issuer.sign()}), readable[1]
    )

    token_file = tmp_path / "id-token"
    token_file.write_text(issuer.sign())
    from_file = VaultLogin.from_mapping(
        {"method": "jwt", "mount": mount, "role": "ksefctl", "jwtFile": str(token_file)}
    )
    assert await can_read(VaultStore(config, from_file, environ={}), readable[1])


async def test_jwt_login_refuses_foreign_or_expired_tokens(
    bao: Bao, jwt_auth: tuple[str, Issuer], readable: tuple[str, SecretRef]
) -> None:
    mount, issuer = jwt_auth
    config = VaultConfig(address=bao.address)
    login = VaultLogin(method="jwt", mount=mount, role="ksefctl")
    stranger = Issuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    for bad in (
        stranger.sign(),
        issuer.sign(exp=int(time.time()) - 120),
        issuer.sign(sub="repo:evil/x"),
    ):
        with pytest.raises(VaultLoginFailed) as error:
            await can_read(VaultStore(config, login, environ={"VAULT_JWT": bad}), readable[1])
        assert bad not in str(error.value) and bad.split(".")[1] not in str(error.value)


class _RunnerTokenEndpoint(BaseHTTPRequestHandler):
    """GitHub Actions' id-token endpoint, as the runner exposes it to a job."""

    issued: str = ""

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        authorised = self.headers.get("Authorization") == "bearer runner-request-token"
        if not authorised or query.get("audience") != ["ksefctl"]:
            self.send_response(403)
            self.end_headers()
            return
        body = json.dumps({"value": self.issued}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


async def test_jwt_login_with_a_github_actions_id_token(
    bao: Bao, jwt_auth: tuple[str, Issuer], readable: tuple[str, SecretRef]
) -> None:
    mount, issuer = jwt_auth
    handler = type("Endpoint", (_RunnerTokenEndpoint,), {"issued": issuer.sign()})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"http://127.0.0.1:{server.server_port}/id?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-request-token",
        }
        login = VaultLogin(method="jwt", mount=mount, role="ksefctl", audience="ksefctl")
        assert await can_read(
            VaultStore(VaultConfig(address=bao.address), login, environ=env), readable[1]
        )

        env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "wrong"
        with pytest.raises(VaultLoginFailed, match="id-token: write"):
            await can_read(
                VaultStore(VaultConfig(address=bao.address), login, environ=env), readable[1]
            )
    finally:
        server.shutdown()
        thread.join()


def test_kubernetes_login_request_carries_the_service_account_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.service-account.signature\n")
    login = VaultLogin.from_mapping(
        {"method": "kubernetes", "role": "ksefctl", "tokenFile": str(token_file)}
    )

    request = build_login_request(login, environ={})

    assert request is not None
    assert request.path == "auth/kubernetes/login"
    assert request.payload() == {
        "role": "ksefctl",
        "jwt": "eyJhbGciOiJSUzI1NiJ9.service-account.signature",
    }
    assert "service-account" not in repr(request)


def test_kubernetes_login_outside_a_pod_names_the_missing_file(tmp_path: Path) -> None:
    login = VaultLogin(method="kubernetes", role="ksefctl", token_file=str(tmp_path / "absent"))
    with pytest.raises(VaultLoginFailed, match=r"service-account token at .*absent"):
        build_login_request(login, environ={})


def self_signed_ca() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test cluster CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


async def test_kubernetes_login_reaches_the_auth_method_and_fails_without_a_cluster(
    bao: Bao, root: hvac.Client, auth_mount: EnableAuth, tmp_path: Path
) -> None:
    mount: str = auth_mount("kubernetes")
    root.adapter.post(
        f"/v1/auth/{mount}/config",
        json={
            "kubernetes_host": "https://127.0.0.1:1",  # no cluster listens there
            "kubernetes_ca_cert": self_signed_ca(),
            "disable_local_ca_jwt": True,
        },
    )
    root.adapter.post(
        f"/v1/auth/{mount}/role/ksefctl",
        json={
            "bound_service_account_names": ["ksefctl"],
            "bound_service_account_namespaces": ["ci"],
        },
    )
    # Claims as a projected service-account token has them; only the cluster can vouch for it.
    service_account_token = jwt.encode(
        {
            "iss": "kubernetes/serviceaccount",
            "sub": "system:serviceaccount:ci:ksefctl",
            "kubernetes.io/serviceaccount/namespace": "ci",
            "kubernetes.io/serviceaccount/service-account.name": "ksefctl",
        },
        "a key the cluster never saw, long enough for HS256",
        algorithm="HS256",
    )
    token_file = tmp_path / "token"
    token_file.write_text(service_account_token)
    login = VaultLogin(method="kubernetes", mount=mount, role="ksefctl", token_file=str(token_file))

    with pytest.raises(VaultLoginFailed) as error:
        async with VaultStore(VaultConfig(address=bao.address), login, environ={}):
            pass
    assert f"auth/{mount}/login" in str(error.value)
    assert service_account_token.split(".")[2] not in str(error.value)


def test_login_settings_are_validated() -> None:
    with pytest.raises(VaultConfigError, match="unknown Vault login method"):
        VaultLogin.from_mapping({"method": "ldap"})
    with pytest.raises(VaultConfigError, match="needs a role"):
        VaultLogin(method="jwt")
    with pytest.raises(VaultConfigError, match="unknown key 'rol'"):
        VaultLogin.from_mapping({"method": "approle", "rol": "x"})

    @dataclass(frozen=True)
    class VaultAuthSpec:  # the manifest's own record, bridged by field names
        method: str
        role: str | None = None
        mount: str | None = None
        jwt_file: str | None = None

    bridged = VaultLogin.from_spec(VaultAuthSpec(method="jwt", role="ci", jwt_file="/run/id"))
    assert bridged == VaultLogin(method="jwt", role="ci", jwt_file="/run/id")
    assert bridged.mount_path == "jwt"


def test_config_from_standard_variables(tmp_path: Path) -> None:
    config = VaultConfig.from_env(
        {
            "VAULT_ADDR": "https://vault.example:8200/",
            "VAULT_TOKEN": "hvs.very-secret",
            "VAULT_NAMESPACE": "finance",
            "VAULT_CACERT": "/etc/ssl/vault-ca.pem",
        },
        home=tmp_path,
    )
    assert config.address == "https://vault.example:8200"
    assert config.token == Secret("hvs.very-secret")
    assert config.namespace == "finance" and config.verify == "/etc/ssl/vault-ca.pem"
    assert "very-secret" not in repr(config)

    bao_style = VaultConfig.from_env(
        {"BAO_ADDR": "http://bao:8200", "VAULT_SKIP_VERIFY": "true"}, home=tmp_path
    )
    assert bao_style.address == "http://bao:8200" and bao_style.verify is False
    assert bao_style.token is None


def manifest_policy(owner: str, mount: str, auth: VaultAuthSpec | None) -> Policy:
    return Policy(
        owner=owner,
        environment="test",
        base_url="http://127.0.0.1:1/v2",
        vault_mount=mount,
        vault_path_template="ksef/{environment}/{nip}/{token}",
        contexts=(),
        vault_auth=auth,
    )


def test_manifest_vault_auth_is_bridged(tmp_path: Path) -> None:
    spec = parse_vault_auth(
        {"method": "kubernetes", "role": "ksefctl", "jwtFile": str(tmp_path / "t")}
    )
    (tmp_path / "t").write_text("projected-token")

    request = build_login_request(VaultLogin.from_spec(spec), environ={})

    assert request is not None and request.payload()["jwt"] == "projected-token"


async def test_store_from_manifests_uses_their_login_and_lock_mounts(
    bao: Bao, readable: tuple[str, SecretRef], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", bao.address)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.setenv("CI_VAULT_TOKEN", bao.token)
    auth = parse_vault_auth({"method": "token", "tokenEnv": "CI_VAULT_TOKEN"})
    desired = Desired(
        policies=(
            manifest_policy("acme", bao.mount, auth),
            manifest_policy("other", "secret", None),
        )
    )
    store = VaultStore.from_environment(desired)
    assert store.lock("acme").ref == SecretRef(bao.mount, ".ksefctl/locks/acme")
    assert store.lock("other").ref.mount == "secret"
    assert await can_read(store, readable[1])

    clash = Desired(
        policies=(
            manifest_policy("acme", bao.mount, auth),
            manifest_policy("other", bao.mount, parse_vault_auth({"method": "approle"})),
        )
    )
    with pytest.raises(VaultConfigError, match=r"different spec\.vault\.auth"):
        VaultStore.from_environment(clash)


@pytest.mark.parametrize("max_ttl", ["1h", "3s"], ids=["renewed", "logged-in-again"])
async def test_a_token_from_our_login_outlives_its_ttl(
    bao: Bao,
    root: hvac.Client,
    readable: tuple[str, SecretRef],
    auth_mount: EnableAuth,
    max_ttl: str,
) -> None:
    mount = auth_mount("approle")
    root.auth.approle.create_or_update_approle(
        "short",
        token_policies=[readable[0]],
        token_ttl="3s",
        token_max_ttl=max_ttl,
        mount_point=mount,
    )
    role_id = root.auth.approle.read_role_id("short", mount_point=mount)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("short", mount_point=mount)["data"][
        "secret_id"
    ]
    login = VaultLogin.from_mapping({"method": "approle", "mount": mount})
    env = {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    async with VaultStore(VaultConfig(address=bao.address), login, environ=env) as store:
        started = time.monotonic()
        first_token = store.client.token
        # Past the first token's 3 s TTL, twice over: the store kept a live token.
        await eventually(lambda: store.renewals + store.relogins >= 2, deadline=20.0)
        assert time.monotonic() - started > 3.0
        assert (await store.read_token_state(readable[1])).reference_number == "20251001-EC-LOGIN"
        if max_ttl == "1h":
            assert store.renewals >= 2 and store.client.token == first_token
        else:
            assert store.relogins >= 1 and store.client.token != first_token
