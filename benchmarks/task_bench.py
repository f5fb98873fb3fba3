"""Host tasks to To Do, end to end: how soon a task PUT is in the staff member's To Do list, and how many
Graph requests a task write takes against the minimum.

    .venv/bin/python -m benchmarks.task_bench [--users 50] [--samples 40] [--latency-ms 50]

Starts the same stack as `benchmarks.sync_bench` (Azurite, the emulator with a bulk tenant at `--latency-ms`
per request, the local host running the real app), migrates the bulk tenant (all-users scope), then:

1. The first task of each of `--staff` staff members: the list is looked up by name and made (two requests
   more, once per user), the task made with its link and checklist in one request.
2. Latency: `--samples` new tasks one after another, spread over those staff (their lists known), then as
   many updates: the time from the PUT's 202 until its GET says `synced` (polled every 20 ms: To Do has
   answered the write), p50/p95.
3. Graph requests per task write (the emulator's `/stats` around phase 2) against the minimum: one request
   per create (the POST carries the link and the checklist) and one per update (the PATCH).

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

from benchmarks.sync_bench import (
    Stack,
    add_stack_arguments,
    graph_requests,
    migrate,
    percentile,
    run_on_stack,
)

MINIMUM_REQUESTS = 1  # the task's POST (a create) or PATCH (an update)


def task(staff_id: str, number: int, **changes: Any) -> dict[str, Any]:
    return {
        "staff_id": staff_id,
        "title": f"Bench task {number}",
        "body": f"Follow up on booking {number}.",
        "due": "2026-12-31",
        "importance": "high",
        "checklist": [{"id": "a", "title": "Call"}, {"id": "b", "title": "Confirm"}],
        **changes,
    }


def todo_requests(diff: Counter[str]) -> Counter[str]:
    return Counter({k: v for k, v in diff.items() if "/todo/" in k})


async def until_synced(api: httpx.AsyncClient, path: str, revision: int, limit: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        body = (await api.get(path)).json()
        if body.get("revision", 0) >= revision and body.get("state") == "synced":
            return time.monotonic() - started
        if body.get("revision", 0) >= revision and body.get("state") in ("failed", "partial"):
            raise RuntimeError(f"{path}: {body}")
        await asyncio.sleep(0.02)
    raise TimeoutError(path)


async def timed(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> float:
    answer = await api.put(path, json=body)
    answer.raise_for_status()
    return await until_synced(api, path, int(answer.json()["revision"]))


async def run(stack: Stack, args: argparse.Namespace) -> None:
    migrated = await migrate(stack, args)
    staff = sorted(migrated.users)[: args.staff]
    tid = stack.bulk_tenant_id
    run_id = uuid.uuid4().hex[:6]
    api = httpx.AsyncClient(base_url=stack.url, headers={"x-functions-key": stack.key}, timeout=60)
    async with api, stack.control() as control:
        print(f"\n1. The first task of {len(staff)} staff members (their list found by name and made)")
        before = await control.stats()
        firsts = [
            await timed(api, f"/api/v1/tenants/{tid}/tasks/first-{run_id}-{n}", task(s, n))
            for n, s in enumerate(staff)
        ]
        requests = todo_requests(graph_requests(before, await control.stats()))
        print(
            f"  PUT -> in To Do p50 {percentile(firsts, 0.5) * 1000:.0f} ms, p95 "
            f"{percentile(firsts, 0.95) * 1000:.0f} ms; Graph requests per first task "
            f"{sum(requests.values()) / len(staff):.2f} (minimum 3: the list's look-up and POST, the task's "
            "POST)"
        )
        print(f"\n2-3. Task PUT -> in To Do ({args.latency_ms:g} ms per Graph request), lists known")
        before = await control.stats()
        creates = []
        paths = []
        for n in range(args.samples):
            path = f"/api/v1/tenants/{tid}/tasks/lat-{run_id}-{n}"
            paths.append((path, staff[n % len(staff)], n))
            creates.append(await timed(api, path, task(staff[n % len(staff)], n)))
        middle = await control.stats()
        updates = [
            await timed(api, path, task(s, n, title=f"Bench task {n}, renamed", status="completed"))
            for path, s, n in paths
        ]
        after = await control.stats()
    made, changed = (
        todo_requests(graph_requests(before, middle)),
        todo_requests(graph_requests(middle, after)),
    )
    for label, seconds, requests in (("create", creates, made), ("update", updates, changed)):
        per = sum(requests.values()) / args.samples
        print(
            f"  {label}: PUT -> in To Do p50 {percentile(seconds, 0.5) * 1000:.0f} ms, p95 "
            f"{percentile(seconds, 0.95) * 1000:.0f} ms over {args.samples}; Graph requests per task "
            f"{per:.2f} (minimum {MINIMUM_REQUESTS}: {per / MINIMUM_REQUESTS:.2f}x) {dict(requests)}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.task_bench", description=summary)
    add_stack_arguments(parser, users=50, events=1)
    parser.add_argument("--staff", type=int, default=10, help="staff the tasks are for (10)")
    parser.add_argument("--samples", type=int, default=40, help="tasks timed one after another (40)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (1800 s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_on_stack(f"task bench: {args.users} users, emulator latency {args.latency_ms:g} ms", args, run)


if __name__ == "__main__":
    main()
