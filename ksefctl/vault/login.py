"""Obtaining a Vault token: token, AppRole, JWT/OIDC and Kubernetes logins.

Every non-token method is one ``POST /v1/auth/<mount>/login`` whose body is
built here, apart from the network call, so it can be inspected (and its
secrets stay :class:`Secret` until the moment they are sent).  The call goes
over the same aiohttp pool as every other Vault call; hvac's
``raise_for_error`` still decides what a refusal means.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from ksefctl.secret import Secret
from ksefctl.vault.config import VaultConfig, VaultLogin
from ksefctl.vault.errors import VaultLoginFailed, mapped_errors
from ksefctl.vault.http import VaultHttp


@dataclass(frozen=True)
class LoginRequest:
    """The body of one auth-method login; values that are credentials are :class:`Secret`."""

    mount: str
    body: Mapping[str, str | Secret]

    @property
    def path(self) -> str:
        return f"auth/{self.mount}/login"

    def payload(self) -> dict[str, str]:
        return {k: v.reveal() if isinstance(v, Secret) else v for k, v in self.body.items()}


def _required_env(environ: Mapping[str, str], name: str, method: str) -> Secret:
    value = environ.get(name)
    if not value:
        raise VaultLoginFailed(f"Vault {method} login needs the environment variable {name}")
    return Secret(value)


def _read_token_file(path: str, what: str) -> Secret:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise VaultLoginFailed(f"cannot read the {what} at {path} ({error.strerror})") from None
    if not value:
        raise VaultLoginFailed(f"the {what} at {path} is empty")
    return Secret(value)


def github_actions_id_token(
    environ: Mapping[str, str], audience: str | None, session: requests.Session
) -> Secret | None:
    """Ask the GitHub Actions runner for an OIDC id token, or None outside GitHub Actions."""
    url = environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not bearer:
        return None
    if audience:
        url += ("&" if "?" in url else "?") + urlencode({"audience": audience})
    try:
        response = session.get(url, headers={"Authorization": f"bearer {bearer}"}, timeout=30)
    except requests.RequestException as error:
        raise VaultLoginFailed(
            f"cannot request a GitHub Actions id token ({type(error).__name__})"
        ) from None
    if response.status_code != 200:
        raise VaultLoginFailed(
            f"GitHub Actions refused an id token (HTTP {response.status_code}); "
            "does the job have 'permissions: id-token: write'?"
        )
    try:
        value = response.json()["value"]
    except (ValueError, KeyError, TypeError):
        raise VaultLoginFailed("GitHub Actions returned no id token") from None
    return Secret(str(value))


def build_login_request(
    login: VaultLogin,
    environ: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
) -> LoginRequest | None:
    """The login call ``login`` makes, or None for the token method (no call needed)."""
    env = os.environ if environ is None else environ
    body: dict[str, str | Secret]
    if login.method == "token":
        return None
    if login.method == "approle":
        body = {"role_id": _required_env(env, login.role_id_env, "AppRole")}
        # A role with bind_secret_id=false logs in with the role id alone.
        if env.get(login.secret_id_env):
            body["secret_id"] = Secret(env[login.secret_id_env])
    elif login.method == "jwt":
        assert login.role is not None  # VaultLogin validates it
        jwt: Secret | None = Secret(env[login.jwt_env]) if env.get(login.jwt_env) else None
        if jwt is None and login.jwt_file:
            jwt = _read_token_file(login.jwt_file, "JWT file")
        if jwt is None:
            jwt = github_actions_id_token(env, login.audience, session or requests.Session())
        if jwt is None:
            raise VaultLoginFailed(
                f"Vault JWT login needs a token: set {login.jwt_env}, jwtFile, "
                "or run in GitHub Actions with 'permissions: id-token: write'"
            )
        body = {"role": login.role, "jwt": jwt}
    else:  # kubernetes
        assert login.role is not None
        body = {
            "role": login.role,
            "jwt": _read_token_file(
                login.jwt_file or login.token_file, "Kubernetes service-account token"
            ),
        }
    return LoginRequest(mount=login.mount_path, body=body)


async def log_in(
    http: VaultHttp,
    config: VaultConfig,
    login: VaultLogin,
    environ: Mapping[str, str] | None = None,
) -> Grant:
    """A Vault token by ``login``'s method: one ``POST auth/<mount>/login`` at most.

    A token given to ksefctl (the token method) comes back without a lease:
    renewing it is the caller's business, not ksefctl's.
    """
    if login.method == "token":
        env = os.environ if environ is None else environ
        named = env.get(login.token_env) if login.token_env != "VAULT_TOKEN" else None
        token = Secret(named) if named else config.token
        if token is None:
            raise VaultLoginFailed(
                f"no Vault token: set {login.token_env}, run 'vault login', "
                "or configure spec.vault.auth"
            )
        return Grant(token, None)
    # Off the loop: on GitHub Actions it asks the runner for an id token (a blocking call).
    request = await asyncio.to_thread(build_login_request, login, environ)
    assert request is not None
    with mapped_errors(config.address, "login", request.path, login=True):
        answer = await http.request(
            "POST", f"/v1/{request.path}", body=dict(request.payload()), authenticated=False
        )
        auth = answer.get("auth") or {}
        token = auth.get("client_token") if isinstance(auth, dict) else None
        lease = lease_of(answer)
    if not token or not isinstance(token, str):
        raise VaultLoginFailed(f"Vault login at {request.path} returned no token")
    return Grant(Secret(token), lease)


@dataclass(frozen=True)
class Grant:
    """A Vault token and, when ksefctl's own login obtained it, its lease."""

    token: Secret
    lease: Lease | None


@dataclass(frozen=True)
class Lease:
    """How long a token ksefctl obtained lives, and whether it may be renewed."""

    duration_s: float
    renewable: bool


def lease_of(answer: Any) -> Lease | None:
    """The ``auth`` lease of a login or renew answer; None for a token that never expires."""
    auth = answer.get("auth") if isinstance(answer, dict) else None
    if not isinstance(auth, dict) or not auth.get("lease_duration"):
        return None
    return Lease(float(auth["lease_duration"]), bool(auth.get("renewable")))
