"""Transport security of the KSeF connection, through the CLI: TLS verified by default,
a custom CA with --ca-bundle, plain http only to loopback, no credential sent elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.types import Receive, Scope, Send

from ksefctl.ksef.errors import InsecureEndpoint
from ksefctl.ksef.transport import check_base_url
from ksefctl.openbao import free_port
from ksefctl.sim.app import build_app
from tests.chaos.harness import ChaosWorld, nips, run_cli
from tests.conftest import Bao
from tests.simfixture import SimHandle


@contextlib.contextmanager
def serve(app: Any, **ssl: Any) -> Iterator[int]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **ssl)
    )
    server.config.install_signal_handlers = False  # type: ignore[attr-defined]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def certificate_authority(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate for localhost/127.0.0.1, server key) as PEM files."""
    now = datetime.datetime.now(datetime.UTC)

    def issue(subject: str, issuer: x509.Name | None, signer: Any, key: Any, ca: bool) -> Any:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = issue("test CA", None, ca_key, ca_key, True)
    server = issue("localhost", ca.subject, ca_key, server_key, False)
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def world(sim: SimHandle, bao: Bao, tmp_path: Path) -> ChaosWorld:
    sim.checker = None  # these tests reach the simulator's app through other servers
    world = ChaosWorld(sim, bao.address, bao.token, bao.mount, tmp_path)
    world.seed_contexts(nips(1, start=561_000_001))
    return world


def manifest_at(world: ChaosWorld, base_url: str) -> Path:
    path = world.manifest("acme", nips(1, start=561_000_001))
    path.write_text(path.read_text().replace(world.sim.base_url, base_url))
    return path


def plan(world: ChaosWorld, manifest: Path, *extra: str) -> Any:
    result = run_cli(["plan", "-f", str(manifest), *extra], world.env)
    assert "Traceback" not in result.err, result
    return result


def test_tls_is_verified_by_default_and_a_custom_ca_is_honoured(
    world: ChaosWorld, tmp_path: Path
) -> None:
    ca, certificate, key = certificate_authority(tmp_path)
    app = build_app(world.sim.running.simulator)
    with serve(app, ssl_certfile=str(certificate), ssl_keyfile=str(key)) as port:
        manifest = manifest_at(world, f"https://localhost:{port}/v2")
        refused = plan(world, manifest)
        assert refused.code == 1, refused
        assert "TLS" in refused.err and "CERTIFICATE_VERIFY_FAILED" in refused.err, refused
        trusted = plan(world, manifest, "--ca-bundle", str(ca))
        assert trusted.code == 0, trusted
        assert "Plan: 3 to create" in trusted.out


@pytest.mark.parametrize(
    "url", ["http://example.com/v2", "http://10.0.0.1:8080/v2", "ftp://127.0.0.1/v2"]
)
def test_plain_http_only_to_loopback(world: ChaosWorld, url: str) -> None:
    result = plan(world, manifest_at(world, url))
    assert result.code == 1
    lines = result.err.strip().splitlines()
    # Refused where it is written (the manifest), or by the client if it came another way.
    assert len(lines) == 1 and ("loopback" in lines[0] or "only https://" in lines[0]), result


def test_redirects_are_not_followed_with_credentials(world: ChaosWorld) -> None:
    seen: list[dict[str, str]] = []

    async def elsewhere(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append({k.decode(): v.decode() for k, v in scope.get("headers", [])})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    inner = build_app(world.sim.running.simulator)
    with serve(elsewhere) as other:

        async def redirecting(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == "/v2/tokens":
                location = f"http://localhost:{other}/v2/tokens".encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 307,
                        "headers": [(b"location", location)],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
            await inner(scope, receive, send)

        with serve(redirecting) as port:
            result = plan(world, manifest_at(world, f"http://127.0.0.1:{port}/v2"))
            assert result.code == 1, result
            assert "307" in result.err, result
    assert seen == []  # the other host never heard from us, let alone our Authorization


@pytest.mark.parametrize("url", ["http://example.com/v2", "http://[::2]/v2", "ksef.mf.gov.pl/v2"])
def test_the_client_itself_refuses_plain_http_off_this_machine(url: str) -> None:
    # A second line of defence for URLs that do not come from a manifest.
    with pytest.raises(InsecureEndpoint):
        check_base_url(url)
    assert check_base_url("http://[::1]:8080/v2").host == "::1"
