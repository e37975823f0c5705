"""Running the simulator: in a background thread for tests, or in the foreground for the CLI."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from ksefctl.sim.app import build_app
from ksefctl.sim.config import SimConfig
from ksefctl.sim.service import Simulator
from ksefctl.sim.web import TRANSPORT_EXTENSION


class DroppableH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, lending each request its socket so a fault can cut it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scope.setdefault("extensions", {})[TRANSPORT_EXTENSION] = lambda: self.transport
            await inner(scope, receive, send)

        self.app = app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets that do, and without
    # it every keep-alive response stalls ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _server(sim: Simulator) -> uvicorn.Server:
    config = uvicorn.Config(
        build_app(sim),
        http=DroppableH11Protocol,
        lifespan="off",
        log_level="warning",
        access_log=sim.config.access_log,
        timeout_graceful_shutdown=1,
        backlog=2048,
    )
    return uvicorn.Server(config)


def _base(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@dataclass
class RunningSimulator:
    """A simulator serving on a background thread; ``stop()`` shuts it down and closes its state."""

    base_url: str  # http://HOST:PORT/v2
    admin_url: str  # http://HOST:PORT/_sim
    simulator: Simulator
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.simulator.close()

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(config: SimConfig | None = None) -> RunningSimulator:
    config = config or SimConfig()
    sim = Simulator(config)
    sock = _bind(config.host, config.port)
    port = sock.getsockname()[1]
    server = _server(sim)
    server.config.install_signal_handlers = False  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name="ksef-sim", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the KSeF simulator did not start")
        time.sleep(0.002)
    root = _base(config.host, port)
    return RunningSimulator(f"{root}/v2", f"{root}/_sim", sim, server, thread)


def serve(config: SimConfig, announce: Any = print) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; ``announce`` gets the base URL first."""
    sim = Simulator(config)
    sock = _bind(config.host, config.port)
    announce(f"{_base(config.host, sock.getsockname()[1])}/v2")
    try:
        _server(sim).run(sockets=[sock])
    finally:
        sim.close()
