"""ksefctl at scale: N contexts × 3 tokens against the simulator and OpenBao.

Starts ``ksefctl sim`` (per-request latency, documented rate limits, a small
activation delay) and an OpenBao dev server as subprocesses, gives every
context its own owner certificate (a self-signed EC company seal with
``VATPL-<nip>``, stored in Vault at ``ksef-admin/<nip>`` — how one owns a NIP
on KSeF TEST; EC because signing and verifying P-256 is cheaper than RSA), and
measures in one run:

1. cold ``apply`` (3 × N tokens created; full logins, sessions cached in Vault),
2. a no-op ``plan --no-session-cache`` (``plan-cold``: full login, session ended),
3. a no-op ``plan`` resuming the cached sessions (one refresh per context),
4. ``rotate --no-overlap`` of every token (create, store, wait Active, revoke the old one),
5. the grants phases (``grants-apply``, ``grants-plan``),
6. ``certs-apply``: a CertificatePolicy enrols one KSeF certificate per context (key in
   memory, stored in Vault), then ``certs-plan``, its no-op plan (one query per subject),

each as wall time, KSeF requests per context (the simulator's /_sim/stats),
peak RSS of the ksefctl process (``wait4`` rusage), CPU seconds spent by
ksefctl, the simulator and OpenBao (which resource bounds the phase), and the
ratio to

(a) the lower bound: ``latency × chain × ceil(N / parallelism)`` (+ the
    activation delay once per wave for apply and rotate), where *chain* is the
    longest sequence of requests one context must make one after another
    (documented in CHAINS below); and, separately, the floor set by KSeF's
    per-IP limit on unauthenticated login calls (POST /auth/challenge and the
    signed request: 60/s each per client IP, every endpoint with its own
    counter as limity_limity-api.md says), which no parallelism can beat
    from one machine;
(b) a sequential baseline: the same work done context after context with
    plain synchronous httpx calls, the way one scripts it by hand.  It runs on
    ``--baseline-contexts`` separate contexts and is extrapolated linearly to N.

Prints a table and writes benchmarks/results/scale-<timestamp>.json.

    .venv/bin/python benchmarks/scale.py [--contexts 1000] [--latency-ms 50]
        [--parallelism P] [--activation-delay 0.2] [--quick] [--phases apply,plan,rotate]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ksefctl.ksef.xades_signing import build_auth_request, load_identity, sign_auth_request  # noqa: E402
from ksefctl.openbao import DevServer, start_dev_server  # noqa: E402
from ksefctl.testcert import make_seal_certificate  # noqa: E402

MOUNT = "bench"
TOKENS = (
    ("erp", ["InvoiceRead", "InvoiceWrite"]),
    ("reader", ["InvoiceRead"]),
    ("auditor", ["CredentialsRead"]),
)
# The longest run of requests one context must make one after another.
# login = POST /auth/challenge, POST /auth/xades-signature, GET /auth/{ref}, POST /auth/token/redeem.
# Independent requests of one context (the three POST /tokens) overlap, so they count once.
# A cached session is resumed with one POST /auth/token/refresh and left open.
CHAINS: dict[str, tuple[int, str]] = {
    "apply": (
        8,
        "login(4) + GET /tokens + GET /rate-limits + POST /tokens ×3 ‖ + [activation] "
        "+ GET /tokens/{ref}",
    ),
    "plan-cold": (6, "login(4) + GET /tokens + DELETE /auth/sessions/current"),
    "plan": (2, "POST /auth/token/refresh + GET /tokens"),
    "grants-apply": (
        9,
        "refresh + GET /tokens + POST /permissions/query/{persons,authorizations}/grants ‖ "
        "+ GET /rate-limits + (POST …/persons/grants + GET /permissions/operations/{ref}) "
        "+ (POST …/entities/grants + GET …/operations/{ref})",
    ),
    "grants-plan": (
        3,
        "POST /auth/token/refresh + GET /tokens + POST /permissions/query/{persons,"
        "authorizations}/grants ‖",
    ),
    "certs-apply": (
        11,
        "login(4) + POST /certificates/query + GET /rate-limits + GET /certificates/limits "
        "+ GET …/enrollments/data + POST …/enrollments + [enrolment] + GET …/enrollments/{ref} "
        "+ POST /certificates/retrieve",
    ),
    "certs-plan": (2, "POST /auth/token/refresh + POST /certificates/query"),
    "rotate": (
        7,
        "refresh + GET /tokens + GET /rate-limits + POST /tokens ×3 ‖ + [activation] "
        "+ GET /tokens/{ref} + DELETE /tokens/{old} ×3 ‖",
    ),
}
# Phases that log in fully (the others resume cached sessions), and the
# sequential baseline each is compared with (a hand-written script logs in every time).
FULL_LOGIN = ("apply", "plan-cold", "certs-apply")
BASELINE_OF = {"apply": "apply", "plan-cold": "plan", "plan": "plan", "rotate": "rotate"}
# Requests per login that one per-IP counter sees (no context is known yet):
# challenge and signed request have a counter each, so one login costs each one call.
UNATTRIBUTED_PER_LOGIN = 1
AUTH_PER_SECOND = 60


def nips(count: int, seed: int) -> list[str]:
    """Distinct NIPs with valid check digits."""
    rng = random.Random(seed)
    weights = (6, 5, 7, 2, 3, 4, 5, 6, 7)
    found: list[str] = []
    seen: set[str] = set()
    while len(found) < count:
        digits = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(8)]
        check = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        # KSeF's NIP pattern also rules out "00" as the second and third digits.
        if check == 10 or digits[1] == digits[2] == 0:
            continue
        nip = "".join(map(str, digits)) + str(check)
        if nip not in seen:
            seen.add(nip)
            found.append(nip)
    return found


# -- processes -----------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a running process (and its waited-for children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / ticks


@dataclass
class Simulator:
    process: subprocess.Popen[bytes]
    base_url: str

    @property
    def admin(self) -> str:
        return self.base_url.removesuffix("/v2") + "/_sim"


@contextmanager
def simulator(workdir: Path, latency_ms: float, activation_delay: float) -> Iterator[Simulator]:
    config = workdir / "sim.json"
    config.write_text(
        json.dumps(
            {
                "faults": {
                    "latency_ms": latency_ms,
                    "activation_delay_s": activation_delay,
                    "revocation_delay_s": activation_delay,
                },
            }
        )
    )
    log = open(workdir / "sim.log", "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [sys.executable, "-m", "ksefctl", "sim", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        if not line.startswith("http"):
            raise RuntimeError(f"simulator did not start: {line!r} (see {workdir / 'sim.log'})")
        yield Simulator(process, line)
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def seed_vault(bao: DevServer, contexts: list[str]) -> float:
    """Enable the KV mount and store one owner certificate per NIP; returns seconds taken."""
    started = time.perf_counter()
    headers = {"X-Vault-Token": bao.root_token}
    with httpx.Client(base_url=bao.address, headers=headers, timeout=30) as http:
        http.post(f"/v1/sys/mounts/{MOUNT}", json={"type": "kv", "options": {"version": "2"}})

    async def write_all() -> None:
        gate = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=bao.address, headers=headers, timeout=30) as http:

            async def one(nip: str) -> None:
                certificate, key = make_seal_certificate(nip, key_type="ec")
                async with gate:
                    response = await http.post(
                        f"/v1/{MOUNT}/data/ksef-admin/{nip}",
                        json={
                            "data": {
                                "certificate": certificate.decode(),
                                "privateKey": key.decode(),
                            }
                        },
                    )
                    response.raise_for_status()

            await asyncio.gather(*(one(nip) for nip in contexts))

    asyncio.run(write_all())
    return time.perf_counter() - started


# The grants phases: every context grants a bookkeeper and an accounting office.
GRANTS = (
    "    grants:",
    '      - person: {pesel: "15062788702", firstName: Anna, lastName: Kowalska}',
    "        permissions: [InvoiceRead, InvoiceWrite]",
    "        description: bookkeeping",
    '      - entity: {nip: "5260181596", name: "Biuro Rachunkowe Sp. z o.o."}',
    "        permissions: [InvoiceRead]",
    "        canDelegate: true",
)


def write_manifest(path: Path, base_url: str, contexts: list[str], *, grants: bool = False) -> None:
    lines = [
        "apiVersion: ksefctl/v1",
        "kind: TokenPolicy",
        "metadata:",
        "  name: bench",
        "spec:",
        "  ksef:",
        f'    environment: "{base_url}"',
        "    name: sim",
        "  vault:",
        f"    mount: {MOUNT}",
        '    path: "ksef/{environment}/{nip}/{token}"',
        "  auth:",
        "    certificate:",
        '      vault: "ksef-admin/{nip}"',
        "  defaults:",
        "    tokens:",
    ]
    for name, permissions in TOKENS:
        lines += [
            f"      - name: {name}",
            f"        permissions: [{', '.join(permissions)}]",
            "        rotateEvery: 90d",
        ]
    if grants:
        lines += GRANTS
    lines.append("  contexts:")
    lines += [f'    - nip: "{nip}"' for nip in contexts]
    path.write_text("\n".join(lines) + "\n")


def write_certificate_manifest(path: Path, base_url: str, contexts: list[str]) -> None:
    lines = [
        "apiVersion: ksefctl/v1",
        "kind: CertificatePolicy",
        "metadata:",
        "  name: bench-certs",
        "spec:",
        "  ksef:",
        f'    environment: "{base_url}"',
        "    name: sim",
        "  vault:",
        f"    mount: {MOUNT}",
        "  auth:",
        "    certificate:",
        '      vault: "ksef-admin/{nip}"',
        "  defaults:",
        "    certificates:",
        "      - name: login",
        "  contexts:",
        *(f'    - nip: "{nip}"' for nip in contexts),
    ]
    path.write_text("\n".join(lines) + "\n")


# -- one measured phase --------------------------------------------------------


@dataclass
class Phase:
    name: str
    wall_s: float
    exit_code: int
    requests: int
    requests_per_context: float
    throttled: int
    by_endpoint: dict[str, int]
    peak_rss_mb: float
    cpu_ksefctl_s: float
    cpu_sim_s: float
    cpu_vault_s: float
    chain: int
    lower_bound_latency_s: float
    lower_bound_auth_limit_s: float
    lower_bound_s: float
    ratio_to_lower_bound: float
    baseline_s: float | None = None
    speedup_vs_baseline: float | None = None
    bound_by: str = ""


def run_phase(
    name: str,
    argv: list[str],
    *,
    sim: Simulator,
    bao: DevServer,
    contexts: int,
    latency_s: float,
    activation_delay: float,
    parallelism: int,
    workdir: Path,
    expect: tuple[int, ...] = (0,),
    profile: Path | None = None,
) -> Phase:
    httpx.post(f"{sim.admin}/stats/reset").raise_for_status()
    env = dict(os.environ, VAULT_ADDR=bao.address, VAULT_TOKEN=bao.root_token)
    env["KSEFCTL_PARALLELISM"] = str(parallelism)
    sim_cpu, vault_cpu = cpu_seconds(sim.process.pid), cpu_seconds(bao.process.pid)
    out = open(workdir / f"{name}.out", "wb")  # noqa: SIM115
    started = time.perf_counter()
    # --profile samples both sides with py-spy (the run gets a little slower).
    spy = str(Path(sys.executable).with_name("py-spy"))
    client_spy: list[str] = []
    sim_spy: subprocess.Popen[bytes] | None = None
    if profile:
        raw = ["-f", "raw", "-r", "200", "--nonblocking"]
        client_spy = [spy, "record", *raw, "--threads", "-o", str(profile / f"{name}-client.txt")]
        client_spy.append("--")
        sim_spy = subprocess.Popen(
            [
                spy,
                "record",
                *raw,
                "-p",
                str(sim.process.pid),
                "-o",
                str(profile / f"{name}-sim.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    process = subprocess.Popen(
        [*client_spy, sys.executable, "-m", "ksefctl", *argv],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    # wait4 gives this child's own rusage: peak RSS and CPU of exactly this ksefctl run.
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    out.close()
    if sim_spy is not None:
        sim_spy.send_signal(2)  # py-spy writes its samples on SIGINT
        sim_spy.wait(30)
    sim_cpu = cpu_seconds(sim.process.pid) - sim_cpu
    vault_cpu = cpu_seconds(bao.process.pid) - vault_cpu
    if process.returncode not in expect:
        tail = (workdir / f"{name}.out").read_text()[-3000:]
        raise SystemExit(f"{name}: ksefctl exited {process.returncode}\n{tail}")
    stats = httpx.get(f"{sim.admin}/stats").json()
    by_endpoint: dict[str, int] = stats["requests"]
    total = sum(by_endpoint.values())
    chain, _ = CHAINS[name]
    waves = math.ceil(contexts / parallelism)
    waits = activation_delay if name in ("apply", "rotate", "certs-apply") else 0.0
    lb_latency = (latency_s * chain + waits) * waves
    lb_auth = contexts * UNATTRIBUTED_PER_LOGIN / AUTH_PER_SECOND if name in FULL_LOGIN else 0.0
    lower = max(lb_latency, lb_auth)
    cpu_k = usage.ru_utime + usage.ru_stime
    return Phase(
        name=name,
        wall_s=round(wall, 2),
        exit_code=process.returncode,
        requests=total,
        requests_per_context=round(total / contexts, 2),
        throttled=int(stats["throttled"]),
        by_endpoint=by_endpoint,
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        cpu_ksefctl_s=round(cpu_k, 2),
        cpu_sim_s=round(sim_cpu, 2),
        cpu_vault_s=round(vault_cpu, 2),
        chain=chain,
        lower_bound_latency_s=round(lb_latency, 2),
        lower_bound_auth_limit_s=round(lb_auth, 2),
        lower_bound_s=round(lower, 2),
        ratio_to_lower_bound=round(wall / lower, 2),
        bound_by=bound_by(wall, cpu_k, sim_cpu, lb_latency, lb_auth),
    )


def bound_by(wall: float, cpu_client: float, cpu_sim: float, lb_lat: float, lb_auth: float) -> str:
    """The resource closest to saturation over the phase (each process is single-threaded)."""
    shares = {
        "client CPU": cpu_client / wall,
        "simulator CPU": cpu_sim / wall,
        "latency": lb_lat / wall,
        "auth limit per IP": lb_auth / wall,
    }
    top = max(shares, key=lambda k: shares[k])
    return f"{top} ({shares[top]:.0%})"


def profile_summary(path: Path, top: int = 12) -> list[tuple[str, float]]:
    """The functions that were on CPU most (self time), from py-spy's collapsed stacks."""
    counts: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack:
            continue
        n = int(number)
        total += n
        leaf = stack.rsplit(";", 1)[-1]
        counts[leaf] = counts.get(leaf, 0) + n
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return [(frame, round(n / max(total, 1), 3)) for frame, n in ranked]


