"""``ksefctl sim`` as a process: base URL first on stdout, state kept across a kill and restart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.simfixture import OWNER_NIP, poll_auth, start_token_login


@contextmanager
def sim_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ksefctl", "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline().strip()
        yield process, first_line
    finally:
        process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _login_and_list(base_url: str, token: str) -> list[str]:
    with httpx.Client(base_url=base_url, timeout=10) as api:
        started = start_token_login(api, token, ("Nip", OWNER_NIP))
        auth = {"Authorization": f"Bearer {started.json()['authenticationToken']['token']}"}
        assert poll_auth(api, started.json()["referenceNumber"], auth)["code"] == 200
        tokens = api.post("/auth/token/redeem", headers=auth).json()
        access = {"Authorization": f"Bearer {tokens['accessToken']['token']}"}
        listed = api.get("/tokens", headers=access).json()["tokens"]
        return [item["referenceNumber"] for item in listed]


def test_cli_prints_the_base_url_first_and_serves_there() -> None:
    with sim_process() as (_, first_line):
        assert first_line.startswith("http://127.0.0.1:") and first_line.endswith("/v2")
        response = httpx.get(f"{first_line}/security/public-key-certificates", timeout=10)
        usages = sorted(u for cert in response.json() for u in cert["usage"])
        assert usages == ["KsefTokenEncryption", "SymmetricKeyEncryption"]


def test_a_killed_simulator_restarted_on_its_state_file_keeps_every_token(tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite"
    with sim_process("--state", str(state)) as (_, base_url):
        admin = base_url.removesuffix("/v2") + "/_sim"
        minted = httpx.post(
            f"{admin}/tokens",
            json={
                "context": {"type": "Nip", "value": OWNER_NIP},
                "permissions": ["CredentialsRead"],
            },
            timeout=10,
        ).json()
        assert _login_and_list(base_url, minted["token"]) == [minted["referenceNumber"]]
        keys_before = httpx.get(f"{base_url}/security/public-key-certificates", timeout=10).json()
    # The process was SIGKILLed: nothing was flushed on the way out.
    with sim_process("--state", str(state)) as (_, base_url):
        assert _login_and_list(base_url, minted["token"]) == [minted["referenceNumber"]]
        keys_after = httpx.get(f"{base_url}/security/public-key-certificates", timeout=10).json()
    assert keys_after == keys_before
    secret = minted["token"].rsplit("|", 1)[1].encode()
    assert not any(secret in path.read_bytes() for path in tmp_path.glob("sim.sqlite*"))


def test_sigterm_stops_the_simulator_cleanly() -> None:
    with sim_process() as (process, first_line):
        assert first_line.endswith("/v2")
        process.terminate()
        assert process.wait(timeout=10) == 0
