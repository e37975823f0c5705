"""``spec.vault.auth``: how ksefctl logs into Vault, credentials by reference only.

The manifest names environment variables and files; their contents are read
by the Vault client at login time and never pass through the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

VaultAuthMethod = Literal["token", "approle", "jwt", "kubernetes"]

KUBERNETES_JWT_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"


@dataclass(frozen=True)
class VaultAuthSpec:
    method: VaultAuthMethod
    mount: str  # where the auth method is mounted, e.g. "approle" or "jwt-gitlab"
    role: str | None = None
    token_env: str = "VAULT_TOKEN"
    role_id_env: str = "VAULT_ROLE_ID"
    secret_id_env: str = "VAULT_SECRET_ID"
    jwt_env: str | None = None  # jwt: the variable holding the JWT (default VAULT_JWT)
    jwt_file: str | None = None  # jwt / kubernetes: a file holding the JWT


def parse_vault_auth(raw: Mapping[str, Any]) -> VaultAuthSpec:
    """Build the spec from a schema-valid ``spec.vault.auth`` mapping."""
    method: VaultAuthMethod = raw["method"]
    jwt_env = raw.get("jwtEnv")
    jwt_file = raw.get("jwtFile")
    if method == "jwt" and jwt_env is None and jwt_file is None:
        jwt_env = "VAULT_JWT"
    if method == "kubernetes" and jwt_file is None:
        jwt_file = KUBERNETES_JWT_FILE
    return VaultAuthSpec(
        method=method,
        mount=raw.get("mount", method),
        role=raw.get("role"),
        token_env=raw.get("tokenEnv", "VAULT_TOKEN"),
        role_id_env=raw.get("roleIdEnv", "VAULT_ROLE_ID"),
        secret_id_env=raw.get("secretIdEnv", "VAULT_SECRET_ID"),
        jwt_env=jwt_env,
        jwt_file=jwt_file,
    )
