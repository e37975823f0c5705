"""The one ``world`` fixture: the real CLI, in-process, against the simulator (real HTTP)
and OpenBao.

A :class:`World` gives a test a simulator, a fresh KV mount, owner
certificates stored in Vault where manifests expect them, and ``ksefctl(...)``
which runs the CLI in-process and returns exit code, stdout and stderr.
Every KSeF request the CLI makes is checked against the official contract.
The functions below read KSeF and Vault directly (raw HTTP, hvac), never
through ksefctl, so a test can judge what ksefctl did.
"""

from __future__ import annotations

import contextlib
import functools
import io
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import pytest

from ksefctl import cli
from ksefctl.cli import _common
from ksefctl.testcert import make_seal_certificate
from tests.support.sim import SimHandle
from tests.support.vault import Bao

NIPS = ("5265877635", "7762811692", "5260181596")
ALL_STATUSES = ("Pending", "Active", "Revoking", "Revoked", "Failed")


def manifest_header(owner: str, base_url: str, mount: str) -> str:
    """A TokenPolicy for the test simulator and mount, up to (not including) its tokens."""
    return textwrap.dedent(
        f"""\
        apiVersion: ksefctl/v1
        kind: TokenPolicy
        metadata:
          name: {owner}
        spec:
          ksef:
            environment: "{base_url}"
            name: sim
          vault:
            mount: {mount}
            path: "ksef/{{environment}}/{{nip}}/{{token}}"
          auth:
            certificate:
              vault: "ksef-admin/{{nip}}"
        """
    )


@functools.cache
def _owner_seal(nip: str) -> tuple[bytes, bytes]:
    # An RSA key costs tens of milliseconds; every world seeds the same three owners,
    # each into its own simulator and mount, so one seal per NIP serves the session.
    return make_seal_certificate(nip)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@dataclass
class World:
    sim: SimHandle
    bao: Bao
    directory: Path
    vault: hvac.Client
    outputs: list[str] = field(default_factory=list)

    def seed_owner(self, nip: str) -> None:
        certificate, key = _owner_seal(nip)
        self.vault.secrets.kv.v2.create_or_update_secret(
            path=f"ksef-admin/{nip}",
            mount_point=self.bao.mount,
            secret={"certificate": certificate.decode(), "privateKey": key.decode()},
        )

    def manifest(self, body: str, name: str = "tokens.yaml", owner: str = "acme") -> Path:
        """Write a manifest; ``body`` is the YAML under ``spec.contexts`` etc."""
        header = manifest_header(owner, self.sim.base_url, self.bao.mount)
        path = self.directory / name
        path.write_text(header + textwrap.indent(textwrap.dedent(body), "  "))
        return path

    def ksefctl(self, *args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(args))
        self.outputs += [out.getvalue(), err.getvalue()]
        return Result(code, out.getvalue(), err.getvalue())

    def secret(self, nip: str, token: str) -> dict[str, Any]:
        response = self.vault.secrets.kv.v2.read_secret_version(
            path=f"ksef/sim/{nip}/{token}",
            mount_point=self.bao.mount,
            raise_on_deleted_version=True,
        )
        return dict(response["data"])

    def tokens(
        self, nip: str, statuses: tuple[str, ...] = ("Pending", "Active")
    ) -> list[dict[str, Any]]:
        """What KSeF lists in a context (as its owner sees it)."""
        session = self.sim.owner_session(nip)
        found: list[dict[str, Any]] = []
        with self.sim.client(session.headers) as http:
            params: dict[str, Any] = {"pageSize": 100, "status": list(statuses)}
            headers: dict[str, str] = {}
            while True:
                page = http.get("/tokens", params=params, headers=headers).json()
                found += page["tokens"]
                if not page.get("continuationToken"):
                    return found
                headers = {"x-continuation-token": page["continuationToken"]}


@pytest.fixture
def world(
    sim: SimHandle, bao_env: Bao, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    checker = sim.checker
    if checker is not None:
        original = _common.run_settings

        def checked(*args: Any, **kwargs: Any) -> Any:
            settings = original(*args, **kwargs)
            settings.event_hooks = checker.async_hooks()
            return settings

        monkeypatch.setattr(_common, "run_settings", checked)
    vault = hvac.Client(url=bao_env.address, token=bao_env.token)
    w = World(sim=sim, bao=bao_env, directory=tmp_path, vault=vault)
    for nip in NIPS:
        w.seed_owner(nip)
    yield w


# -- KSeF and Vault as they are, read around ksefctl ------------------------------


def statuses(world: World, nip: str = NIPS[0]) -> dict[str, str]:
    """Every token of the context, any status: referenceNumber -> status."""
    return {t["referenceNumber"]: t["status"] for t in world.tokens(nip, ALL_STATUSES)}


def metadata(world: World, nip: str, token: str) -> dict[str, Any]:
    """The Vault metadata of the token's secret (versions, custom_metadata)."""
    response = world.vault.secrets.kv.v2.read_secret_metadata(
        path=f"ksef/sim/{nip}/{token}", mount_point=world.bao.mount
    )
    return dict(response["data"])


def log_in_as_stranger(world: World, permissions: list[str], nip: str = NIPS[0]) -> None:
    """From now on ksefctl logs into ``nip`` with another company's seal, granted ``permissions``."""
    stranger = "1111111111"
    certificate, key = make_seal_certificate(stranger)
    world.vault.secrets.kv.v2.create_or_update_secret(
        path=f"ksef-admin/{nip}",
        mount_point=world.bao.mount,
        secret={"certificate": certificate.decode(), "privateKey": key.decode()},
    )
    assert world.sim.grant(nip, ("Nip", stranger), permissions).status_code == 200


def ksef_state(world: World) -> dict[str, list[tuple[str, str]]]:
    """Every token of every context, with its status, as KSeF lists them to the owner."""
    return {
        nip: sorted((t["referenceNumber"], t["status"]) for t in world.tokens(nip, ALL_STATUSES))
        for nip in NIPS
    }


def vault_state(world: World) -> dict[str, Any]:
    """Every secret's versions and their deletion state, ksefctl's own bookkeeping aside."""
    kv = world.vault.secrets.kv.v2
    found: dict[str, Any] = {}

    def walk(prefix: str) -> None:
        keys = kv.list_secrets(path=prefix, mount_point=world.bao.mount)["data"]["keys"]
        for key in keys:
            path = f"{prefix}{key}"
            if path.startswith(".ksefctl/"):  # locks and cached sessions
                continue
            if key.endswith("/"):
                walk(path)
                continue
            data = kv.read_secret_metadata(path=path, mount_point=world.bao.mount)["data"]
            found[path] = (
                data["current_version"],
                {
                    number: (version["deletion_time"], version["destroyed"])
                    for number, version in data["versions"].items()
                },
                data["custom_metadata"],
            )

    walk("")
    return found


def settled(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """KSeF and Vault once no token is on its way (Pending, Revoking) any more."""
    deadline = time.monotonic() + 30
    while True:
        tokens = ksef_state(world)
        moving = [s for ts in tokens.values() for _, s in ts if s in ("Pending", "Revoking")]
        if not moving or time.monotonic() > deadline:
            return tokens, vault_state(world)
        time.sleep(0.05)
