"""``ksefctl sandbox``: up, env, status and down, run as a user runs them.

Each test starts the real thing (the simulator and an OpenBao dev server as
detached background processes) on free ports in a temporary directory, and
always tears it down again.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import pytest

from ksefctl import cli, playground
from ksefctl.openbao import free_port
from tests.conftest import REPO

NIPS = ("5265877635", "7762811692")


@dataclass
class Sandbox:
    directory: Path
    manifest: Path
    sim_port: int
    vault_port: int

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ksefctl", "sandbox", "--dir", str(self.directory), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.manifest.parent,
            env={k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))},
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The same, in-process: for the commands that start nothing (faster)."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["sandbox", "--dir", str(self.directory), *args])
        return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())

    def up(self) -> subprocess.CompletedProcess[str]:
        return self.run("up", "-f", str(self.manifest), "--vault-port", str(self.vault_port))


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sim_port = free_port()
    manifest = tmp_path / "tokens.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: ksefctl/v1
            kind: TokenPolicy
            metadata: {{name: box}}
            spec:
              ksef: {{environment: "http://127.0.0.1:{sim_port}/v2", name: sandbox}}
              vault: {{mount: secret, path: "ksef/{{environment}}/{{nip}}/{{token}}"}}
              auth: {{certificate: {{vault: "ksef-admin/{{nip}}"}}}}
              defaults: {{tokens: [{{name: erp, permissions: [InvoiceRead]}}]}}
              contexts: [{{nip: "{NIPS[0]}"}}, {{nip: "{NIPS[1]}"}}]
            """
        )
    )
    box = Sandbox(tmp_path / "sandbox", manifest, sim_port, free_port())
    try:
        yield box
    finally:
        playground.down(box.directory)


def _exports(stdout: str) -> dict[str, str]:
    exports: dict[str, str] = {}
    for line in stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        exports[name] = value
    return exports


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _pids(directory: Path) -> tuple[playground.Process, playground.Process]:
    info = playground.read_info(directory)
    assert info is not None
    return info.sim, info.vault


def test_sandbox_lifecycle_up_twice_env_status_down(box: Sandbox) -> None:
    result = box.up()
    assert result.returncode == 0, result.stderr
    exports = _exports(result.stdout)
    # stdout is only export lines, so `eval "$(ksefctl sandbox up)"` is safe.
    assert all(line.startswith("export ") for line in result.stdout.splitlines())
    assert exports["VAULT_ADDR"] == f"http://127.0.0.1:{box.vault_port}"
    assert exports["KSEFCTL_SANDBOX_URL"] == f"http://127.0.0.1:{box.sim_port}/v2"
    assert "2 new, 0 already there" in result.stderr
    vault = hvac.Client(url=exports["VAULT_ADDR"], token=exports["VAULT_TOKEN"])
    for nip in NIPS:
        owner = vault.secrets.kv.v2.read_secret_version(
            path=f"ksef-admin/{nip}", mount_point="secret", raise_on_deleted_version=True
        )["data"]["data"]
        assert owner["certificate"].startswith("-----BEGIN CERTIFICATE-----")
        assert "PRIVATE KEY" in owner["privateKey"]
    # The root token stays out of what others can read.
    assert (box.directory / "sandbox.json").stat().st_mode & 0o077 == 0
    assert (box.directory / "env").stat().st_mode & 0o077 == 0

    # Running `up` twice is harmless: same servers, same token, certificates kept.
    sim, vault_process = _pids(box.directory)
    second = box.up()
    assert second.returncode == 0, second.stderr
    assert second.stdout == result.stdout
    assert _pids(box.directory) == (sim, vault_process)
    assert "0 new, 2 already there" in second.stderr

    env = box.cli("env")
    assert env.returncode == 0 and env.stdout == result.stdout
    status = box.cli("status")
    assert status.returncode == 0
    assert f"127.0.0.1:{box.sim_port}" in status.stdout
    assert exports["VAULT_TOKEN"] not in status.stdout
    assert _listening(box.sim_port) and _listening(box.vault_port)

    # `down` leaves no process and no listening port behind.
    stopped = box.run("down")
    assert stopped.returncode == 0 and "sandbox stopped" in stopped.stdout
    for process in (sim, vault_process):
        assert not process.alive()
        # Nothing either server spawned survives: its whole process group is gone.
        assert not playground._group_alive(process.pid)
    assert not _listening(box.sim_port)
    assert not _listening(box.vault_port)
    assert not (box.directory / "sandbox.json").exists()

    assert box.cli("status").returncode == 1
    missing = box.cli("env")
    assert missing.returncode == 1 and "no sandbox is running" in missing.stderr
    again = box.cli("down")
    assert again.returncode == 0 and "no sandbox was running" in again.stdout