# -- the sequential baseline ---------------------------------------------------


class Baseline:
    """What a user writes by hand: a loop over contexts with synchronous httpx calls."""

    def __init__(self, base_url: str, bao: DevServer) -> None:
        self.ksef = httpx.Client(base_url=base_url, timeout=30)
        self.vault = httpx.Client(
            base_url=bao.address, headers={"X-Vault-Token": bao.root_token}, timeout=30
        )

    def close(self) -> None:
        self.ksef.close()
        self.vault.close()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        while True:
            response = self.ksef.request(method, path, **kwargs)
            if response.status_code == 429:  # a careful script honours Retry-After
                time.sleep(float(response.headers.get("retry-after", "1")))
                continue
            if response.status_code >= 400:
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:200]}")
            return response

    def login(self, nip: str) -> dict[str, str]:
        stored = self.vault.get(f"/v1/{MOUNT}/data/ksef-admin/{nip}").json()["data"]["data"]
        identity = load_identity(stored["certificate"], stored["privateKey"])
        challenge = self.call("POST", "/auth/challenge").json()["challenge"]
        signed = sign_auth_request(build_auth_request(challenge, "Nip", nip), identity)
        started = self.call(
            "POST",
            "/auth/xades-signature",
            content=signed,
            headers={"Content-Type": "application/xml"},
        ).json()
        bearer = {"Authorization": f"Bearer {started['authenticationToken']['token']}"}
        while (
            self.call("GET", f"/auth/{started['referenceNumber']}", headers=bearer).json()[
                "status"
            ]["code"]
            == 100
        ):
            time.sleep(0.1)
        tokens = self.call("POST", "/auth/token/redeem", headers=bearer).json()
        return {"Authorization": f"Bearer {tokens['accessToken']['token']}"}

    def list_tokens(self, auth: dict[str, str]) -> list[dict[str, Any]]:
        params = {"pageSize": 100, "status": ["Pending", "Active"]}
        listed: list[dict[str, Any]] = self.call(
            "GET", "/tokens", params=params, headers=auth
        ).json()["tokens"]
        return listed

    def create(self, auth: dict[str, str], nip: str, name: str, permissions: list[str]) -> str:
        body = {
            "permissions": permissions,
            "description": f"baseline {name} {secrets.token_hex(4)}",
        }
        created = self.call("POST", "/tokens", json=body, headers=auth).json()
        self.vault.post(
            f"/v1/{MOUNT}/data/baseline/{nip}/{name}",
            json={
                "data": {"token": created["token"], "referenceNumber": created["referenceNumber"]}
            },
        ).raise_for_status()
        while (
            self.call("GET", f"/tokens/{created['referenceNumber']}", headers=auth).json()["status"]
            == "Pending"
        ):
            time.sleep(0.1)
        return str(created["referenceNumber"])

    def apply(self, nip: str) -> None:
        auth = self.login(nip)
        self.list_tokens(auth)
        for name, permissions in TOKENS:
            self.create(auth, nip, name, permissions)
        self.call("DELETE", "/auth/sessions/current", headers=auth)

    def plan(self, nip: str) -> None:
        auth = self.login(nip)
        self.list_tokens(auth)
        for name, _ in TOKENS:
            self.vault.get(f"/v1/{MOUNT}/data/baseline/{nip}/{name}").raise_for_status()
        self.call("DELETE", "/auth/sessions/current", headers=auth)

    def rotate(self, nip: str) -> None:
        auth = self.login(nip)
        old = self.list_tokens(auth)
        for name, permissions in TOKENS:
            self.create(auth, nip, name, permissions)
        for token in old:
            self.call("DELETE", f"/tokens/{token['referenceNumber']}", headers=auth)
        self.call("DELETE", "/auth/sessions/current", headers=auth)

    def measure(self, phase: str, contexts: list[str]) -> float:
        started = time.perf_counter()
        for nip in contexts:
            getattr(self, phase)(nip)
        return time.perf_counter() - started


