"""The one ``sim`` fixture: a fresh in-process KSeF simulator per test, as a
:class:`SimHandle` with helpers for seeding owners, tokens, permissions and faults.

Registered for the whole suite by ``pytest_plugins`` in tests/conftest.py.  A
test directory that needs other settings overrides ``sim_config`` (tests/ksef
does).  Every /v2 exchange made through ``SimHandle.client()`` is checked
against the official contract (tests/contract.py) when
../shared/ksef/open-api.json exists; clients made elsewhere (a ``KsefClient``)
bring their own checker.
"""

from __future__ import annotations

import base64
import functools
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ksefctl.sim.config import SimConfig
from ksefctl.sim.server import RunningSimulator, start_in_thread
from ksefctl.sim.service import Simulator

ALL_PERMISSIONS = [
    "InvoiceRead",
    "InvoiceWrite",
    "CredentialsRead",
    "CredentialsManage",
    "SubunitManage",
    "EnforcementOperations",
    "Introspection",
]
OWNER_NIP = "5265877635"
# Simulators whose fixture has ended, still winding down (joined when the session ends).
_STOPPING: list[threading.Thread] = []
OTHER_NIP = "7762811692"


@dataclass(frozen=True)
class MintedToken:
    reference_number: str
    token: str


@dataclass(frozen=True)
class Session:
    reference_number: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class SimHandle:
    running: RunningSimulator
    checker: Any = None  # tests.contract.ContractChecker, when the contract is available
    _clients: list[httpx.Client] = field(default_factory=list)
    _admin: httpx.Client | None = None

    @property
    def base_url(self) -> str:
        return self.running.base_url

    @property
    def admin_url(self) -> str:
        return self.running.admin_url

    @property
    def simulator(self) -> Simulator:
        """The in-process simulator behind the server (its config, store and clock)."""
        return self.running.simulator

    def client(
        self,
        headers: dict[str, str] | None = None,
        *,
        invalid_requests: bool = False,
        injected_faults: bool = False,
    ) -> httpx.Client:
        """An HTTP client for /v2 whose every exchange is contract-checked.

        ``invalid_requests`` skips the request check, for tests that send bad input on purpose
        (the responses are still checked); ``injected_faults`` skips all checks, for tests
        that make the simulator answer outside the contract (a 500, a cut connection).
        """
        hooks = self.checker.sync_hooks() if self.checker is not None else {}
        if invalid_requests:
            hooks.pop("request", None)
        if injected_faults:
            hooks = {}
        client = httpx.Client(
            base_url=self.base_url, headers=headers, event_hooks=hooks, timeout=10, verify=_tls()
        )
        self._clients.append(client)
        return client

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the simulator's own /_sim API (outside the KSeF contract)."""
        if self._admin is None:
            self._admin = httpx.Client(base_url=self.admin_url, timeout=10, verify=_tls())
            self._clients.append(self._admin)
        response = self._admin.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    # faults, limits, clock, statistics
    def set_faults(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("PUT", "/faults", changes)
        return result

    def set_limits(self, **settings: Any) -> None:
        self.admin("PUT", "/rate-limits", settings)

    def advance_clock(self, seconds: float) -> None:
        self.admin("POST", "/clock", {"advanceSeconds": seconds})

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "/stats")
        return result

    # seeding
    def mint_token(
        self,
        nip: str = OWNER_NIP,
        permissions: list[str] | None = None,
        *,
        context_type: str = "Nip",
        context_value: str | None = None,
        description: str = "minted for a test",
        active: bool = True,
        author: tuple[str, str] | None = None,
    ) -> MintedToken:
        """A KSeF token generated as if by the context's owner (Active at once by default)."""
        body: dict[str, Any] = {
            "context": {"type": context_type, "value": context_value or nip},
            "permissions": permissions or ALL_PERMISSIONS,
            "description": description,
            "active": active,
        }
        if author is not None:
            body["author"] = {"type": author[0], "value": author[1]}
        data = self.admin("POST", "/tokens", body)
        return MintedToken(data["referenceNumber"], data["token"])

    def session_for(
        self,
        identity: tuple[str, str] = ("Nip", OWNER_NIP),
        context: tuple[str, str] = ("Nip", OWNER_NIP),
    ) -> Session:
        """Access/refresh tokens for any identity in any context, skipping the login ceremony."""
        data = self.admin(
            "POST",
            "/sessions",
            {
                "context": {"type": context[0], "value": context[1]},
                "identity": {"type": identity[0], "value": identity[1]},
            },
        )
        return Session(
            data["referenceNumber"], data["accessToken"]["token"], data["refreshToken"]["token"]
        )

    def owner_session(self, nip: str = OWNER_NIP) -> Session:
        return self.session_for(("Nip", nip), ("Nip", nip))

    def grant(self, nip: str, identity: tuple[str, str], permissions: list[str]) -> httpx.Response:
        """Grant permissions in a NIP context through the TEST endpoint /testdata/permissions."""
        return self.client().post(
            "/testdata/permissions",
            json={
                "contextIdentifier": {"type": "Nip", "value": nip},
                "authorizedIdentifier": {"type": identity[0], "value": identity[1]},
                "permissions": [
                    {"permissionType": p, "description": f"granted {p}"} for p in permissions
                ],
            },
        )

    # the real login flow
    def start_token_login(
        self,
        token: str,
        context: tuple[str, str] = ("Nip", OWNER_NIP),
        *,
        client: httpx.Client | None = None,
        timestamp_ms: int | None = None,
        challenge: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """POST /auth/ksef-token with a fresh (or given) challenge; returns the raw response."""
        return start_token_login(
            client or self.client(), token, context, timestamp_ms=timestamp_ms, challenge=challenge
        )

    def login_with_token(
        self, token: str, context: tuple[str, str] = ("Nip", OWNER_NIP)
    ) -> Session:
        client = self.client()
        started = self.start_token_login(token, context, client=client)
        assert started.status_code == 202, started.text
        reference = started.json()["referenceNumber"]
        auth = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
        status = poll_auth(client, reference, auth)
        assert status["code"] == 200, status
        tokens = client.post("/auth/token/redeem", headers=auth).json()
        return Session(reference, tokens["accessToken"]["token"], tokens["refreshToken"]["token"])

    def close(self, *, wait: bool = True) -> None:
        """Close the clients and stop the server; ``wait=False`` leaves the stopping (uvicorn
        takes ~0.2 s to wind down) to a background thread, joined at the end of the session.
        A test that restarts a simulator on its state file closes with the default."""
        for client in self._clients:
            client.close()
        if wait:
            self.running.stop()
            return
        stopping = threading.Thread(target=self.running.stop, name="ksef-sim-stop", daemon=True)
        stopping.start()
        _STOPPING.append(stopping)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: httpx builds a new one (~80 ms) per client otherwise."""
    return ssl.create_default_context()


def start_token_login(
    client: httpx.Client,
    token: str,
    context: tuple[str, str] = ("Nip", OWNER_NIP),
    *,
    timestamp_ms: int | None = None,
    challenge: dict[str, Any] | None = None,
) -> httpx.Response:
    certificates = client.get("/security/public-key-certificates").json()
    chosen = next(c for c in certificates if "KsefTokenEncryption" in c["usage"])
    key = x509.load_der_x509_certificate(base64.b64decode(chosen["certificate"])).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    challenge = challenge or client.post("/auth/challenge").json()
    stamp = challenge["timestampMs"] if timestamp_ms is None else timestamp_ms
    return client.post(
        "/auth/ksef-token",
        json={
            "challenge": challenge["challenge"],
            "contextIdentifier": {"type": context[0], "value": context[1]},
            "encryptedToken": encrypt(key, f"{token}|{stamp}"),
            "publicKeyId": chosen["publicKeyId"],
        },
    )


def encrypt(key: rsa.RSAPublicKey, text: str) -> str:
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    return base64.b64encode(key.encrypt(text.encode(), oaep)).decode()


def poll_auth(
    client: httpx.Client, reference: str, headers: dict[str, str], attempts: int = 500
) -> dict[str, Any]:
    """GET /auth/{ref} until the status leaves 100 (in progress)."""
    for _ in range(attempts):
        status: dict[str, Any] = client.get(f"/auth/{reference}", headers=headers).json()["status"]
        if status["code"] != 100:
            return status
    raise AssertionError(f"authentication {reference} still in progress")


def contract_checker() -> Any:
    """The shared ContractChecker, or None when ../shared/ksef/open-api.json is absent."""
    try:
        from tests.contract import ContractChecker

        return ContractChecker.load()
    except (ImportError, pytest.skip.Exception):
        return None


def start_sim(config: SimConfig | None = None, checker: Any = None) -> SimHandle:
    # Tests run fast by default: activation/revocation settle after 50 ms unless a test says otherwise.
    config = config or SimConfig()
    if config.faults.activation_delay_s == SimConfig().faults.activation_delay_s:
        config.faults.activation_delay_s = 0.05
        config.faults.revocation_delay_s = 0.05
        config.faults.enrollment_delay_s = 0.05
        config.faults.permission_delay_s = 0.05
    return SimHandle(start_in_thread(config), checker)


@pytest.fixture
def sim_config() -> SimConfig:
    """Override in a test module to start ``sim`` with other settings."""
    return SimConfig()


@pytest.fixture
def sim(sim_config: SimConfig) -> Iterator[SimHandle]:
    """A fresh simulator per test; contract violations fail the test at teardown."""
    handle = start_sim(sim_config, contract_checker())
    try:
        yield handle
    finally:
        handle.close(wait=False)  # nothing reuses its port or state: no need to wait
    if handle.checker is not None:
        handle.checker.assert_clean()


@pytest.fixture(scope="session", autouse=True)
def _simulators_stopped() -> Iterator[None]:
    """Every simulator stopped in the background has finished by the end of the session."""
    yield
    while _STOPPING:
        _STOPPING.pop().join(timeout=15)
