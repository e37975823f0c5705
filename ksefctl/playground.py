"""A local playground: the KSeF simulator and an OpenBao dev server, ready for apply.

``up`` starts both in the background (each in its own session, so ``down``
can stop everything they spawned), creates a self-signed company-seal
certificate for every context of the manifest — exactly how one becomes the
owner of a NIP on the real TEST environment — and stores it in Vault where
the manifest's ``auth`` block expects it.  Everything lives in one directory
(0700): the logs, and ``sandbox.json`` / ``env`` (0600) with the Vault
address and root token.

The simulator listens where the manifest says (``spec.ksef.environment`` is
a loopback URL), so the manifest stays the one place that names the port.

The two servers' state lives and dies together.  OpenBao is a dev server
that keeps secrets in memory only, so the simulator keeps its tokens in
memory too: a sandbox that is stopped — or that ``up`` finds with either
server dead — starts again with both empty, never with tokens in KSeF whose
secrets Vault forgot (or the reverse).

Several contexts logging in with one secret (``auth`` naming the same path,
as an accounting office does with its own seal) share one certificate: it is
made for the first such context's NIP, and that company is granted, in each
of the other contexts, CredentialsManage and every permission its tokens
carry — what each client grants the office by hand on the real service
(through the simulator's TEST endpoint ``/testdata/permissions``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import hvac

from ksefctl.errors import KsefctlError
from ksefctl.manifest.environment import is_loopback
from ksefctl.manifest.model import Desired
from ksefctl.openbao import free_port, start_dev_server, wait_until_ready

DEFAULT_HOST = "127.0.0.1"
DEFAULT_SIM_PORT = 18080  # manifests/quickstart.yaml points here
DEFAULT_VAULT_PORT = 18200
DIR_VARIABLE = "KSEFCTL_SANDBOX_DIR"
VAULT_PORT_VARIABLE = "KSEFCTL_SANDBOX_VAULT_PORT"
START_TIMEOUT_S = 30.0


class SandboxError(KsefctlError):
    """The sandbox could not be started, found or stopped."""


def default_dir() -> Path:
    """``$KSEFCTL_SANDBOX_DIR``, else ``$XDG_STATE_HOME/ksefctl/sandbox`` (~/.local/state/…)."""
    explicit = os.environ.get(DIR_VARIABLE)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ksefctl" / "sandbox"


def default_vault_port() -> int:
    """``$KSEFCTL_SANDBOX_VAULT_PORT``, else 18200."""
    text = os.environ.get(VAULT_PORT_VARIABLE)
    if not text:
        return DEFAULT_VAULT_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SandboxError(f"{VAULT_PORT_VARIABLE} must be a port number, not {text!r}")
    return int(text)


@dataclass(frozen=True)
class Process:
    """A background process we started, recognised by pid *and* start time.

    The start time guards ``down`` against a recycled pid: after a reboot or a
    crash the pid in ``sandbox.json`` may belong to somebody else's process.
    """

    pid: int
    started: str | None

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, but not ours to signal: not our process
            return False
        if _is_zombie(self.pid):
            return False
        return self.started is None or _start_time(self.pid) == self.started


@dataclass(frozen=True)
class SandboxInfo:
    directory: Path
    sim_url: str
    vault_addr: str
    vault_token: str
    sim: Process
    vault: Process

    def __repr__(self) -> str:  # the root token stays out of reprs
        return (
            f"SandboxInfo(directory={self.directory}, sim_url={self.sim_url}, "
            f"vault_addr={self.vault_addr})"
        )

    def env_lines(self) -> str:
        return (
            f"export VAULT_ADDR={self.vault_addr}\n"
            f"export VAULT_TOKEN={self.vault_token}\n"
            f"export KSEFCTL_SANDBOX_URL={self.sim_url}\n"
        )


@dataclass(frozen=True)
class SeedReport:
    seeded: tuple[str, ...]  # login secrets (mount/path) that got a new certificate
    present: tuple[str, ...]  # login secrets already in Vault
    skipped: tuple[str, ...]  # contexts that log in by KSeF token: nothing to seed
    # Contexts where a shared certificate's holder was granted what it needs.
    granted: tuple[str, ...] = ()


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux /proc), None where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); split after the command name, which may contain spaces.
    return stat.rsplit(")", 1)[1].split()[19]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _state_file(directory: Path) -> Path:
    return directory / "sandbox.json"


def read_info(directory: Path) -> SandboxInfo | None:
    path = _state_file(directory)
    try:
        data = json.loads(path.read_text())
        return SandboxInfo(
            directory=directory,
            sim_url=data["sim_url"],
            vault_addr=data["vault_addr"],
            vault_token=data["vault_token"],
            sim=Process(data["sim_pid"], data.get("sim_started")),
            vault=Process(data["vault_pid"], data.get("vault_started")),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SandboxError(f"{path} is unreadable ({error}); remove it and run up again") from None


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)


def _write_info(info: SandboxInfo) -> None:
    state = {
        "sim_url": info.sim_url,
        "vault_addr": info.vault_addr,
        "vault_token": info.vault_token,
        "sim_pid": info.sim.pid,
        "sim_started": info.sim.started,
        "vault_pid": info.vault.pid,
        "vault_started": info.vault.started,
    }
    _write_private(_state_file(info.directory), json.dumps(state, indent=2))
    _write_private(info.directory / "env", info.env_lines())


def _healthy(info: SandboxInfo) -> bool:
    if not (info.sim.alive() and info.vault.alive()):
        return False
    try:
        sim = httpx.get(f"{info.sim_url}/security/public-key-certificates", timeout=2)
        vault = httpx.get(f"{info.vault_addr}/v1/sys/health", timeout=2)
    except httpx.HTTPError:
        return False
    return sim.status_code == 200 and vault.status_code == 200


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One ``up``/``down`` at a time per sandbox directory."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def sim_address(desired: Desired | None) -> tuple[str, int] | None:
    """Host and port of the simulator the manifests expect, if they point at this machine."""
    if desired is None:
        return None
    wanted = set()
    for policy in desired.policies:
        parts = urlsplit(policy.base_url)
        if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
            wanted.add((parts.hostname, parts.port or 80))
    if len(wanted) > 1:
        listed = ", ".join(f"{h}:{p}" for h, p in sorted(wanted))
        raise SandboxError(f"the manifests expect simulators at several addresses ({listed})")
    return next(iter(wanted), None)


def _start_simulator(directory: Path, host: str, port: int) -> tuple[str, Process]:
    if not _port_free(host, port):
        raise SandboxError(
            f"port {host}:{port} for the simulator is taken; stop what listens there "
            "or point spec.ksef.environment at another port"
        )
    out_path = directory / "sim.out"
    with open(out_path, "wb") as out, open(directory / "sim.log", "ab") as err:
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
                # No --state: OpenBao forgets on restart, so the simulator must too.
            ],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives this command; down stops its whole group
        )
    # The simulator prints its base URL as the first line of stdout once it listens.
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        lines = out_path.read_text().splitlines()
        if lines and lines[0].startswith("http"):
            return lines[0].strip(), Process(process.pid, _start_time(process.pid))
        time.sleep(0.05)
    _stop(Process(process.pid, None))
    raise SandboxError(f"the simulator did not start; see {directory / 'sim.log'}")


def _start_vault(directory: Path, host: str, port: int, token: str) -> tuple[str, Process]:
    if not _port_free(host, port):
        # Never reuse whatever already answers there: it could be another sandbox.
        port = free_port(host)
    server = start_dev_server(
        root_token=token,
        host=host,
        port=port,
        log_file=directory / "openbao.log",
        detach=True,
    )
    if server.process.poll() is not None:
        raise SandboxError(f"OpenBao exited at start; see {directory / 'openbao.log'}")
    return server.address, Process(server.process.pid, _start_time(server.process.pid))


def up(
    directory: Path,
    desired: Desired | None,
    sim_port: int | None = None,
    vault_port: int | None = None,
) -> tuple[SandboxInfo, SeedReport | None]:
    """Start the sandbox (or reuse a healthy one in ``directory``) and seed ``desired``."""
    expected = sim_address(desired)
    host = expected[0] if expected else DEFAULT_HOST
    port = sim_port or (expected[1] if expected else DEFAULT_SIM_PORT)
    with _locked(directory):
        info = read_info(directory)
        if info is not None and not _healthy(info):
            _down(info)
            info = None
        if info is not None:
            running = urlsplit(info.sim_url)
            if (running.hostname, running.port) != (host, port):
                raise SandboxError(
                    f"the running sandbox's simulator is at {info.sim_url}, "
                    f"but the manifest expects {host}:{port}; run: ksefctl sandbox down"
                )
        else:
            # A state file of an older sandbox would bring back tokens without secrets.
            (directory / "sim.sqlite").unlink(missing_ok=True)
            sim_url, sim = _start_simulator(directory, host, port)
            token = f"sandbox-{secrets.token_hex(12)}"
            try:
                vault_addr, vault = _start_vault(
                    directory, host, vault_port or default_vault_port(), token
                )
            except BaseException:
                _stop(sim)
                raise
            info = SandboxInfo(directory, sim_url, vault_addr, token, sim, vault)
            _write_info(info)
        report = seed(info, desired) if desired is not None else None
    return info, report


def seed(info: SandboxInfo, desired: Desired) -> SeedReport:
    """Give every context of ``desired`` an owner certificate in Vault (once).

    A login secret shared by several contexts holds one certificate, of the
    first such context's NIP; that company is granted in the others what it
    needs there (see the module docstring).
    """
    from ksefctl.testcert import make_seal_certificate

    wait_until_ready(info.vault_addr)
    client = hvac.Client(url=info.vault_addr, token=info.vault_token)
    mounts: set[str] = set()
    seeded: list[str] = []
    present: list[str] = []
    skipped: list[str] = []
    granted: list[str] = []
    holders: dict[str, str] = {}  # login secret → NIP its certificate names
    for context in desired.contexts:
        name = str(context.context)
        if context.auth.method != "certificate":
            skipped.append(name)  # a KSeF token can only come from KSeF itself
            continue
        ref = context.auth.secret
        for mount in (ref.mount, context.tokens[0].secret.mount if context.tokens else None):
            if mount and mount not in mounts:
                _ensure_kv(client, mount)
                mounts.add(mount)
        key = str(ref)
        if key not in holders:
            existing = _read_certificate(client, ref.mount, ref.path)
            if existing is not None:
                present.append(key)  # `up` twice is harmless: keep the owner's certificate
                holders[key] = _certificate_nip(existing) or context.context.nip
            else:
                certificate, private_key = make_seal_certificate(context.context.nip)
                client.secrets.kv.v2.create_or_update_secret(
                    path=ref.path,
                    mount_point=ref.mount,
                    secret={
                        "certificate": certificate.decode(),
                        "privateKey": private_key.decode(),
                    },
                )
                seeded.append(key)
                holders[key] = context.context.nip
        holder = holders[key]
        if holder != context.context.nip:
            permissions = {"CredentialsManage"} | {p for t in context.tokens for p in t.permissions}
            _grant(info.sim_url, context.context.nip, holder, sorted(permissions))
            granted.append(name)
    return SeedReport(tuple(seeded), tuple(present), tuple(skipped), tuple(granted))


def _read_certificate(client: hvac.Client, mount: str, path: str) -> str | None:
    try:
        answer = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
    except hvac.exceptions.InvalidPath:
        return None
    certificate = answer["data"]["data"].get("certificate")
    return certificate if isinstance(certificate, str) else ""


def _certificate_nip(pem: str) -> str | None:
    """The NIP a seal (``VATPL-…``) or personal certificate (``TINPL-…``) names, if any."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        subject = x509.load_pem_x509_certificate(pem.encode()).subject
    except ValueError:
        return None
    for oid, prefix in (
        (NameOID.ORGANIZATION_IDENTIFIER, "VATPL-"),
        (NameOID.SERIAL_NUMBER, "TINPL-"),
    ):
        for attribute in subject.get_attributes_for_oid(oid):
            value = str(attribute.value)
            if value.startswith(prefix):
                return value.removeprefix(prefix)
    return None


