"""Requests per second the KSeF simulator sustains on this machine.

Starts ``ksefctl sim`` as a subprocess (rate limits off), seeds one context
with ~20 tokens, and drives POST /auth/challenge and an authenticated
GET /tokens with a pool of concurrent keep-alive connections.

    .venv/bin/python benchmarks/sim_throughput.py [--requests 3000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

NIP = "5265877635"


async def _drive(
    host: str, port: int, request: bytes, total: int, concurrency: int
) -> tuple[float, list[float]]:
    """Send ``request`` ``total`` times over ``concurrency`` keep-alive connections.

    A minimal HTTP/1.1 client on asyncio streams: httpx costs ~3 ms of CPU per request
    here, which on 2 cores would measure the client rather than the simulator.
    """
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if status >= 400:
                    raise RuntimeError(f"{status}: {body[:200]!r}")
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began, latencies


async def _run(
    base_url: str, total: int, concurrency: int
) -> list[tuple[str, int, float, list[float]]]:
    admin = base_url.removesuffix("/v2") + "/_sim"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        for i in range(20):
            await client.post(
                f"{admin}/tokens",
                json={
                    "context": {"type": "Nip", "value": NIP},
                    "permissions": ["InvoiceRead"],
                    "description": f"bench {i}",
                },
            )
        session = (
            await client.post(
                f"{admin}/sessions",
                json={
                    "context": {"type": "Nip", "value": NIP},
                    "identity": {"type": "Nip", "value": NIP},
                },
            )
        ).json()
        parts = httpx.URL(base_url)
        host, port = parts.host, parts.port or 80
        token = session["accessToken"]["token"]
        cases = [
            (
                "POST /auth/challenge",
                b"POST /v2/auth/challenge HTTP/1.1\r\nHost: sim\r\nContent-Length: 0\r\n\r\n",
            ),
            (
                "GET /tokens (20 tokens)",
                f"GET /v2/tokens?pageSize=20 HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer {token}\r\n\r\n".encode(),
            ),
        ]
        results = []
        for label, request in cases:
            await _drive(host, port, request, min(200, total), concurrency)  # warm-up
            elapsed, latencies = await _drive(host, port, request, total, concurrency)
            results.append((label, total, elapsed, latencies))
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "sim.json"
        config.write_text(
            json.dumps({"rate_limits_enabled": False, "faults": {"activation_delay_s": 0}})
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "ksefctl", "sim", "--port", "0", "--config", str(config)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            results = asyncio.run(_run(base_url, args.requests, args.concurrency))
        finally:
            process.terminate()
            process.wait(timeout=10)
    print(
        f"KSeF simulator throughput ({args.concurrency} concurrent connections, client on the same host)"
    )
    print(f"{'endpoint':<26}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for label, total, elapsed, latencies in results:
        ordered = sorted(latencies)
        p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
        print(
            f"{label:<26}{total:>10}{total / elapsed:>10.0f}"
            f"{statistics.median(ordered) * 1000:>10.1f}{p99:>10.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
