"""The chaos harness: apply runs as killable processes, a Vault that survives restarts,
and the invariants that must hold after every disturbance once apply has converged.

``ksefctl apply`` runs in child processes forked from a forkserver that has already
imported ksefctl, so a run starts in milliseconds instead of the ~0.9 s an interpreter
needs to import it; that is what makes dozens of SIGKILLs affordable.  The child is a
real OS process running ``ksefctl.cli.main``: killing it is exactly like killing the CLI.

Figures (faults injected, kill points, re-runs, losses, leaks, bad inputs) go to
:func:`tests.support.figures.record`; the run prints them and writes them outside the tree.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac

from ksefctl.manifest import marker
from ksefctl.manifest.identifiers import nip_check_digit
from ksefctl.openbao import find_bao, free_port, wait_until_ready
from ksefctl.testcert import make_seal_certificate
from tests.support.figures import record as record  # the chaos tests record through here
from tests.support.sim import SimHandle
from tests.support.world import manifest_header

_forkserver = multiprocessing.get_context("forkserver")
_forkserver.set_forkserver_preload(["ksefctl.cli", "ksefctl.cli.apply", "tests.chaos.harness"])


def nips(count: int, start: int = 521_000_001) -> list[str]:
    """``count`` distinct valid NIPs (the check digit of some 9-digit prefixes is impossible)."""
    found: list[str] = []
    prefix = start
    while len(found) < count:
        digit = nip_check_digit(str(prefix))
        if digit is not None:
            found.append(f"{prefix}{digit}")
        prefix += 1
    return found


# -- apply as a killable process ------------------------------------------------


def _child(argv: list[str], env: dict[str, str], out: str, err: str) -> None:
    os.environ.clear()
    os.environ.update(env)
    for fd, name in ((1, out), (2, err)):
        target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", buffering=1)  # noqa: SIM115 - lives until os._exit
    sys.stderr = open(2, "w", buffering=1)  # noqa: SIM115
    from ksefctl import cli

    code = cli.main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@dataclass(frozen=True)
class Run:
    code: int | None  # None: killed
    out: str
    err: str
    killed: bool

    def __str__(self) -> str:
        return (
            f"exit {self.code} killed={self.killed}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"
        )


def run_cli(
    argv: list[str],
    env: dict[str, str],
    *,
    kill_when: Callable[[], bool] | None = None,
    timeout: float = 120.0,
) -> Run:
    """Run ``ksefctl argv`` in its own process; SIGKILL it the moment ``kill_when()`` is true."""
    with tempfile.TemporaryDirectory() as scratch:
        out, err = f"{scratch}/out", f"{scratch}/err"
        process = _forkserver.Process(target=_child, args=(argv, env, out, err))
        process.start()
        killed = False
        deadline = time.monotonic() + timeout
        while process.is_alive():
            if kill_when is not None and kill_when():
                assert process.pid is not None
                os.kill(process.pid, signal.SIGKILL)
                killed = True
                break
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"ksefctl {' '.join(argv)} ran longer than {timeout}s")
            process.join(0.001 if kill_when is not None else 0.01)
        process.join()
        return Run(
            None if killed else process.exitcode,
            Path(out).read_text(errors="replace"),
            Path(err).read_text(errors="replace"),
            killed,
        )


# -- an OpenBao whose data survives a restart ------------------------------------


@dataclass
class PersistentBao:
    """``bao server`` with integrated (raft) storage on disk: stop it, start it again, unseal, and the data is there."""

    directory: Path
    port: int = field(default_factory=free_port)
    cluster_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    root_token: str = field(default="", repr=False)
    unseal_key: str = field(default="", repr=False)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.directory / "bao.hcl"
        config.write_text(
            textwrap.dedent(
                f"""\
                storage "raft" {{
                  path = "{self.directory}"
                  node_id = "chaos"
                  performance_multiplier = 1
                }}
                listener "tcp" {{
                  address = "127.0.0.1:{self.port}"
                  cluster_address = "127.0.0.1:{self.cluster_port}"
                  tls_disable = true
                }}
                api_addr = "{self.address}"
                cluster_addr = "http://127.0.0.1:{self.cluster_port}"
                """
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        self.process = subprocess.Popen(
            [find_bao(), "server", f"-config={config}"],
            stdout=(self.directory / "bao.log").open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        client = hvac.Client(url=self.address)
        deadline = time.monotonic() + 30
        while True:
            try:
                initialized = client.sys.is_initialized()
                break
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)
        if not initialized:
            keys = client.sys.initialize(secret_shares=1, secret_threshold=1)
            self.root_token, self.unseal_key = keys["root_token"], keys["keys"][0]
        client.sys.submit_unseal_key(self.unseal_key)
        wait_until_ready(self.address)

    def stop(self) -> None:
        """SIGKILL: the server gets no chance to tidy up, like a crashed node."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


