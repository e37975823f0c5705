"""No secret ever reaches output, logs, error texts, written files or reprs.

plan, apply (also through an injected fault) and status run at -vv as real processes;
every KSeF token, JWT (the simulator records each one it signs), the Vault token and
every private key the run could know is then searched for in everything they left.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ksefctl.secret import Secret
from ksefctl.vault import VaultStore
from tests.chaos.harness import ChaosWorld, nips, record, run_cli
from tests.conftest import Bao
from tests.simfixture import SimHandle


def needles(value: str) -> list[str]:
    """The whole secret and its distinctive parts (a JWT's signature, a token's secret tail,
    every base64 line of a PEM key), so a partial leak is caught too."""
    found = {value}
    if value.count(".") == 2:  # JWT
        found.update(part for part in value.split(".")[1:] if len(part) >= 16)
    if "|" in value:  # KSeF token: reference|context-value|secret
        found.add(value.rsplit("|", 1)[-1])
    if "PRIVATE KEY" in value:
        found = {line for line in value.splitlines() if len(line) >= 40 and "-----" not in line}
    return sorted(found)


def test_no_secret_in_output_logs_errors_files_or_reprs(
    sim: SimHandle, bao: Bao, tmp_path: Path
) -> None:
    signed: list[str] = []
    simulator = sim.running.simulator
    issue = simulator.issue

    def recording(kind: str, session: str, ttl: float) -> tuple[str, float]:
        token, until = issue(kind, session, ttl)
        signed.append(token)
        return token, until

    simulator.issue = recording  # type: ignore[method-assign]
    sim.set_limits(enabled=False)
    world = ChaosWorld(sim, bao.address, bao.token, bao.mount, tmp_path / "work")
    world.directory.mkdir()
    contexts = nips(2, start=551_000_001)
    world.seed_contexts(contexts)
    manifest = world.manifest("acme", contexts)
    plan_file = world.directory / "tokens.plan"

    runs = [
        run_cli(["plan", "-vv", "-f", str(manifest), "--out", str(plan_file)], world.env),
        run_cli(["apply", "-vv", str(plan_file)], world.env),
        run_cli(["status", "-vv", "-f", str(manifest)], world.env),
    ]
    # A creation whose answer is lost: the error path names tokens, never their values.
    sim.set_faults(drop_after_commit=1)
    future = "2099-01-01T00:00:00Z"
    runs.append(run_cli([*world.apply_argv(manifest, "-vv", "--now", future)], world.env))
    sim.set_faults(drop_after_commit=0)
    runs.append(run_cli(["status", "-vv", "-f", str(manifest), "--json"], world.env))
    assert all(r.code in (0, 1) for r in runs), runs
    assert all("Traceback" not in r.err for r in runs), runs
    assert "DEBUG" in runs[1].err  # -vv really logged

    secrets: list[str] = [bao.token, *signed]
    vault = world.vault
    for nip in contexts:
        admin = vault.secrets.kv.v2.read_secret_version(
            path=f"ksef-admin/{nip}", mount_point=bao.mount, raise_on_deleted_version=True
        )
        secrets.append(admin["data"]["data"]["privateKey"])
        for name in ("erp", "reader", "writer"):
            metadata = vault.secrets.kv.v2.read_secret_metadata(
                path=f"ksef/sim/{nip}/{name}", mount_point=bao.mount
            )
            for version in metadata["data"]["versions"]:
                data = vault.secrets.kv.v2.read_secret_version(
                    path=f"ksef/sim/{nip}/{name}",
                    mount_point=bao.mount,
                    version=int(version),
                    raise_on_deleted_version=True,
                )["data"]["data"]
                secrets.append(data["token"])
    assert len(signed) >= 10 and len(secrets) >= 20

    haystacks: dict[str, str] = {}
    for index, run in enumerate(runs):
        haystacks[f"run {index} stdout"] = run.out
        haystacks[f"run {index} stderr"] = run.err
    for path in world.directory.rglob("*"):
        if path.is_file():
            haystacks[str(path)] = path.read_text(errors="replace")
    searched = [n for s in secrets for n in needles(s)]
    leaks = [(n[:12], where) for n in searched for where, text in haystacks.items() if n in text]
    record(
        "secret_hygiene",
        secrets_known=len(secrets),
        jwts_known=len(signed),
        needles_searched=len(searched),
        texts_searched=len(haystacks),
        bytes_searched=sum(len(t) for t in haystacks.values()),
        secrets_leaked=len(leaks),
    )
    assert leaks == []


@pytest.mark.parametrize(
    "show",
    [repr, str, lambda s: f"{s}", lambda s: f"{s!r}", lambda s: "%s" % (s,)],  # noqa: UP031 - as logging formats it
)
def test_secret_never_shows_its_value(show: Any) -> None:
    value = "20260101-EC-0000000000-0000000000-00|nip-5265877635|" + "ab" * 32
    assert "ab" * 32 not in show(Secret(value))
    assert "ab" * 32 not in show([Secret(value)])


def test_reprs_of_connection_objects_carry_no_token() -> None:
    store = VaultStore(environ={"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "hvs.s3cr3t"})
    assert "s3cr3t" not in repr(store)
    assert not re.search("s3cr3t", repr(store.config))