# -- report --------------------------------------------------------------------


def table(phases: list[Phase]) -> str:
    header = (
        f"{'phase':<9} {'wall s':>7} {'req/ctx':>7} {'429':>4} {'RSS MB':>7} "
        f"{'lower s':>8} {'×lower':>7} {'baseline s':>11} {'speedup':>8}  "
        f"{'cpu cli/sim/vault s':>20}  bound by"
    )
    rows = [header, "-" * len(header)]
    for p in phases:
        baseline = f"{p.baseline_s:>11.1f}" if p.baseline_s is not None else f"{'-':>11}"
        speedup = (
            f"{p.speedup_vs_baseline:>7.1f}×" if p.speedup_vs_baseline is not None else f"{'-':>8}"
        )
        cpu = f"{p.cpu_ksefctl_s:.1f}/{p.cpu_sim_s:.1f}/{p.cpu_vault_s:.1f}"
        rows.append(
            f"{p.name:<9} {p.wall_s:>7.2f} {p.requests_per_context:>7.2f} {p.throttled:>4} "
            f"{p.peak_rss_mb:>7.1f} {p.lower_bound_s:>8.2f} {p.ratio_to_lower_bound:>6.2f}× "
            f"{baseline} {speedup}  {cpu:>20}  {p.bound_by}"
        )
    return "\n".join(rows)


