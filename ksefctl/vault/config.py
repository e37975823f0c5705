"""Where Vault is and how to log into it: the standard ``VAULT_*`` variables and ``spec.vault.auth``.

Variables follow the ``vault`` CLI (``VAULT_ADDR``, ``VAULT_TOKEN`` or
``~/.vault-token``, ``VAULT_NAMESPACE``, ``VAULT_CACERT``, ``VAULT_CAPATH``,
``VAULT_SKIP_VERIFY``, ``VAULT_CLIENT_CERT``/``VAULT_CLIENT_KEY``); OpenBao's
``BAO_*`` spellings are honoured when the ``VAULT_*`` one is unset.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args
from urllib.parse import urlsplit

from ksefctl.secret import Secret
from ksefctl.vault.errors import VaultError
from ksefctl.vocabulary import is_loopback

DEFAULT_ADDRESS = "https://127.0.0.1:8200"  # the vault CLI's default
KUBERNETES_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
# The opt-out of the https rule below (``--allow-insecure-vault`` sets it too).
ALLOW_HTTP_VARIABLE = "KSEFCTL_VAULT_ALLOW_HTTP"

log = logging.getLogger("ksefctl.vault")

LoginMethod = Literal["token", "approle", "jwt", "kubernetes"]
LOGIN_METHODS: tuple[str, ...] = get_args(LoginMethod)


class VaultConfigError(VaultError):
    """The Vault connection or login settings are invalid."""


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(f"VAULT_{name}") or environ.get(f"BAO_{name}")
    return value or None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class VaultConfig:
    """How to reach Vault; ``token`` is a :class:`Secret`, so reprs stay clean."""

    address: str = DEFAULT_ADDRESS
    token: Secret | None = None
    namespace: str | None = None
    cacert: str | None = None  # a CA bundle file or a directory of CA certificates
    skip_verify: bool = False
    client_cert: str | None = None
    client_key: str | None = None
    timeout: float = 30.0
    allow_http: bool = False  # plain http to another machine, which carries the token readable

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, home: Path | None = None
    ) -> VaultConfig:
        env = os.environ if environ is None else environ
        token = _env(env, "TOKEN")
        if token is None:
            token_file = (home or Path.home()) / ".vault-token"
            try:
                token = token_file.read_text(encoding="utf-8").strip() or None
            except OSError:
                token = None
        return cls(
            address=(_env(env, "ADDR") or DEFAULT_ADDRESS).rstrip("/"),
            token=Secret(token) if token else None,
            namespace=_env(env, "NAMESPACE"),
            cacert=_env(env, "CACERT") or _env(env, "CAPATH"),
            skip_verify=_truthy(_env(env, "SKIP_VERIFY")),
            client_cert=_env(env, "CLIENT_CERT"),
            client_key=_env(env, "CLIENT_KEY"),
            allow_http=_truthy(env.get(ALLOW_HTTP_VARIABLE)),
        )

    def check_address(self) -> None:
        """Refuse an address the Vault token must not travel to, before anything connects.

        The token (and an AppRole secret id, a JWT) travels in every request, so
        plain http is for this machine only — the same rule as for KSeF's base
        URL — unless the operator opts out explicitly.
        """
        parts = urlsplit(self.address)
        if parts.scheme == "https" and parts.hostname:
            return
        if parts.scheme != "http" or not parts.hostname:
            raise VaultConfigError(
                f"VAULT_ADDR {self.address!r} is not an http(s):// URL "
                "(e.g. https://vault.example.com:8200)"
            )
        if is_loopback(parts.hostname):
            return
        if not self.allow_http:
            raise VaultConfigError(
                f"refusing VAULT_ADDR {self.address!r}: plain http would carry the Vault token "
                "readable over the network; use https:// (http:// only to this machine), or "
                f"--allow-insecure-vault ({ALLOW_HTTP_VARIABLE}=1) to send it anyway"
            )
        log.warning(
            "sending the Vault token over plain http to %s (%s is set)",
            parts.hostname,
            ALLOW_HTTP_VARIABLE,
        )

    @property
    def verify(self) -> bool | str:
        """The ``verify`` argument of requests: a CA path, or whether to verify at all.

        Without VAULT_CACERT, the bundles requests itself honours
        (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) apply, for hvac and aiohttp alike.
        """
        if self.skip_verify:
            return False
        return (
            self.cacert
            or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or True
        )


# Keys accepted by VaultLogin.from_mapping: manifest camelCase → field name.
_ALIASES = {
    "tokenEnv": "token_env",
    "roleIdEnv": "role_id_env",
    "secretIdEnv": "secret_id_env",
    "jwtEnv": "jwt_env",
    "jwtFile": "jwt_file",
    "tokenFile": "token_file",
}


@dataclass(frozen=True)
class VaultLogin:
    """How ksefctl obtains its Vault token (``spec.vault.auth`` in a manifest).

    - ``token``: the variable ``token_env`` (``VAULT_TOKEN``) or ``~/.vault-token``.
    - ``approle``: role id and secret id from the variables ``role_id_env`` and
      ``secret_id_env``.
    - ``jwt``: a JWT/OIDC id token (CI pipelines) for ``role``, from the
      variable ``jwt_env``, else from ``jwt_file``, else — on GitHub Actions,
      with ``id-token: write`` — requested from the runner for ``audience``.
    - ``kubernetes``: the pod's service-account token from ``jwt_file`` if
      given, else ``token_file`` (the standard projected token).

    ``mount`` defaults to the method's name (``auth/<mount>/login``).
    """

    method: LoginMethod = "token"
    mount: str | None = None
    role: str | None = None
    token_env: str = "VAULT_TOKEN"
    role_id_env: str = "VAULT_ROLE_ID"
    secret_id_env: str = "VAULT_SECRET_ID"
    jwt_env: str = "VAULT_JWT"
    jwt_file: str | None = None
    audience: str | None = None
    token_file: str = KUBERNETES_TOKEN_FILE

    def __post_init__(self) -> None:
        if self.method not in LOGIN_METHODS:
            raise VaultConfigError(
                f"unknown Vault login method {self.method!r}; use one of {', '.join(LOGIN_METHODS)}"
            )
        if self.method in ("jwt", "kubernetes") and not self.role:
            raise VaultConfigError(f"Vault login method {self.method!r} needs a role")
        if self.mount is not None and (not self.mount.strip("/") or ".." in self.mount):
            raise VaultConfigError(f"invalid Vault auth mount {self.mount!r}")

    @property
    def mount_path(self) -> str:
        return (self.mount or self.method).strip("/")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> VaultLogin:
        """Build from a parsed ``spec.vault.auth`` block (camelCase or snake_case keys)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if value is None:  # an unset optional field of a bridged dataclass
                continue
            name = _ALIASES.get(key, key)
            if name not in fields:
                raise VaultConfigError(f"spec.vault.auth: unknown key {key!r}")
            kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def from_spec(cls, spec: object) -> VaultLogin:
        """Bridge any dataclass with the same field names (e.g. the manifest's ``VaultAuthSpec``)."""
        if isinstance(spec, VaultLogin):
            return spec
        if isinstance(spec, Mapping):
            return cls.from_mapping(spec)
        if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
            return cls.from_mapping(cast(Mapping[str, Any], dataclasses.asdict(spec)))
        raise VaultConfigError(f"cannot read Vault login settings from {type(spec).__name__}")
