"""Transport security of the KSeF connection, through the CLI: TLS verified by default,
a custom CA with --ca-bundle, plain http only to loopback, no credential sent elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from ksefctl.ksef.errors import InsecureEndpoint
from ksefctl.ksef.transport import check_base_url
from ksefctl.sim.app import build_app
from tests.chaos.harness import ChaosWorld, run_cli
from tests.support.process_world import CONTEXTS
from tests.support.servers import certificate_authority, serve


def manifest_at(process_world: ChaosWorld, base_url: str) -> Path:
    path = process_world.manifest("acme", CONTEXTS)
    path.write_text(path.read_text().replace(process_world.sim.base_url, base_url))
    return path


def plan(process_world: ChaosWorld, manifest: Path, *extra: str) -> Any:
    result = run_cli(["plan", "-f", str(manifest), *extra], process_world.env)
    assert "Traceback" not in result.err, result
    return result


def test_tls_is_verified_by_default_and_a_custom_ca_is_honoured(
    process_world: ChaosWorld, tmp_path: Path
) -> None:
    ca, certificate, key = certificate_authority(tmp_path)
    app = build_app(process_world.sim.running.simulator)
    with serve(app, ssl_certfile=str(certificate), ssl_keyfile=str(key)) as port:
        manifest = manifest_at(process_world, f"https://localhost:{port}/v2")
        refused = plan(process_world, manifest)
        assert refused.code == 1, refused
        assert "TLS" in refused.err and "CERTIFICATE_VERIFY_FAILED" in refused.err, refused
        trusted = plan(process_world, manifest, "--ca-bundle", str(ca))
        assert trusted.code == 0, trusted
        assert "Plan: 3 to create" in trusted.out


@pytest.mark.parametrize(
    "url", ["http://example.com/v2", "http://10.0.0.1:8080/v2", "ftp://127.0.0.1/v2"]
)
def test_plain_http_only_to_loopback(process_world: ChaosWorld, url: str) -> None:
    result = plan(process_world, manifest_at(process_world, url))
    assert result.code == 1
    lines = result.err.strip().splitlines()
    # Refused where it is written (the manifest), or by the client if it came another way.
    assert len(lines) == 1 and ("loopback" in lines[0] or "only https://" in lines[0]), result


def test_redirects_are_not_followed_with_credentials(process_world: ChaosWorld) -> None:
    seen: list[dict[str, str]] = []

    async def elsewhere(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append({k.decode(): v.decode() for k, v in scope.get("headers", [])})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    inner = build_app(process_world.sim.running.simulator)
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
            result = plan(process_world, manifest_at(process_world, f"http://127.0.0.1:{port}/v2"))
            assert result.code == 1, result
            assert "307" in result.err, result
    assert seen == []  # the other host never heard from us, let alone our Authorization


@pytest.mark.parametrize("url", ["http://example.com/v2", "http://[::2]/v2", "ksef.mf.gov.pl/v2"])
def test_the_client_itself_refuses_plain_http_off_this_machine(url: str) -> None:
    # A second line of defence for URLs that do not come from a manifest.
    with pytest.raises(InsecureEndpoint):
        check_base_url(url)
    assert check_base_url("http://[::1]:8080/v2").host == "::1"
