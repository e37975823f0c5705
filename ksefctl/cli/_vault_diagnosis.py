"""One Vault problem, one line: when many contexts fail on Vault, find the common cause.

A wrong VAULT_ADDR, a dead Vault or a revoked token makes every context fail
the same way, but each context's message names its own path and reads like a
problem of that path ("no credentials at …/5265877635", "the token lacks
that capability, or …").  After observing, if two or more contexts failed on
Vault, two questions are put to Vault once: does VAULT_ADDR answer as Vault
(``sys/health``, unauthenticated), and does Vault accept the token at all
(``auth/token/lookup-self``, which Vault's default policy grants every
token)?  A "no" is the cause of those failures: their messages are replaced
by it, and :func:`print_failures` prints identical failures once.

Only a run that already failed asks; a healthy run costs nothing, and reads
still ride out a short outage through their own retries.  The questions go
only to the address the store already accepted (never plain http elsewhere).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import aiohttp

from ksefctl.reconcile.engine import Failure
from ksefctl.secret import Secret
from ksefctl.vault import VaultStore
from ksefctl.vault.config import VaultConfig
from ksefctl.vault.errors import (
    NotAVaultServer,
    VaultError,
    VaultTokenRefused,
    VaultUnavailable,
    host_port,
    mapped_errors,
)
from ksefctl.vault.http import tls_context

# Failures to list by name in a collapsed line before "and N more".
SHOWN = 3
PROBE_TIMEOUT_S = 10.0


def _caused_by_vault(failure: Failure) -> bool:
    return "vault" in failure.message.lower()


async def explain_vault_failures(store: VaultStore, failures: list[Failure]) -> None:
    """Replace, in place, the messages of Vault failures by their common cause, if one is found."""
    suspects = [i for i, f in enumerate(failures) if _caused_by_vault(f)]
    if len(suspects) < 2:
        return
    login = store.client.login_method
    token_source = (
        login.token_env
        if login.method == "token"
        else f"Vault's {login.method} login (auth/{login.mount_path})"
    )
    cause = await probe(store.config, store.client.token, token_source)
    if cause is None:
        return
    for index in suspects:
        failures[index] = replace(failures[index], message=cause)


async def probe(config: VaultConfig, token: Secret | None, token_source: str) -> str | None:
    """The cause in words when Vault is unreachable, not Vault, or refuses the token; else None."""
    connector = aiohttp.TCPConnector(ssl=tls_context(config))
    async with aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S),
    ) as session:
        try:
            await _check(session, config, token, token_source)
        except VaultError as error:
            return str(error)
    return None


async def _check(
    session: aiohttp.ClientSession, config: VaultConfig, token: Secret | None, token_source: str
) -> tuple[int, Any]:
    async def get(path: str, headers: dict[str, str]) -> tuple[int, str, Any]:
        with mapped_errors(config.address, "check", path.split("?")[0].lstrip("/")):
            async with session.get(
                config.address.rstrip("/") + path,
                headers=headers,
                # The token travels in a header: never follow Vault elsewhere with it.
                allow_redirects=False,
            ) as answer:
                text = await answer.text(errors="replace")
                kind = answer.headers.get("Content-Type", "").split(";")[0]
                return answer.status, kind, _json(text)

    namespace = {"X-Vault-Namespace": config.namespace} if config.namespace else {}
    # Every code 200, so a standby, sealed or uninitialised Vault still sends its document.
    status, kind, document = await get(
        "/v1/sys/health?standbyok=true&perfstandbyok=true&sealedcode=200&uninitcode=200"
        "&drsecondarycode=200&performancestandbycode=200",
        {},
    )
    if status != 200 or not (
        isinstance(document, dict) and "sealed" in document and "initialized" in document
    ):
        raise NotAVaultServer(
            config.address, f"GET /v1/sys/health answered HTTP {status} ({kind or 'no type'})"
        )
    where = host_port(config.address)
    if document["sealed"]:
        raise VaultUnavailable(f"Vault at {where} is sealed; unseal it and run again")
    if not document["initialized"]:
        raise VaultUnavailable(f"Vault at {where} is not initialised")
    if token is None:
        return status, document
    status, _, answer = await get(
        "/v1/auth/token/lookup-self", {"X-Vault-Token": token.reveal(), **namespace}
    )
    if status in (401, 403):
        raise VaultTokenRefused(config.address, token_source)
    return status, answer


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def print_failures(
    failures: Sequence[Failure], print_line: Callable[[str], None] | None = None
) -> None:
    """Each failure on stderr; failures with the same stage and message as one line."""

    def emit(text: str) -> None:
        if print_line is not None:
            print_line(text)
        else:
            print(text, file=sys.stderr)

    groups: dict[tuple[str, str], list[Failure]] = {}
    for failure in failures:
        groups.setdefault((failure.stage, failure.message), []).append(failure)
    for (stage, message), members in groups.items():
        if len(members) == 1:
            emit(f"Error: {members[0]}")
            continue
        names = [f"{f.context} ({f.owner})" for f in members[:SHOWN]]
        if len(members) > SHOWN:
            names.append(f"and {len(members) - SHOWN} more")
        emit(f"Error: {len(members)} contexts ({', '.join(names)}): {stage} failed: {message}")