def test_up_restarts_a_sandbox_whose_servers_died(box: Sandbox) -> None:
    info, _ = playground.up(box.directory, None, sim_port=box.sim_port, vault_port=box.vault_port)
    playground._stop(info.sim)
    assert playground.status(box.directory)["running"] is False
    restarted, _ = playground.up(
        box.directory, None, sim_port=box.sim_port, vault_port=box.vault_port
    )
    assert restarted.sim != info.sim and restarted.vault != info.vault
    assert not info.vault.alive()  # the survivor was stopped, not leaked
    assert playground.status(box.directory)["running"] is True


def test_down_never_signals_a_process_that_reused_a_recorded_pid(tmp_path: Path) -> None:
    directory = tmp_path / "sandbox"
    directory.mkdir()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # A state file left behind by a crash, whose pids now belong to somebody else.
        (directory / "sandbox.json").write_text(
            f'{{"sim_url": "http://127.0.0.1:1/v2", "vault_addr": "http://127.0.0.1:2",'
            f' "vault_token": "x", "sim_pid": {stranger.pid}, "sim_started": "1",'
            f' "vault_pid": {stranger.pid}, "vault_started": "1"}}'
        )
        assert playground.down(directory)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_up_refuses_a_simulator_port_that_is_taken(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", box.sim_port))
        squatter.listen()
        code = cli.main(["sandbox", "--dir", str(box.directory), "up", "-f", str(box.manifest)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"port 127.0.0.1:{box.sim_port} for the simulator is taken" in err
    assert "Traceback" not in err
    assert playground.read_info(box.directory) is None


def _ksefctl(box: Sandbox, exports: dict[str, str], *args: str) -> tuple[int, str, str]:
    """The CLI in-process against the sandbox, as after `eval "$(ksefctl sandbox up)"`."""
    out, err = io.StringIO(), io.StringIO()
    saved = {name: os.environ.get(name) for name in ("VAULT_ADDR", "VAULT_TOKEN")}
    os.environ.update(VAULT_ADDR=exports["VAULT_ADDR"], VAULT_TOKEN=exports["VAULT_TOKEN"])
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(args))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return code, out.getvalue(), err.getvalue()


def _applied(box: Sandbox) -> dict[str, str]:
    started = box.up()
    assert started.returncode == 0, started.stderr
    exports = _exports(started.stdout)
    code, out, err = _ksefctl(box, exports, "apply", "-f", str(box.manifest), "--auto-approve")
    assert code == 0, out + err
    assert "2 created" in out
    return exports


def _fresh_and_consistent(box: Sandbox, restarted: subprocess.CompletedProcess[str]) -> None:
    """After a restart both servers are empty: no token without its secret, nor the reverse."""
    assert restarted.returncode == 0, restarted.stderr
    assert "2 new, 0 already there" in restarted.stderr
    exports = _exports(restarted.stdout)
    code, out, err = _ksefctl(box, exports, "status", "-f", str(box.manifest))
    assert code == 0, out + err
    assert out.splitlines()[-1].startswith("Total: 2 contexts, 0 tokens")
    code, out, err = _ksefctl(box, exports, "plan", "-f", str(box.manifest))
    assert (code, err) == (0, ""), out + err
    assert out.splitlines()[-1] == "Plan: 2 to create, 0 to replace, 0 to revoke."


def test_a_dead_simulator_restarts_with_a_fresh_vault_too(box: Sandbox) -> None:
    _applied(box)
    sim, _ = _pids(box.directory)
    playground._stop(sim)  # only the simulator dies; OpenBao is still healthy
    _fresh_and_consistent(box, box.up())


def test_down_and_up_start_both_servers_fresh(box: Sandbox) -> None:
    _applied(box)
    assert box.run("down").returncode == 0
    _fresh_and_consistent(box, box.up())


def test_the_accounting_office_example_applies_in_the_sandbox(tmp_path: Path) -> None:
    office = (REPO / "examples" / "manifests" / "accounting-office.yaml").read_text()
    sim_port = free_port()
    manifest = tmp_path / "office.yaml"
    manifest.write_text(
        office.replace(
            "environment: prod", f'environment: "http://127.0.0.1:{sim_port}/v2"\n    name: prod'
        )
    )
    box = Sandbox(tmp_path / "sandbox", manifest, sim_port, free_port())
    try:
        started = box.up()
        assert started.returncode == 0, started.stderr
        # One certificate for fifty companies, and the office may act in the other 49.
        assert "1 new, 0 already there" in started.stderr
        assert "49 contexts share a certificate" in started.stderr
        exports = _exports(started.stdout)
        code, out, err = _ksefctl(box, exports, "apply", "-f", str(manifest), "--auto-approve")
        assert code == 0, err[-2000:]
        assert "Apply complete: 50 created, 0 replaced, 0 revoked." in out
        again = box.up()  # re-seeding is harmless
        assert "0 new, 1 already there" in again.stderr
        code, out, err = _ksefctl(box, exports, "plan", "-f", str(manifest))
        assert code == 0 and out.splitlines()[-1].startswith("No changes"), out + err
    finally:
        playground.down(box.directory)
