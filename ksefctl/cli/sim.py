"""``ksefctl sim``: serve the built-in KSeF API 2.0 simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from ksefctl.errors import KsefctlError


class SimulatorConfigError(KsefctlError):
    """The simulator's --config file is unreadable or names an unknown setting."""


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "sim",
        help="run the built-in KSeF simulator",
        description="Serve a KSeF API 2.0 simulator; prints its base URL (http://HOST:PORT/v2) first.",
    )
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 0: any free port)")
    parser.add_argument(
        "--state", metavar="FILE", help="SQLite file that keeps tokens across restarts"
    )
    parser.add_argument("--config", metavar="FILE", help="YAML/JSON settings: faults, limits, seed")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ksefctl.sim.config import ConfigError, SimConfig
    from ksefctl.sim.server import serve

    try:
        config = SimConfig.load(args.config) if args.config else SimConfig()
    except (OSError, ConfigError) as error:
        raise SimulatorConfigError(f"simulator config: {error}") from None
    if args.host is not None:
        config.host = args.host
    if args.port is not None:
        config.port = args.port
    if args.state:
        config.state_file = args.state
    # uvicorn exits cleanly on SIGINT; make SIGTERM (what `kill` and supervisors send) do the same.
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))

    def announce(url: str) -> None:
        print(url, flush=True)

    try:
        serve(config, announce)
    except OSError as error:
        raise SimulatorConfigError(
            f"cannot listen on {config.host}:{config.port}: {error.strerror}"
        ) from None
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    return 0
