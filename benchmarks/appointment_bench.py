"""Host to Outlook, end to end: how soon an appointment PUT is in every staff calendar, how many Graph
requests it takes, and how fast a burst of writes drains.

    .venv/bin/python -m benchmarks.appointment_bench [--users 20] [--samples 30] [--burst 1000]
                                                     [--latency-ms 50] [--concurrency 50]

Starts the same stack as `benchmarks.sync_bench` (Azurite, the emulator with a bulk tenant at `--latency-ms`
per request, the local host running the real app), migrates the bulk tenant (all-users scope: the staff ids
are the Graph user ids), then:

1. Latency: `--samples` appointments one after another, each for 1 staff member, then each for 5: the time
   from the PUT's 202 to the appointment's state `synced` (its GET polled every 20 ms; the state turns
   `synced` only after every staff calendar's write was answered by Graph), p50/p95.
2. Graph requests per appointment (the emulator's `/stats` around phase 1) against the minimum: one create
   per staff calendar.
3. Burst: `--burst` appointment PUTs (1 staff member each, spread over the users) sent `--concurrency` at a
   time; the API's answer latency, and the time until every one is on the feed as `appointment.synced`
   (appointments per second).

Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx

from benchmarks.sync_bench import (
    FIGURES,
    Feed,
    Stack,
    add_stack_arguments,
    emit_figures,
    figure,
    graph_requests,
    machine_speed,
    migrate,
    percentile,
    run_on_stack,
)


def appointment(staff: list[str], number: int) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(days=1 + number % 60)).replace(minute=0, second=0, microsecond=0)
    return {
        "subject": f"Bench appointment {number}",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "time_zone": "Europe/Amsterdam",
        "staff_ids": staff,
        "customers": [{"name": "Chris Customer", "email": "chris@example.org"}],
    }


async def until_synced(api: httpx.AsyncClient, path: str, limit: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        body = (await api.get(path)).json()
        if body.get("state") == "synced":
            return time.monotonic() - started
        if body.get("state") in ("failed", "partial"):
            raise RuntimeError(f"{path}: {body}")
        await asyncio.sleep(0.02)
    raise TimeoutError(path)


def writes_only(diff: Counter[str]) -> Counter[str]:
    """Graph requests on events (creates, updates, reads), as the emulator's stats name them."""
    return Counter(
        {k: v for k, v in diff.items() if "/events" in k and k.startswith(("POST", "PATCH", "GET"))}
    )


async def latency(stack: Stack, users: list[str], args: argparse.Namespace) -> None:
    tid = stack.bulk_tenant_id
    api = httpx.AsyncClient(base_url=stack.url, headers={"x-functions-key": stack.key}, timeout=60)
    async with api, stack.control() as control:
        for size in (1, 5):
            before = await control.stats()
            seconds: list[float] = []
            for n in range(args.samples):
                staff = [users[(n * size + i) % len(users)] for i in range(size)]
                appointment_id = f"lat{size}-{n}-{uuid.uuid4().hex[:6]}"
                path = f"/api/v1/tenants/{tid}/appointments/{appointment_id}"
                answer = await api.put(path, json=appointment(staff, n))
                answer.raise_for_status()
                seconds.append(await until_synced(api, path))
            after = await control.stats()
            diff = graph_requests(before, after)
            events = writes_only(diff)
            per = sum(events.values()) / args.samples
            print(
                f"  {size} staff: PUT -> in every calendar p50 {percentile(seconds, 0.5) * 1000:.0f} ms, "
                f"p95 {percentile(seconds, 0.95) * 1000:.0f} ms over {args.samples} appointments"
            )
            print(
                f"    Graph requests per appointment: {per:.2f} (minimum {size}: one create per staff "
                f"calendar; {per / size:.2f}x) {dict(events)}"
            )
            figure(f"appointment_{size}_staff_p50_ms", percentile(seconds, 0.5) * 1000)
            figure(f"appointment_{size}_staff_p95_ms", percentile(seconds, 0.95) * 1000)
            figure(f"appointment_{size}_staff_graph_requests", per)
            figure(f"appointment_{size}_staff_graph_minimum", size)


async def burst(stack: Stack, users: list[str], args: argparse.Namespace) -> None:
    tid = stack.bulk_tenant_id
    async with aiohttp.ClientSession() as session:
        feed = Feed(session, stack, tid)
        await feed.next()  # from here on
        gate = asyncio.Semaphore(args.concurrency)
        answers: list[float] = []
        headers = {"x-functions-key": stack.key}

        async def one(n: int) -> None:
            path = f"{stack.url}/api/v1/tenants/{tid}/appointments/burst-{n}"
            async with gate:
                sent = time.monotonic()
                async with session.put(
                    path, json=appointment([users[n % len(users)]], n), headers=headers
                ) as r:
                    r.raise_for_status()
                answers.append(time.monotonic() - sent)

        started = time.monotonic()
        await asyncio.gather(*(one(n) for n in range(args.burst)))
        accepted = time.monotonic() - started
        synced: set[str] = set()
        failed = 0
        while len(synced) + failed < args.burst and time.monotonic() - started < args.timeout:
            for change in await feed.next():
                if change["type"] == "appointment.synced":
                    synced.add(change["data"]["appointment_id"])
                elif change["type"] == "appointment.failed":
                    failed += 1
            await asyncio.sleep(0.2)
        done = time.monotonic() - started
    p50, p99 = percentile(answers, 0.5) * 1000, percentile(answers, 0.99) * 1000
    print(
        f"  {args.burst} PUTs accepted in {accepted:.1f} s (answer p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
        f"{args.concurrency} at a time)"
    )
    print(
        f"  all in Outlook after {done:.1f} s: {len(synced)} synced, {failed} failed; "
        f"{len(synced) / done:.1f} appointments per second"
    )
    figure("burst_appointments", args.burst)
    figure("burst_answer_p50_ms", p50)
    figure("burst_answer_p99_ms", p99)
    figure("burst_seconds", done)
    figure("burst_synced", len(synced))
    figure("burst_failed", failed)
    figure("burst_per_second", len(synced) / done)


async def run(stack: Stack, args: argparse.Namespace) -> None:
    migrated = await migrate(stack, args)
    users = sorted(migrated.users.values())
    print(
        f"\n1-2. Appointment PUT -> events in every staff calendar ({args.latency_ms:g} ms per Graph request)"
    )
    await latency(stack, users, args)
    if args.burst:
        print(f"\n3. A burst of {args.burst} appointment writes")
        await burst(stack, users, args)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.appointment_bench", description=summary)
    add_stack_arguments(parser, users=20, events=5)
    parser.add_argument("--samples", type=int, default=30, help="appointments timed per staff count (30)")
    parser.add_argument("--burst", type=int, default=1000, help="appointments in the burst (1000; 0 skips)")
    parser.add_argument("--concurrency", type=int, default=50, help="PUTs in flight during the burst (50)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (1800 s)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    fastest, slowest = machine_speed()
    calibration = {"before_ms": [round(fastest), round(slowest)]}
    run_on_stack(
        f"appointment bench: {args.users} users, emulator latency {args.latency_ms:g} ms",
        args,
        run,
    )
    fastest, slowest = machine_speed()
    calibration["after_ms"] = [round(fastest), round(slowest)]
    before, after = calibration["before_ms"], calibration["after_ms"]
    print(f"machine: {before} ms before, {after} ms after, for the fixed workload")
    settings = ("users", "events", "latency_ms", "instances", "samples", "burst", "concurrency")
    emit_figures("appointments", argv, args, settings, {"off": dict(FIGURES)}, calibration, started_at)


if __name__ == "__main__":
    main()
