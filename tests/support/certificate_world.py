"""Reading KSeF certificates and their Vault secrets around ksefctl, for the certificate
stories run in a :class:`~tests.support.world.World` (raw HTTP and hvac, never ksefctl)."""

from __future__ import annotations

import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.world import Result, World


def certificate_manifest(world: World, body: str, owner: str = "acme") -> Path:
    header = textwrap.dedent(
        f"""\
        apiVersion: ksefctl/v1
        kind: CertificatePolicy
        metadata:
          name: {owner}
        spec:
          ksef:
            environment: "{world.sim.base_url}"
            name: sim
          vault:
            mount: {world.bao.mount}
          auth:
            certificate:
              vault: "ksef-admin/{{nip}}"
        """
    )
    path = world.directory / f"certificates-{owner}.yaml"
    path.write_text(header + textwrap.indent(textwrap.dedent(body), "  "))
    return path


def subject_certificates(world: World, nip: str) -> list[dict[str, Any]]:
    """What KSeF lists for the subject Nip:<nip>, read over raw HTTP."""
    session = world.sim.owner_session(nip)
    with world.sim.client(session.headers) as http:
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = http.post(
                "/certificates/query", params={"pageSize": 50, "pageOffset": offset}, json={}
            ).json()
            found += page["certificates"]
            if not page["hasMore"]:
                return found
            offset += 1


def settled_certificates(world: World, nip: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        found = subject_certificates(world, nip)
        if all(c["status"] != "Blocked" for c in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def cert_secret(world: World, nip: str, name: str) -> dict[str, Any]:
    response = world.vault.secrets.kv.v2.read_secret_version(
        path=f"ksef-certs/sim/{nip}/{name}",
        mount_point=world.bao.mount,
        raise_on_deleted_version=True,
    )
    return dict(response["data"])


def cert_metadata(world: World, nip: str, name: str) -> dict[str, Any]:
    return dict(
        world.vault.secrets.kv.v2.read_secret_metadata(
            path=f"ksef-certs/sim/{nip}/{name}", mount_point=world.bao.mount
        )["data"]
    )


def apply(world: World, manifest: Path, *extra: str) -> Result:
    result = world.ksefctl("apply", "-f", str(manifest), "--auto-approve", *extra)
    return result


def by_status(found: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    return [c for c in found if c["status"] == status]


def sim_now(world: World) -> datetime:
    clock = world.sim.admin("GET", "/clock")
    return datetime.fromisoformat(str(clock["now"]).replace("Z", "+00:00"))