# -- the world a chaos test runs in ------------------------------------------------

OTHER_OWNER = "other-team"


@dataclass
class ChaosWorld:
    sim: SimHandle
    vault_address: str
    vault_token: str = field(repr=False)
    mount: str
    directory: Path
    lock_ttl: float = 2.0
    hand_made: dict[str, str] = field(default_factory=dict)  # referenceNumber -> nip
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (method, nip)
    created: Counter[str] = field(default_factory=Counter)  # nip -> tokens committed
    rerun_errors: Counter[str] = field(default_factory=Counter)

    @property
    def vault(self) -> hvac.Client:
        return hvac.Client(url=self.vault_address, token=self.vault_token)

    @property
    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        return {**keep, "VAULT_ADDR": self.vault_address, "VAULT_TOKEN": self.vault_token}

    def seed_contexts(self, contexts: list[str]) -> None:
        """Owner certificates in Vault, and in every context a hand-made token and one of
        another manifest's owner, which no run may touch."""
        vault = self.vault
        for nip in contexts:
            certificate, key = make_seal_certificate(nip, key_type="ec")
            vault.secrets.kv.v2.create_or_update_secret(
                path=f"ksef-admin/{nip}",
                mount_point=self.mount,
                secret={"certificate": certificate.decode(), "privateKey": key.decode()},
            )
            made = self.sim.mint_token(nip, ["InvoiceRead"], description="made by hand in the app")
            self.hand_made[made.reference_number] = nip
            foreign = self.sim.mint_token(
                nip,
                ["InvoiceRead"],
                description=f"[ksefctl owner={OTHER_OWNER} token=erp id={marker.new_nonce()}]",
            )
            self.hand_made[foreign.reference_number] = nip

    def manifest(self, owner: str, contexts: list[str], name: str | None = None) -> Path:
        entries = "\n".join(f'    - nip: "{nip}"' for nip in contexts)
        tokens = textwrap.dedent(
            """\
              defaults:
                tokens:
                  - name: erp
                    permissions: [InvoiceRead, InvoiceWrite]
                    rotateEvery: 1d
                  - name: reader
                    permissions: [InvoiceRead]
                    rotateEvery: 1d
                  - name: writer
                    permissions: [InvoiceWrite]
                    rotateEvery: 1d
              contexts:
            """
        )
        body = manifest_header(owner, self.sim.base_url, self.mount)
        body += textwrap.indent(tokens, "  ")
        path = self.directory / (name or f"{owner}.yaml")
        path.write_text(body + entries + "\n")
        return path

    def apply_argv(self, manifest: Path, *extra: str) -> list[str]:
        return [
            "apply",
            "-f",
            str(manifest),
            "--auto-approve",
            "--lock-ttl",
            str(self.lock_ttl),
            "--activation-timeout",
            "20",
            *extra,
        ]

    def apply(self, manifest: Path, *extra: str, **kwargs: Any) -> Run:
        return run_cli(self.apply_argv(manifest, *extra), self.env, **kwargs)

    def converge(self, manifest: Path, max_runs: int = 6) -> int:
        """Plain re-runs of apply until one finds nothing to do; returns how many runs
        had work (or failed) before that one.

        A run exiting 0 is not enough: some repairs take two steps by design (a token
        that ended Failed is replaced first; its Active predecessor is revoked next run).
        """
        for runs in range(max_runs):
            result = self.apply(manifest)
            assert "Traceback" not in result.err, result
            if result.code == 0 and "No changes" in result.out:
                return runs
            self.rerun_errors.update(
                line.split(": ", 1)[-1][:80] for line in result.err.splitlines() if "Error" in line
            )
        raise AssertionError(f"apply did not converge in {max_runs} runs:\n{result}")

    def assert_no_changes(self, manifest: Path) -> None:
        result = run_cli(["plan", "-f", str(manifest), "--detailed-exitcode"], self.env)
        assert result.code == 0 and "No changes" in result.out, result

    # -- per-context counters on the simulator side (kill triggers) ----------------

    def instrument(self) -> None:
        """Count requests and created tokens per context by wrapping the in-process
        simulator, so concurrent runs for different contexts can each pick their moment."""
        simulator = self.sim.running.simulator
        count, add_token = simulator.count, simulator.store.add_token

        def counted(route: str, context: Any) -> None:
            if context is not None:
                self.requests[(route.split(" ")[0], context[1])] += 1
            count(route, context)

        def added(token: Any) -> None:
            add_token(token)
            self.created[token.context[1]] += 1

        simulator.count = counted  # type: ignore[method-assign]
        simulator.store.add_token = added  # type: ignore[method-assign]

    # -- what KSeF and Vault hold ---------------------------------------------

    def tokens(self, nip: str) -> list[dict[str, Any]]:
        """Every token of the context, any status (as its owner sees them)."""
        session = self.sim.owner_session(nip)
        found: list[dict[str, Any]] = []
        with self.sim.client(session.headers, injected_faults=True) as http:
            params: dict[str, Any] = {"pageSize": 100}
            headers: dict[str, str] = {}
            while True:
                response = http.get("/tokens", params=params, headers=headers)
                response.raise_for_status()
                page = response.json()
                found += page["tokens"]
                if not page.get("continuationToken"):
                    return found
                headers = {"x-continuation-token": page["continuationToken"]}

    def secret_versions(self, nip: str, token: str) -> tuple[dict[str, Any] | None, list[str]]:
        """(current data or None, referenceNumbers of every readable version, oldest first)."""
        vault = self.vault
        path = f"ksef/sim/{nip}/{token}"
        try:
            metadata = vault.secrets.kv.v2.read_secret_metadata(path=path, mount_point=self.mount)
        except hvac.exceptions.InvalidPath:
            return None, []
        versions = metadata["data"]["versions"]
        numbers = sorted(int(v) for v in versions)
        # KV v2 numbers versions itself; a gap would mean history was destroyed.
        assert numbers == list(range(numbers[0], numbers[-1] + 1)), numbers
        references: list[str] = []
        by_version: dict[int, str] = {}
        current: dict[str, Any] | None = None
        for number in numbers:
            if versions[str(number)]["deletion_time"] or versions[str(number)]["destroyed"]:
                continue
            data = vault.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.mount, version=number, raise_on_deleted_version=True
            )["data"]["data"]
            by_version[number] = data["referenceNumber"]
            source = data.get("restoredFrom")
            # A rollback after a Failed successor repeats its source version on purpose.
            if source is None or by_version.get(int(source)) != data["referenceNumber"]:
                references.append(data["referenceNumber"])
            if number == numbers[-1]:
                current = data
        return current, references

    def check_invariants(self, owner: str, contexts: list[str]) -> dict[str, int]:
        """Assert the promises of SPEC principle 3 and 5; return counts for the figures."""
        lost = orphans = overwritten = 0
        problems: list[str] = []
        names = ("erp", "reader", "writer")
        for nip in contexts:
            listed = self.tokens(nip)
            live = [t for t in listed if t["status"] in ("Pending", "Active")]
            ours: dict[str, list[dict[str, Any]]] = {}
            for token in live:
                found = marker.decode(token["description"])
                if found is not None and found.owner == owner:
                    ours.setdefault(found.token, []).append(token)
            stored_refs: set[str] = set()
            for name in names:
                current, history = self.secret_versions(nip, name)
                if len(set(history)) != len(history):
                    overwritten += 1
                if current is None:
                    lost += 1
                    continue
                stored_refs.add(current["referenceNumber"])
                matching = [t for t in ours.get(name, []) if t["status"] == "Active"]
                if [t["referenceNumber"] for t in matching] != [current["referenceNumber"]]:
                    lost += 1
                    statuses = {t["referenceNumber"]: t["status"] for t in listed}
                    problems.append(
                        f"{nip}/{name}: Vault holds {current['referenceNumber']} "
                        f"({statuses.get(current['referenceNumber'])}), KSeF has Active "
                        f"{[t['referenceNumber'] for t in matching]}"
                    )
                    continue
                # The stored value is the real token: it logs in to its context.
                self.sim.login_with_token(current["token"], ("Nip", nip))
            orphans += sum(
                1
                for group in ours.values()
                for t in group
                if t["referenceNumber"] not in stored_refs
            )
            untouched = {t["referenceNumber"]: t["status"] for t in listed}
            for reference, where in self.hand_made.items():
                if where == nip:
                    assert untouched.get(reference) == "Active", (reference, untouched)
        assert (lost, orphans, overwritten) == (0, 0, 0), (
            f"{owner}: {lost} tokens lost, {orphans} orphans Active, "
            f"{overwritten} paths with a reused version\n" + "\n".join(problems[:5])
        )
        return {"lost": lost, "orphans": orphans, "overwritten": overwritten}


def iter_chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
