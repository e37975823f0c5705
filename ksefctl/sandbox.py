"""A local playground: the KSeF simulator and an OpenBao dev server, ready for apply.

``up`` starts both in the background (each in its own process group, so
``down`` can stop everything they spawned), creates a self-signed
company-seal certificate for every context of the manifest — exactly how one
becomes the owner of a NIP on the real TEST environment — and stores it in
Vault where the manifest's ``auth`` block expects it.  Everything lives in
one directory: the simulator's state, the logs, and an ``env`` file (0600)
with the Vault address and root token.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import hvac

from ksefctl.errors import KsefctlError
from ksefctl.manifest.model import Desired
from ksefctl.openbao import start_dev_server, wait_until_ready

DEFAULT_SIM_PORT = 18080
DEFAULT_VAULT_PORT = 18200


class SandboxError(KsefctlError):
    """The sandbox could not be started, found or stopped."""


def default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ksefctl" / "sandbox"


@dataclass(frozen=True)
class SandboxInfo:
    directory: Path
    sim_url: str
    vault_addr: str
    vault_token: str
    sim_pid: int
    vault_pid: int

    def __repr__(self) -> str:  # the root token stays out of reprs
        return f"SandboxInfo(directory={self.directory}, sim_url={self.sim_url}, vault_addr={self.vault_addr})"

    def env_lines(self) -> str:
        return (
            f"export VAULT_ADDR={self.vault_addr}\n"
            f"export VAULT_TOKEN={self.vault_token}\n"
            f"export KSEFCTL_SANDBOX_URL={self.sim_url}\n"
        )


def _state_file(directory: Path) -> Path:
    return directory / "sandbox.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_info(directory: Path) -> SandboxInfo | None:
    path = _state_file(directory)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return SandboxInfo(
        directory=directory,
        sim_url=data["sim_url"],
        vault_addr=data["vault_addr"],
        vault_token=data["vault_token"],
        sim_pid=data["sim_pid"],
        vault_pid=data["vault_pid"],
    )


def _healthy(info: SandboxInfo) -> bool:
    if not (_alive(info.sim_pid) and _alive(info.vault_pid)):
        return False
    try:
        sim = httpx.get(f"{info.sim_url}/security/public-key-certificates", timeout=2)
        vault = httpx.get(f"{info.vault_addr}/v1/sys/health", timeout=2)
    except httpx.HTTPError:
        return False
    return sim.status_code == 200 and vault.status_code == 200


def _start_simulator(directory: Path, host: str, port: int) -> tuple[str, int]:
    out_path = directory / "sim.out"
    out = open(out_path, "wb")  # noqa: SIM115 - handed to the child
    err = open(directory / "sim.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ksefctl",
            "sim",
            "--host",
            host,
            "--port",
            str(port),
            "--state",
            str(directory / "sim.sqlite"),
        ],
        stdout=out,
        stderr=err,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    err.close()
    # The simulator prints its base URL as the first line of stdout once it listens.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        lines = out_path.read_text().splitlines()
        if lines and lines[0].startswith("http"):
            return lines[0].strip(), process.pid
        time.sleep(0.05)
    process.kill()
    raise SandboxError(
        f"the simulator did not start (see {directory / 'sim.log'}); is port {port} free?"
    )


def up(
    directory: Path,
    desired: Desired | None,
    host: str = "127.0.0.1",
    sim_port: int = DEFAULT_SIM_PORT,
    vault_port: int = DEFAULT_VAULT_PORT,
) -> SandboxInfo:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = read_info(directory)
    if info is None or not _healthy(info):
        if info is not None:
            down(directory)
        sim_url, sim_pid = _start_simulator(directory, host, sim_port)
        token = f"sandbox-{secrets.token_hex(12)}"
        try:
            server = start_dev_server(
                root_token=token,
                host=host,
                port=vault_port,
                log_file=directory / "openbao.log",
                detach=True,
            )
        except KsefctlError:
            _stop_pid(sim_pid)
            raise
        info = SandboxInfo(directory, sim_url, server.address, token, sim_pid, server.process.pid)
        state = _state_file(directory)
        state.write_text(
            json.dumps(
                {
                    "sim_url": info.sim_url,
                    "vault_addr": info.vault_addr,
                    "vault_token": info.vault_token,
                    "sim_pid": info.sim_pid,
                    "vault_pid": info.vault_pid,
                }
            )
        )
        state.chmod(0o600)
        env = directory / "env"
        env.write_text(info.env_lines())
        env.chmod(0o600)
    if desired is not None:
        seed(info, desired)
    return info


def seed(info: SandboxInfo, desired: Desired) -> list[str]:
    """Give every context of ``desired`` an owner certificate in Vault (once)."""
    from ksefctl.testcert import make_seal_certificate

    wait_until_ready(info.vault_addr)
    client = hvac.Client(url=info.vault_addr, token=info.vault_token)
    seeded: list[str] = []
    for context in desired.contexts:
        ref = context.auth.secret
        if context.auth.method != "certificate":
            continue
        _ensure_kv(client, ref.mount)
        try:
            client.secrets.kv.v2.read_secret_version(
                path=ref.path, mount_point=ref.mount, raise_on_deleted_version=True
            )
            continue  # already there: `up` twice is harmless
        except hvac.exceptions.InvalidPath:
            pass
        certificate, key = make_seal_certificate(context.context.nip)
        client.secrets.kv.v2.create_or_update_secret(
            path=ref.path,
            mount_point=ref.mount,
            secret={"certificate": certificate.decode(), "privateKey": key.decode()},
        )
        seeded.append(context.context.nip)
    return seeded


def _ensure_kv(client: hvac.Client, mount: str) -> None:
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    if f"{mount}/" not in mounts:
        client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})


def _stop_pid(pid: int, timeout: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end and _alive(pid):
        time.sleep(0.05)
        _reap(pid)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def down(directory: Path) -> bool:
    info = read_info(directory)
    if info is None:
        return False
    _stop_pid(info.sim_pid)
    _stop_pid(info.vault_pid)
    _state_file(directory).unlink(missing_ok=True)
    (directory / "env").unlink(missing_ok=True)
    return True


def status(directory: Path) -> dict[str, object]:
    info = read_info(directory)
    if info is None:
        return {"running": False, "directory": str(directory)}
    return {
        "running": _healthy(info),
        "directory": str(directory),
        "simulator": {"url": info.sim_url, "pid": info.sim_pid, "alive": _alive(info.sim_pid)},
        "vault": {
            "address": info.vault_addr,
            "pid": info.vault_pid,
            "alive": _alive(info.vault_pid),
        },
    }