@dataclass
class Report:
    started: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    chains: dict[str, str]
    seed_vault_s: float
    baseline: dict[str, Any] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contexts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--parallelism", type=int, default=None, help="KSEFCTL_PARALLELISM (default: ksefctl's)"
    )
    parser.add_argument("--activation-delay", type=float, default=0.2, metavar="SECONDS")
    parser.add_argument(
        "--baseline-contexts", type=int, default=10, help="0: no sequential baseline"
    )
    parser.add_argument(
        "--phases",
        default="apply,plan-cold,plan,rotate,grants-apply,grants-plan,certs-apply,certs-plan",
    )
    parser.add_argument("--quick", action="store_true", help="50 contexts, 3 baseline contexts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample each phase with py-spy into DIR (client and simulator)",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.contexts = min(args.contexts, 50)
        args.baseline_contexts = min(args.baseline_contexts, 3)
    if args.parallelism is None:
        from ksefctl.reconcile.engine import RunSettings

        args.parallelism = RunSettings().parallelism
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    latency_s = args.latency_ms / 1000
    all_nips = nips(args.contexts + args.baseline_contexts, args.seed)
    contexts, baseline_nips = all_nips[: args.contexts], all_nips[args.contexts :]

    report = Report(
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": os.getloadavg(),
        },
        settings={
            "contexts": args.contexts,
            "tokens_per_context": len(TOKENS),
            "latency_ms": args.latency_ms,
            "parallelism": args.parallelism,
            "activation_delay_s": args.activation_delay,
            "baseline_contexts": args.baseline_contexts,
            "auth": "XAdES, one self-signed EC P-256 company seal per NIP (owner), in Vault",
        },
        chains={k: f"{n} requests: {text}" for k, (n, text) in CHAINS.items()},
        seed_vault_s=0.0,
    )
    with tempfile.TemporaryDirectory(prefix="ksefctl-scale-") as tmp:
        workdir = Path(tmp)
        with simulator(workdir, args.latency_ms, args.activation_delay) as sim:
            bao = start_dev_server(root_token=f"bench-{secrets.token_hex(8)}")
            try:
                report.seed_vault_s = round(seed_vault(bao, all_nips), 1)
                manifest = workdir / "tokens.yaml"
                write_manifest(manifest, sim.base_url, contexts)
                certificates = workdir / "certificates.yaml"
                write_certificate_manifest(certificates, sim.base_url, contexts)
                # Enrolments take as long as activations, so both phases wait alike.
                httpx.put(
                    f"{sim.admin}/faults", json={"enrollment_delay_s": args.activation_delay}
                ).raise_for_status()
                with_grants = workdir / "grants.yaml"
                write_manifest(with_grants, sim.base_url, contexts, grants=True)
                commands = {
                    "apply": ["apply", "-f", str(manifest), "--auto-approve"],
                    "plan": ["plan", "-f", str(manifest), "--detailed-exitcode"],
                    "plan-cold": [
                        "plan",
                        "-f",
                        str(manifest),
                        "--detailed-exitcode",
                        "--no-session-cache",
                    ],
                    "rotate": ["rotate", "-f", str(manifest), "--auto-approve", "--no-overlap"],
                    # After apply: grants given in every context, then a no-op plan of them.
                    "grants-apply": ["apply", "-f", str(with_grants), "--auto-approve"],
                    "grants-plan": ["plan", "-f", str(with_grants), "--detailed-exitcode"],
                    # A CertificatePolicy (its own owner): one certificate enrolled per
                    # context, then a no-op plan — at most one query per subject after login.
                    "certs-apply": ["apply", "-f", str(certificates), "--auto-approve"],
                    "certs-plan": ["plan", "-f", str(certificates), "--detailed-exitcode"],
                }
                results: list[Phase] = []
                for name in phases:
                    print(f"… {name} ({args.contexts} contexts)", file=sys.stderr, flush=True)
                    results.append(
                        run_phase(
                            name,
                            commands[name],
                            sim=sim,
                            bao=bao,
                            contexts=args.contexts,
                            latency_s=latency_s,
                            activation_delay=args.activation_delay,
                            parallelism=args.parallelism,
                            workdir=workdir,
                            profile=args.profile,
                            # Without a cold apply first, a plan has changes to show.
                            expect=(0, 2) if "apply" not in phases else (0,),
                        )
                    )
                print(f"… sequential baseline on {len(baseline_nips)} contexts", file=sys.stderr)
                baseline = Baseline(sim.base_url, bao)
                # The baseline's plan and rotate need the tokens its apply made.
                wanted = {"apply", "plan", "rotate"} if baseline_nips else set()
                try:
                    for name in sorted(wanted):
                        seconds = baseline.measure(name, baseline_nips)
                        per_context = seconds / len(baseline_nips)
                        report.baseline[name] = {
                            "measured_s": round(seconds, 2),
                            "contexts": len(baseline_nips),
                            "per_context_s": round(per_context, 3),
                            "extrapolated_s": round(per_context * args.contexts, 1),
                        }
                finally:
                    baseline.close()
                for phase in results if baseline_nips else []:
                    if phase.name not in BASELINE_OF:
                        continue  # no hand-written baseline for grants
                    extrapolated = report.baseline[BASELINE_OF[phase.name]]["extrapolated_s"]
                    phase.baseline_s = extrapolated
                    phase.speedup_vs_baseline = round(extrapolated / phase.wall_s, 1)
                report.phases = [asdict(p) for p in results]
            finally:
                bao.stop()
    print(
        f"\nksefctl at scale: {args.contexts} contexts × {len(TOKENS)} tokens, "
        f"latency {args.latency_ms:g} ms, parallelism {args.parallelism}, "
        f"activation {args.activation_delay:g} s, {os.cpu_count()} CPUs"
    )
    print(table(results))
    print("\nlower bound = max(latency × chain × ceil(N/parallelism) [+ activation per wave],")
    print(
        f"                  N × {UNATTRIBUTED_PER_LOGIN} call per unattributed login endpoint / "
        f"{AUTH_PER_SECOND} per s per IP)"
    )
    for name, text in report.chains.items():
        print(f"  chain {name}: {text}")
    print(
        f"baseline: sequential httpx loop on {args.baseline_contexts} contexts, "
        f"extrapolated linearly to {args.contexts}"
    )
    out = args.out or ROOT / "benchmarks" / "results" / (
        f"scale-{args.contexts}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(f"JSON: {out}")


if __name__ == "__main__":
    main()
