"""Video appointments, end to end, per Teams method: how many Graph requests one takes against the
minimum, and how soon every copy carries the join URL against the same appointment without video.

    .venv/bin/python -m benchmarks.teams_bench [--users 20] [--samples 10] [--latency-ms 50]

Starts the same stack as `benchmarks.sync_bench` (Azurite, the emulator with a bulk tenant at `--latency-ms`
per request, the local host running the real app) and migrates the bulk tenant (all-users scope). Then for
each method (`event`; `access_policy`, with a global application access policy granted in the emulator;
`service_account`, organised by one of the bulk users) and for 1 and 5 staff members: `--samples`
appointments one after another, with `video: true` and without, each timed from the PUT's 202 to its state
`synced` with every copy carrying the meeting's join URL (the GET polled every 20 ms), p50/p95; and the
Graph requests per appointment (the emulator's `/stats` around each series) against the minimum:

- event: one create per staff calendar (the first is the meeting): N;
- access_policy: the createOrGet, then one create per calendar: N + 1;
- service_account: as access_policy, and the organiser account's lookup in the directory: N + 2 (a
  connector that cached the account's id would need N + 1).

Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from benchmarks.appointment_bench import appointment
from benchmarks.sync_bench import (
    Stack,
    add_stack_arguments,
    graph_requests,
    migrate,
    percentile,
    run_on_stack,
)

MINIMUM = {"event": 0, "access_policy": 1, "service_account": 1}


async def until_joined(api: httpx.AsyncClient, path: str, video: bool, limit: float = 120) -> float:
    """Seconds until the appointment is synced and (with video) every copy carries the meeting's URL."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        body = (await api.get(path)).json()
        if body.get("state") == "synced":
            meeting = body.get("meeting")
            if not video:
                return time.monotonic() - started
            if meeting and all(c["join_url"] == meeting["join_url"] for c in body["staff"]):
                return time.monotonic() - started
        if body.get("state") in ("failed", "partial"):
            raise RuntimeError(f"{path}: {body}")
        await asyncio.sleep(0.02)
    raise TimeoutError(path)


def counted(diff: Counter[str]) -> Counter[str]:
    """The write job's Graph requests: events, online meetings and directory lookups (not the sync's
    delta reads or subscriptions, which run beside it)."""
    return Counter(
        {
            k: v
            for k, v in diff.items()
            if "/onlineMeetings" in k
            or ("/events" in k and k.startswith(("POST", "PATCH", "DELETE")))
            or (k.startswith("GET /v1.0/users") and "/events" not in k and "/calendar" not in k)
        }
    )


async def series(
    stack: Stack, api: httpx.AsyncClient, users: list[str], size: int, video: bool, args: argparse.Namespace
) -> tuple[list[float], float, Counter[str]]:
    tid = stack.bulk_tenant_id
    async with stack.control() as control:
        before = await control.stats()
        seconds: list[float] = []
        for n in range(args.samples):
            staff = [users[(n * size + i) % len(users)] for i in range(size)]
            appointment_id = f"teams{size}-{n}-{uuid.uuid4().hex[:6]}"
            path = f"/api/v1/tenants/{tid}/appointments/{appointment_id}"
            answer = await api.put(path, json={**appointment(staff, n), "video": video})
            answer.raise_for_status()
            seconds.append(await until_joined(api, path, video))
        after = await control.stats()
    requests = counted(graph_requests(before, after))
    return seconds, sum(requests.values()) / args.samples, requests


async def run(stack: Stack, args: argparse.Namespace) -> None:
    migrated = await migrate(stack, args)
    users = sorted(migrated.users.values())
    tid = stack.bulk_tenant_id
    api = httpx.AsyncClient(base_url=stack.url, headers={"x-functions-key": stack.key}, timeout=60)
    async with api:
        listed = (await api.get(f"/api/v1/tenants/{tid}/users", params={"page_size": 500})).json()["value"]
        organiser = next(u["upn"] for u in listed if u["upn"])
        async with stack.control() as control:
            await control.add_access_policy(tid, stack.client_id, global_=True)
        for method in ("event", "access_policy", "service_account"):
            settings: dict[str, Any] = {"teams_method": method}
            if method == "service_account":
                settings["teams_organizer"] = organiser
            (await api.patch(f"/api/v1/tenants/{tid}/settings", json=settings)).raise_for_status()
            print(f"\n{method} ({args.latency_ms:g} ms per Graph request, {args.samples} appointments each)")
            for size in (1, 5):
                plain, plain_requests, _ = await series(stack, api, users, size, False, args)
                timed, per, requests = await series(stack, api, users, size, True, args)
                minimum = size + MINIMUM[method]
                print(
                    f"  {size} staff: PUT -> every copy with the join URL p50 "
                    f"{percentile(timed, 0.5) * 1000:.0f} ms, p95 {percentile(timed, 0.95) * 1000:.0f} ms "
                    f"(without video p50 {percentile(plain, 0.5) * 1000:.0f} ms, "
                    f"p95 {percentile(plain, 0.95) * 1000:.0f} ms)"
                )
                print(
                    f"    Graph requests per video appointment: {per:.2f} (minimum {minimum}; without video "
                    f"{plain_requests:.2f}) {dict(requests)}"
                )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.teams_bench", description=summary)
    add_stack_arguments(parser, users=20, events=2)
    parser.add_argument("--samples", type=int, default=10, help="appointments timed per series (10)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (1800 s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_on_stack(
        f"teams bench: {args.users} users, emulator latency {args.latency_ms:g} ms",
        args,
        run,
    )


if __name__ == "__main__":
    main()
