"""A Vault problem common to every context is one line, with the cause in words."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ksefctl.cli._vault_diagnosis import print_failures
from ksefctl.reconcile.engine import Failure
from ksefctl.vocabulary import ContextId
from tests.cli.conftest import World
from tests.e2e.conftest import NIPS

BODY = "defaults:\n  tokens:\n    - name: erp\n      permissions: [InvoiceRead]\ncontexts:\n" + (
    "".join(f'  - nip: "{nip}"\n' for nip in NIPS)
)


class Portal(BaseHTTPRequestHandler):
    """A web server that is not Vault: an HTML page for every path."""

    def do_GET(self) -> None:
        body = b"<html><body>Welcome to the intranet</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def portal() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Error: ")]


@pytest.mark.parametrize("command", ["plan", "status"])
def test_a_revoked_vault_token_is_one_line_that_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    manifest = str(world.manifest(BODY))
    monkeypatch.setenv("VAULT_TOKEN", "hvs.not-a-token-vault-knows")
    result = world.ksefctl(command, "-f", manifest)
    assert result.code == 1, result
    (line,) = error_lines(result.err)
    assert line.startswith("Error: 3 contexts (")
    assert "refused the token from VAULT_TOKEN itself" in line
    assert "wrong, expired or revoked" in line
    assert "hvs.not-a-token" not in result.out + result.err
    assert "lacks that capability" not in result.err


def test_an_address_that_is_not_vault_is_named_as_such(
    world: World, monkeypatch: pytest.MonkeyPatch, portal: str
) -> None:
    manifest = str(world.manifest(BODY))
    monkeypatch.setenv("VAULT_ADDR", portal)
    result = world.ksefctl("status", "-f", manifest, "--json")
    assert result.code == 1, result
    (line,) = error_lines(result.err)
    assert "is not a Vault server" in line and "check VAULT_ADDR" in line
    assert "missing or deleted" not in result.err
    # The JSON failures carry the same cause, one entry per context as documented.
    failures = json.loads(result.out)["failures"]
    assert len(failures) == 3
    assert {f["message"] for f in failures} == {line.split("login failed: ", 1)[1]}


def test_an_unreachable_vault_is_one_line(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = str(world.manifest(BODY))
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    result = world.ksefctl("status", "-f", manifest)
    assert result.code == 1, result
    (line,) = error_lines(result.err)
    assert "cannot reach Vault at 127.0.0.1:9" in line


def test_no_vault_token_is_one_line(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.vault-token either
    monkeypatch.delenv("VAULT_TOKEN")
    result = world.ksefctl("plan", "-f", str(world.manifest(BODY)))
    assert result.code == 1, result
    (line,) = error_lines(result.err)
    assert "no Vault token: set VAULT_TOKEN" in line


def test_a_problem_of_one_context_keeps_its_own_line(world: World) -> None:
    # Only the first company's login material is gone: that is about its path, not Vault.
    world.vault.secrets.kv.v2.delete_metadata_and_all_versions(
        path=f"ksef-admin/{NIPS[0]}", mount_point=world.bao.mount
    )
    result = world.ksefctl("plan", "-f", str(world.manifest(BODY)))
    assert result.code == 1, result
    (line,) = error_lines(result.err)
    assert line.startswith(f"Error: Nip:{NIPS[0]} (acme): login failed: no credentials at")


def test_identical_failures_collapse_and_name_a_few_contexts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    nips = [f"52658776{i:02d}" for i in range(50)]
    failures = [Failure("acme", ContextId("Nip", n), "login", "Vault is down") for n in nips]
    failures.append(Failure("acme", ContextId("Nip", NIPS[1]), "observe", "KSeF 500"))
    print_failures(failures)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"Error: 50 contexts (Nip:{nips[0]} (acme), Nip:{nips[1]} (acme), Nip:{nips[2]} (acme), "
        "and 47 more): login failed: Vault is down",
        f"Error: Nip:{NIPS[1]} (acme): observe failed: KSeF 500",
    ]
