"""End-to-end harness: the real CLI against the simulator (real HTTP) and OpenBao.

A :class:`World` gives a test a simulator, a fresh KV mount, owner
certificates stored in Vault where manifests expect them, and ``ksefctl(...)``
which runs the CLI in-process and returns exit code, stdout and stderr.
Every KSeF request the CLI makes is checked against the official contract.
"""

from __future__ import annotations

import contextlib
import io
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import pytest

from ksefctl import cli
from ksefctl.cli import _common
from ksefctl.testcert import make_seal_certificate
from tests.conftest import Bao
from tests.simfixture import SimHandle

NIPS = ("5265877635", "7762811692", "5260181596")


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
        certificate, key = make_seal_certificate(nip)
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