def _grant(sim_url: str, nip: str, holder: str, permissions: list[str]) -> None:
    """Let company ``holder`` act in ``nip``'s context, as the client would in the web app."""
    answer = httpx.post(
        f"{sim_url}/testdata/permissions",
        json={
            "contextIdentifier": {"type": "Nip", "value": nip},
            "authorizedIdentifier": {"type": "Nip", "value": holder},
            "permissions": [
                {"permissionType": p, "description": "sandbox: shared certificate"}
                for p in permissions
            ],
        },
        timeout=10,
    )
    if answer.status_code != 200:
        raise SandboxError(
            f"the simulator refused to grant Nip:{holder} permissions in Nip:{nip} "
            f"(HTTP {answer.status_code})"
        )


def _ensure_kv(client: hvac.Client, mount: str) -> None:
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    if f"{mount}/" not in mounts:
        client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})


def _stop(process: Process, timeout: float = 10.0) -> None:
    """SIGTERM the process's group, SIGKILL it if it lingers, and wait until it is gone."""
    if not process.alive():
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end and _group_alive(process.pid):
        _reap(process.pid)
        time.sleep(0.05)
    if _group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        end = time.monotonic() + timeout
        while time.monotonic() < end and _group_alive(process.pid):
            _reap(process.pid)
            time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process remains in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _reap(pid: int) -> None:
    # Only a process that started the sandbox in-process (tests) is the parent.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _down(info: SandboxInfo) -> None:
    _stop(info.sim)
    _stop(info.vault)
    _state_file(info.directory).unlink(missing_ok=True)
    (info.directory / "env").unlink(missing_ok=True)


def down(directory: Path) -> bool:
    """Stop both servers; False when no sandbox was recorded in ``directory``."""
    if not directory.is_dir():
        return False
    with _locked(directory):
        info = read_info(directory)
        if info is None:
            return False
        _down(info)
        return True


def status(directory: Path) -> dict[str, object]:
    info = read_info(directory)
    if info is None:
        return {"running": False, "directory": str(directory)}
    return {
        "running": _healthy(info),
        "directory": str(directory),
        "simulator": {"url": info.sim_url, "pid": info.sim.pid, "alive": info.sim.alive()},
        "vault": {"address": info.vault_addr, "pid": info.vault.pid, "alive": info.vault.alive()},
    }
