"""What the Graph client's connection pool costs per request: the connector's `GraphPool` against httpcore's
own pool at the limits the connector had, side by side in one run.

    .venv/bin/python -m benchmarks.graph_pool [--in-flight 48] [--requests 1920] [--rounds 3]

A local HTTPS server (aiohttp, a trustme certificate, 50 ms per answer, a small JSON body as Graph's) in the
same process as an httpx client over a pool of each kind and size; the client sends `--requests` GETs in
waves of `--in-flight` and a quarter of that, alternating (a worker's jobs come and go, so connections open
at a peak and wait idle after it), after a warm-up. Printed per pool: CPU milliseconds per request (the
client's and the server's together: TLS handshakes cost both) and requests per second, the median of
`--rounds`, the pools' order rotating round by round. httpcore 1.0.9 compares its keep-alive limit with all
its connections, so it closes each connection going idle once it holds more than the limit, and its count
is quadratic in the connections (`shared/adapters/graph/pool.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import time
from typing import Final

import httpx
import trustme
from aiohttp import web

from shared.adapters.graph.client import POOL_CONNECTIONS, POOL_KEPT_IDLE
from shared.adapters.graph.pool import GraphTransport

POOLS: Final = {  # name: (connections at most, kept idle, the connector's pool: else httpcore's own)
    "httpcore (200, 100 kept idle)": (200, 100, False),
    "httpcore (64, 16 kept idle)": (64, 16, False),
    "httpcore (64, 64 kept idle)": (64, 64, False),
    f"GraphPool ({POOL_CONNECTIONS}, {POOL_KEPT_IDLE} kept idle)": (POOL_CONNECTIONS, POOL_KEPT_IDLE, True),
}
ANSWER_SECONDS: Final = 0.05
BODY: Final = {"value": [{"id": f"AAMk{i}", "subject": "Intake", "isOrganizer": True} for i in range(5)]}


async def _answer(_: web.Request) -> web.Response:
    await asyncio.sleep(ANSWER_SECONDS)
    return web.json_response(BODY)


async def measure(limits: tuple[int, int, bool], in_flight: int, requests: int) -> tuple[float, float]:
    """CPU ms per request and requests per second through a pool of `limits`."""
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    app = web.Application()
    app.router.add_get("/v1.0/users/u/events", _answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "localhost", 0, ssl_context=server_tls)
    await site.start()
    port = runner.addresses[0][1]
    url = f"https://localhost:{port}/v1.0/users/u/events"
    most, idle, ours = limits
    sizes = httpx.Limits(max_connections=most, max_keepalive_connections=idle)
    transport = (
        GraphTransport(verify=client_tls, limits=sizes)
        if ours
        else httpx.AsyncHTTPTransport(verify=client_tls, limits=sizes)
    )
    try:
        async with httpx.AsyncClient(transport=transport, verify=client_tls) as client:

            async def one(gate: asyncio.Semaphore) -> None:
                async with gate:
                    (await client.get(url)).json()

            warm = asyncio.Semaphore(in_flight)
            await asyncio.gather(*(one(warm) for _ in range(in_flight * 4)))
            cpu, wall, sent, wave = time.process_time(), time.monotonic(), 0, 0
            while sent < requests:
                size = in_flight if wave % 2 == 0 else max(1, in_flight // 4)
                gate = asyncio.Semaphore(size)
                await asyncio.gather(*(one(gate) for _ in range(size)))
                sent, wave = sent + size, wave + 1
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    finally:
        await runner.cleanup()
    return cpu * 1000 / sent, sent / wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.graph_pool", description=__doc__)
    parser.add_argument("--in-flight", type=int, default=48, help="requests at once at a peak (48)")
    parser.add_argument("--requests", type=int, default=1920, help="requests measured per pool and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the pools' order rotating (3)")
    args = parser.parse_args(argv)
    names = list(POOLS)
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            found[name].append(asyncio.run(measure(POOLS[name], args.in_flight, args.requests)))
    peak = f"{args.in_flight} in flight at a peak"
    print(f"{args.requests} GETs per pool and round, {peak}, {args.rounds} rounds:")
    for name in names:
        cpu = statistics.median(c for c, _ in found[name])
        rate = statistics.median(r for _, r in found[name])
        each = ", ".join(f"{c:.2f}" for c, _ in found[name])
        print(f"  {name:34} CPU {cpu:5.2f} ms/request ({each})   {rate:6.0f} requests/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
