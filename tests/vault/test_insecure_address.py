"""The Vault token never travels over plain http to another machine, unless the operator
says so (``--allow-insecure-vault`` / KSEFCTL_VAULT_ALLOW_HTTP=1): the same rule as for
KSeF's base URL.  Refused before anything connects — every socket connect in these tests
is watched, and one to another machine is stopped before it leaves this one."""

from __future__ import annotations

import contextlib
import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ksefctl import cli
from ksefctl.secret import Secret
from ksefctl.vault import VaultConfig, VaultConfigError, VaultStore
from ksefctl.vault.config import ALLOW_HTTP_VARIABLE, is_loopback

TOKEN = "hvs.never-over-plain-http-7f3a"
ELSEWHERE = ["http://192.0.2.1:8200", "http://vault.example.com:8200", "http://[2001:db8::1]:8200"]

MANIFEST = """\
apiVersion: ksefctl/v1
kind: TokenPolicy
metadata:
  name: acme
spec:
  ksef:
    environment: "http://127.0.0.1:9/v2"
    name: sim
  vault:
    mount: secret
    path: "ksef/{environment}/{nip}/{token}"
  auth:
    ksefToken:
      vault: "ksef-admin/{nip}"
  contexts:
    - nip: "5265877635"
      tokens:
        - name: erp
          permissions: [InvoiceRead]
"""


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every address a socket of this process tries to connect to; off-machine ones refused."""
    seen: list[object] = []
    original = socket.socket.connect

    def watched(self: socket.socket, address: object) -> None:
        seen.append(address)
        host = address[0] if isinstance(address, tuple) else ""
        if not (isinstance(host, str) and is_loopback(host)):
            raise ConnectionRefusedError(111, "stopped by the test: not a loopback address")
        original(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", watched)
    yield seen


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(MANIFEST)
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    monkeypatch.setenv("KSEFCTL_SESSION_CACHE", "off")
    # The flag sets the variable for the process; this puts it back as it was.
    monkeypatch.delenv(ALLOW_HTTP_VARIABLE, raising=False)
    return path


@pytest.mark.parametrize("address", ELSEWHERE)
def test_plain_http_elsewhere_is_refused_when_the_store_is_made(address: str) -> None:
    with pytest.raises(VaultConfigError, match="--allow-insecure-vault") as error:
        VaultStore(VaultConfig(address=address, token=Secret(TOKEN)))
    assert TOKEN not in str(error.value)


@pytest.mark.parametrize("address", ["ftp://127.0.0.1:8200", "127.0.0.1:8200", "http://"])
def test_an_address_that_is_not_http_is_refused(address: str) -> None:
    with pytest.raises(VaultConfigError, match="not an http"):
        VaultStore(VaultConfig(address=address, token=Secret(TOKEN)))


@pytest.mark.parametrize(
    "address", ["http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200"]
)
def test_plain_http_to_this_machine_and_https_anywhere_are_allowed(address: str) -> None:
    VaultStore(VaultConfig(address=address, token=Secret(TOKEN)))
    VaultStore(VaultConfig(address="https://vault.example.com:8200", token=Secret(TOKEN)))


def test_the_variable_opts_out() -> None:
    for value, allowed in [("1", True), ("true", True), ("0", False), ("", False)]:
        environ = {"VAULT_ADDR": ELSEWHERE[0], "VAULT_TOKEN": TOKEN, ALLOW_HTTP_VARIABLE: value}
        config = VaultConfig.from_env(environ)
        assert config.allow_http is allowed
        if allowed:
            VaultStore(config)  # constructing connects to nothing
        else:
            with pytest.raises(VaultConfigError):
                VaultStore(config)


def test_plan_refuses_before_connecting(
    manifest: Path, connects: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://192.0.2.1:8200")
    code, out, err = run("plan", "-f", str(manifest))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "refusing VAULT_ADDR" in lines[0], err
    assert "--allow-insecure-vault" in lines[0]
    assert connects == []  # not even KSeF was contacted
    assert TOKEN not in out + err


def test_the_flag_lets_the_token_go_where_the_operator_said(
    manifest: Path, connects: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://192.0.2.1:8200")
    code, out, err = run("plan", "-f", str(manifest), "--allow-insecure-vault")
    assert code == 1  # the test stops the connection before it leaves this machine
    assert ("192.0.2.1", 8200) in connects, connects
    assert "refusing" not in err and "cannot reach Vault at 192.0.2.1:8200" in err, err
    assert TOKEN not in out + err
