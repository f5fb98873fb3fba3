"""How fast the Microsoft 365 emulator serves, and how much memory a big organisation takes.

    .venv/bin/python -m benchmarks.emulator_bench [--duration 3] [--concurrency 32]
                                                  [--users 10000] [--events 50] [--skip-memory]

1. Throughput: starts the emulator as a subprocess (`--seed demo`), lifts its throttling, and
   drives a few endpoints with `--concurrency` keep-alive clients for `--duration` seconds each
   (token, user get, events list, calendarView, Key Vault get). Client and server share this
   machine's CPUs, so the figures are a floor.
2. Memory: builds an emulator in this process and seeds `--users` users x `--events` events each
   through the calendar store, then reports the RSS growth.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from m365emulator.control import ControlClient
from m365emulator.process import EmulatorProcess


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    def line(self) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        rps = self.requests / self.seconds if self.seconds else 0
        return (
            f"{self.name:<28} {rps:>9.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
            f"   ({self.requests} requests, {self.errors} errors)"
        )


Request = Callable[[aiohttp.ClientSession, int], Any]


async def drive(name: str, make: Request, concurrency: int, duration: float, tls: ssl.SSLContext) -> Result:
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + duration
    connector = aiohttp.TCPConnector(ssl=tls, limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(index: int) -> None:
            nonlocal errors
            n = index
            while time.monotonic() < stop_at:
                started = time.monotonic()
                async with make(session, n) as response:
                    await response.read()
                    if response.status >= 400:
                        errors += 1
                latencies.append(time.monotonic() - started)
                n += concurrency

        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.monotonic() - started
    return Result(name, len(latencies), errors, elapsed, latencies)


async def token(session: aiohttp.ClientSession, url: str, client_id: str, secret: str, scope: str) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": scope,
    }
    async with session.post(url, data=form) as response:
        return (await response.json())["access_token"]


async def throughput(duration: float, concurrency: int) -> list[Result]:
    workdir = Path(tempfile.mkdtemp(prefix="emulator-bench-"))
    proc = EmulatorProcess(workdir, seed="demo")
    ready = proc.start()
    try:
        tls = ssl.create_default_context(cafile=ready["ca_file"])
        tenant, client, secret = ready["tenant_id"], ready["client_id"], ready["client_secret"]
        async with ControlClient(ready["control"], ready["ca_file"]) as control:
            await control.consent(tenant, client)
            await control.set_settings(throttle_concurrency=1_000_000, throttle_budget=1_000_000_000)
            info = await control.info()
            upns = [u["upn"] for u in await control.users(tenant) if u["mailbox_enabled"]]
        token_url = f"{ready['authority']}/{tenant}/oauth2/v2.0/token"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
            graph_token = await token(
                session, token_url, client, secret, "https://graph.microsoft.com/.default"
            )
            vault_token = await token(
                session,
                f"{ready['authority']}/{ready['platform_tenant_id']}/oauth2/v2.0/token",
                ready["platform_client_id"],
                ready["platform_client_secret"],
                "https://vault.azure.net/.default",
            )
        graph = ready["graph"]
        auth = {"Authorization": f"Bearer {graph_token}"}
        now = datetime.now(UTC)
        window = {
            "startDateTime": now.strftime("%Y-%m-%dT00:00:00Z"),
            "endDateTime": (now + timedelta(days=7)).strftime("%Y-%m-%dT00:00:00Z"),
        }
        form = {
            "grant_type": "client_credentials",
            "client_id": client,
            "client_secret": secret,
            "scope": "https://graph.microsoft.com/.default",
        }
        scenarios: list[tuple[str, Request]] = [
            ("token (client credentials)", lambda s, n: s.post(token_url, data=form)),
            ("GET /users/{upn}", lambda s, n: s.get(f"{graph}/users/{upns[n % len(upns)]}", headers=auth)),
            ("GET /users?$top=10", lambda s, n: s.get(f"{graph}/users", params={"$top": "10"}, headers=auth)),
        ]
        if info.get("calendar"):
            scenarios += [
                (
                    "GET /users/{upn}/events",
                    lambda s, n: s.get(f"{graph}/users/{upns[n % len(upns)]}/events?$top=10", headers=auth),
                ),
                (
                    "GET calendarView (7 days)",
                    lambda s, n: s.get(
                        f"{graph}/users/{upns[n % len(upns)]}/calendarView", params=window, headers=auth
                    ),
                ),
            ]
        vault = f"{ready['keyvault']}/secrets/graph-client-secret/?api-version=7.5"
        vault_auth = {"Authorization": f"Bearer {vault_token}"}
        scenarios.append(("Key Vault GET secret", lambda s, n: s.get(vault, headers=vault_auth)))
        return [await drive(name, make, concurrency, duration, tls) for name, make in scenarios]
    finally:
        proc.stop()


def memory(users: int, events: int) -> str:
    from m365emulator.core import Emulator
    from m365emulator.seed import seed_bulk

    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    emu = Emulator()
    started = time.monotonic()
    result = seed_bulk(emu, users, events)
    seconds = time.monotonic() - started
    gc.collect()
    after = process.memory_info().rss
    grown = (after - before) / 2**20
    per_event = (after - before) / result["events"] if result["events"] else 0
    calendar = "" if emu.mailboxes.available else " (calendar part missing: users only)"
    return (
        f"{users} users x {events} events = {result['events']} events seeded in {seconds:.1f} s{calendar}\n"
        f"RSS {before / 2**20:.0f} MB -> {after / 2**20:.0f} MB: +{grown:.0f} MB"
        f" ({per_event:.0f} bytes per event, all included)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emulator_bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per endpoint")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    print(f"Microsoft 365 emulator on {psutil.cpu_count()} CPUs, {args.concurrency} concurrent clients")
    for result in asyncio.run(throughput(args.duration, args.concurrency)):
        print("  " + result.line())
    if not args.skip_memory:
        print(memory(args.users, args.events))


if __name__ == "__main__":
    main()
