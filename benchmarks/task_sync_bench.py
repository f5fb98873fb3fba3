"""To Do tasks, Outlook to host, end to end: what tasks add to a migration, and how soon a staff member's
change in To Do reaches the host's feed.

    .venv/bin/python -m benchmarks.task_sync_bench [--users 200] [--events 50] [--tasks 20]
                                                   [--latency-ms 50] [--changes 40] [--interval 0.25]
                                                   [--instances 2] [--skip-baseline]
                                                   [--json docs/figures/tasks.json]

Two stacks, one after the other in the same run (Azurite in memory, the Microsoft 365 emulator at
`--latency-ms` per request, the local function host running the real app; see `sync_bench`), in turn
each round and in alternating order with `--rounds` (events only first in odd rounds, tasks first in
even ones, so that a machine speeding up or slowing down through the run weighs on both alike):

1. Events only (the baseline, unless `--skip-baseline`): the bulk tenant's USERS x EVENTS, no task
   list, each user a staff member put by the host with `tasks_from_outlook` off: the consent to 100 %,
   users per second.
2. Events and tasks: the same users and events, each with TASKS tasks in the connector's To Do list
   (every fourth linked to a host task, as the connector's own write leaves it), the switch on: the
   same figures, the cost against the baseline (aim: under 30 % more), and the Graph requests of the
   lists against the minimum per user's list (aim <= 1.1x): the list lookup, the subscription create,
   the tasks delta pages at the app's page size (the mailbox's zone comes with the calendar's working
   hours, read anyway). Then `--changes` tasks made through Graph (the connector app's token, as a
   user's To Do would) in random users' lists, one every `--interval` s: the time from Graph's 201 to
   `task.created` on the feed, p50/p95 (aim p95 < 2 s).

Prints figures with the aims in brackets; asserts nothing. With `--json` the migration figures (each
run's users per second, the cost of tasks, the lists' requests against the minimum) are written there too,
with the machine and its calibration, for `benchmarks.publish`. Every process is stopped at the end, on
errors and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import httpx

from benchmarks.sync_bench import (
    STUCK_AFTER,
    TASK_PAGE,
    Feed,
    Stack,
    add_stack_arguments,
    app_token,
    graph_requests,
    interrupt,
    machine,
    machine_speed,
    mark,
    percentile,
    running_stack,
    wait_idle,
)

FEED_POLL: Final = 0.05


@dataclass
class Migration:
    users: int
    seconds: float
    changes: Counter[str]
    requests: Counter[str]
    tasks: dict[str, int]  # staff id -> tasks counted by user.migrated
    linked: dict[str, int]
    cursor: int
    cpu_ms_per_user: dict[str, float]  # process group -> CPU ms per migrated user, over the migration

    @property
    def per_second(self) -> float:
        return self.users / self.seconds


def task_endpoint(endpoint: str) -> str | None:
    """A Graph endpoint (the emulator's stats key) by what the list's sync uses it for; None: not tasks."""
    method, _, path = endpoint.partition(" ")
    if "/todo/lists" not in path and not (method == "POST" and path == "/v1.0/subscriptions"):
        return None
    if path.endswith("/tasks/delta") or path.endswith("/tasks/delta()"):
        return "tasks delta pages"
    if path.endswith("/todo/lists") and method == "GET":
        return "list lookup"
    if path.endswith("/todo/lists") and method == "POST":
        return "list create"
    if path == "/v1.0/subscriptions":
        return "subscription create (events and lists)"
    return f"other To Do: {endpoint}"


async def migrate(stack: Stack, args: argparse.Namespace, *, tasks_on: bool) -> Migration:
    tid = stack.bulk_tenant_id
    api = httpx.AsyncClient(base_url=stack.url, headers={"x-functions-key": stack.key}, timeout=60)
    async with api, stack.control() as control:
        body: dict[str, Any] = {"tenant_id": tid, "display_name": "Bulk", "auth": {"mode": "admin_consent"}}
        created = await api.post("/api/v1/tenants", json=body)
        created.raise_for_status()
        # The host's staff, each with the switch (as COINS sets "New Outlook to ERP+" per user), before the
        # consent: discovery matches them all, then they migrate.
        people = [u for u in await control.users(tid) if str(u.get("upn", "")).startswith("user")]
        gate = asyncio.Semaphore(16)

        async def put(person: dict[str, Any]) -> None:
            staff = {"upn": person["upn"], "switches": {"tasks_from_outlook": tasks_on}}
            async with gate:
                answer = await api.put(f"/api/v1/tenants/{tid}/staff/{person['id']}", json=staff)
            answer.raise_for_status()

        await asyncio.gather(*(put(p) for p in people))
        before = await control.stats()
        started = time.monotonic()
        async with httpx.AsyncClient(verify=stack.tls(), follow_redirects=True, timeout=60) as browser:
            page = await browser.get(created.json()["consent_url"])
        if page.status_code != 200:
            raise RuntimeError(f"consent failed: {page.status_code} {page.text[:500]}")
        state, done_at = "", None
        while state not in ("active", "degraded"):
            await asyncio.sleep(0.5)
            tenant = (await api.get(f"/api/v1/tenants/{tid}")).json()
            state, progress = tenant["state"], tenant.get("progress") or {}
            now = time.monotonic()
            if progress.get("phase") == "done" and done_at is None:
                done_at = now
            if done_at is not None and now - done_at > STUCK_AFTER:
                break
            if now - started > args.timeout:
                raise TimeoutError(f"migration not done after {args.timeout:.0f} s: {tenant}")
        finished = time.monotonic() if state in ("active", "degraded") else (done_at or time.monotonic())
        used = stack.sampler.cpu_seconds(started, finished)
        await wait_idle(stack)  # the task runs a migration queued (none expected) and the deliveries
        after = await control.stats()
    async with aiohttp.ClientSession() as session:
        feed = Feed(session, stack, tid)
        changes = await feed.next()
    tasks: dict[str, int] = {}
    linked: dict[str, int] = {}
    for change in changes:
        if change["type"] == "user.migrated":
            tasks[change["staff_id"]] = int(change["data"].get("tasks") or 0)
            linked[change["staff_id"]] = int(change["data"].get("tasks_linked") or 0)
    kind = "events and tasks" if tasks_on else "events only"
    users = int(tenant["progress"]["total"])
    migration = Migration(
        users,
        finished - started,
        Counter(c["type"] for c in changes),
        graph_requests(before, after),
        tasks,
        linked,
        feed.cursor,
        {name: round(seconds / users * 1000, 1) for name, seconds in used.items()},
    )
    print(
        f"  {kind}: {users} users migrated in {migration.seconds:.1f} s: {migration.per_second:.1f} users/s;"
        f" feed {dict(migration.changes)}",
        flush=True,
    )
    per_user = "   ".join(f"{name} {ms:.0f} ms" for name, ms in migration.cpu_ms_per_user.items())
    print(f"  CPU per migrated user: {per_user}", flush=True)
    return migration


def task_requests(migration: Migration, args: argparse.Namespace) -> dict[str, float]:
    """The lists' Graph requests against the minimum per user's list (printed, and answered per user)."""
    by_kind: Counter[str] = Counter()
    for endpoint, count in migration.requests.items():
        what = task_endpoint(endpoint)
        if what is not None:
            by_kind[what] += count
    users = migration.users
    pages = sum(max(1, math.ceil(n / TASK_PAGE)) for n in migration.tasks.values())
    minimum = {
        "list lookup": users,
        "subscription create (events and lists)": 2 * users,
        "tasks delta pages": pages,
    }
    print("  Graph requests of the lists (subscriptions: the calendar's and the list's):")
    print(f"    {'what':<44} {'actual':>8} {'minimum':>8}")
    for what, least in minimum.items():
        print(f"    {what:<44} {by_kind.get(what, 0):>8} {least:>8}")
    for what, count in sorted((k, v) for k, v in by_kind.items() if k not in minimum):
        print(f"    {what:<44} {count:>8} {'-':>8}")
    # the list's own: lookup, its subscription (one of the two creates per user), its delta pages
    actual = sum(by_kind.values()) - users  # less the calendar's subscription creates
    least = users + users + pages
    ratio = actual / least if least else 0.0
    print(
        f"  per user's list: {actual / users:.2f} requests (minimum {least / users:.2f}; {ratio:.2f}x)"
        f"   [aim <= 1.1x: {mark(ratio <= 1.1)}]"
    )
    counted = sum(migration.tasks.values())
    print(
        f"  tasks counted by user.migrated: {counted} (seeded {users * args.tasks}), linked "
        f"{sum(migration.linked.values())}; task.created announced: "
        f"{migration.changes.get('task.created', 0)}"
        f" (the unlinked ones, each once)"
    )
    return {
        "list_requests_per_user": round(actual / users, 2),
        "list_requests_minimum": round(least / users, 2),
    }


async def task_to_feed(stack: Stack, migration: Migration, args: argparse.Namespace) -> dict[str, float]:
    print(
        f"\n3. To Do change -> host feed: {args.changes} tasks made through Graph, one every "
        f"{args.interval:g} s",
        flush=True,
    )
    await wait_idle(stack)
    tid = stack.bulk_tenant_id
    token = await app_token(stack)
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(17)
    users = sorted(migration.tasks)
    answered: dict[str, float] = {}
    seen: dict[str, float] = {}
    done, all_seen = asyncio.Event(), asyncio.Event()
    async with aiohttp.ClientSession() as session:
        lists: dict[str, str] = {}

        async def list_of(user: str) -> str:
            if user not in lists:
                async with session.get(
                    f"{stack.ready['graph']}/users/{user}/todo/lists", headers=headers, ssl=stack.tls()
                ) as response:
                    found = (await response.json())["value"]
                lists[user] = next(lst["id"] for lst in found if lst["displayName"] == "Tasks from the host")
            return lists[user]

        feed = Feed(session, stack, tid, migration.cursor)
        await feed.next()

        async def poll() -> None:
            while not done.is_set():
                for change in await feed.next():
                    if change["type"] == "task.created":
                        seen.setdefault(change["data"]["task"]["id"], time.monotonic())
                if len(answered) == args.changes and set(answered) <= set(seen):
                    all_seen.set()
                await asyncio.sleep(FEED_POLL)

        async def create(index: int) -> None:
            user = rng.choice(users)
            list_id = await list_of(user)
            body = {"title": f"Bench task {index} {uuid.uuid4().hex[:6]}"}
            async with session.post(
                f"{stack.ready['graph']}/users/{user}/todo/lists/{list_id}/tasks",
                json=body,
                headers=headers,
                ssl=stack.tls(),
            ) as response:
                answer = await response.json()
                if response.status != 201:
                    raise RuntimeError(f"Graph create failed: {response.status} {answer}")
            answered[answer["id"]] = time.monotonic()

        for user in users[: min(len(users), 64)]:  # the list ids, before the clock starts
            await list_of(user)
        users = users[: min(len(users), 64)]
        poller = asyncio.create_task(poll())
        started = time.monotonic()
        creators = []
        for index in range(args.changes):
            creators.append(asyncio.create_task(create(index)))
            await asyncio.sleep(max(0.0, started + (index + 1) * args.interval - time.monotonic()))
        await asyncio.gather(*creators)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_seen.wait(), 60)
        done.set()
        await poller
    delays = [max(0.0, seen[i] - t) for i, t in answered.items() if i in seen]
    missing = len(answered) - len(delays)
    p50, p95 = percentile(delays, 0.5) * 1000, percentile(delays, 0.95) * 1000
    print(
        f"  Graph 201 -> task.created on the feed: p50 {p50:.0f} ms, p95 {p95:.0f} ms, max "
        f"{max(delays or [0.0]) * 1000:.0f} ms ({len(delays)} of {len(answered)} seen"
        f"{'' if not missing else f', {missing} never within 60 s'})   [aim p95 < 2 s: "
        f"{mark(p95 < 2000 and not missing)}]"
    )
    return {
        "change_to_feed_p50_ms": round(p50),
        "change_to_feed_p95_ms": round(p95),
        "changes_missing": missing,
    }


def migration_figures(
    baseline: Migration | None, migration: Migration, args: argparse.Namespace
) -> dict[str, Any]:
    """The migration's figures for `--json`: users per second with and without tasks, the cost."""
    out: dict[str, Any] = {
        "users": migration.users,
        "events_per_user": args.events,
        "tasks_per_user": args.tasks,
        "latency_ms": args.latency_ms,
        "with_tasks_users_per_second": round(migration.per_second, 2),
        "with_tasks_seconds": round(migration.seconds, 1),
        "with_tasks_cpu_ms_per_user": migration.cpu_ms_per_user,
    }
    if baseline is not None:
        out |= {
            "events_only_users_per_second": round(baseline.per_second, 2),
            "events_only_seconds": round(baseline.seconds, 1),
            "events_only_cpu_ms_per_user": baseline.cpu_ms_per_user,
            "tasks_cost_percent": round((baseline.per_second / migration.per_second - 1) * 100, 1),
        }
    return out


def rounds_figures(
    rounds: list[tuple[Migration | None, Migration]], args: argparse.Namespace
) -> dict[str, Any]:
    """Every round's migration figures, and the medians (the cost's median is the rounds' costs')."""
    each = [migration_figures(baseline, migration, args) for baseline, migration in rounds]
    out = dict(each[-1])
    for key in ("with_tasks_users_per_second", "events_only_users_per_second", "tasks_cost_percent"):
        values = [f[key] for f in each if key in f]
        if values:
            out[key] = round(statistics.median(values), 2 if "second" in key else 1)
            out[f"{key}_each"] = values
    if len(rounds) > 1 and "tasks_cost_percent" in out:
        costs = ", ".join(f"{c:+.0f} %" for c in out["tasks_cost_percent_each"])
        print(f"  tasks cost, median of {len(rounds)} rounds: {out['tasks_cost_percent']:+.0f} % ({costs})")
    out["rounds"] = len(rounds)
    return out


def write_figures(args: argparse.Namespace, figures: dict[str, Any], calibration: dict[str, Any]) -> None:
    import datetime as dt
    import json

    document = {
        "command": "python -m benchmarks.task_sync_bench " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "calibration": calibration,
        "figures": figures,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"figures written to {args.json}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.task_sync_bench", description=summary)
    add_stack_arguments(parser, users=200, events=50)
    parser.add_argument("--tasks", type=int, default=20, help="To Do tasks per user (20)")
    parser.add_argument("--changes", type=int, default=40, help="To Do changes to time (40; 0 skips)")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between To Do changes (0.25)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up on a migration after (1800 s)")
    parser.add_argument("--skip-baseline", action="store_true", help="skip the events-only run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="events-only and with-tasks migrations, each on a fresh stack, the order alternating round "
        "by round; the cost is the median of the rounds' (1)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures there (for publish)")
    return parser.parse_args(argv)


def with_tasks(args: argparse.Namespace, label: str, figures: dict[str, Any], *, last: bool) -> Migration:
    """The migration with tasks on its own stack; in the last round, its lists' requests against the
    minimum and the change-to-feed timing too, on the same stack."""
    print(f"\n2. Migration, events and tasks{label}", flush=True)
    with running_stack(args) as stack:

        async def run() -> Migration:
            migration = await migrate(stack, args, tasks_on=True)
            if last:
                figures.update(task_requests(migration, args))
                if args.changes:
                    figures.update(await task_to_feed(stack, migration, args))
            return migration

        return asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(
        f"task sync bench: {args.users} users x {args.events} events x {args.tasks} tasks, emulator latency "
        f"{args.latency_ms:g} ms, {args.instances} host process(es) per queue function"
    )
    fastest, slowest = machine_speed()
    print(f"machine: {fastest:.0f}-{slowest:.0f} ms for a fixed workload (lower: faster; see machine_speed)")
    calibration: dict[str, Any] = {"before_ms": [round(fastest), round(slowest)]}
    figures: dict[str, Any] = {}
    try:
        rounds: list[tuple[Migration | None, Migration]] = []
        for number in range(1, args.rounds + 1):
            label = f" (round {number} of {args.rounds})" if args.rounds > 1 else ""
            last = number == args.rounds
            # The order alternates round by round (events only first, then tasks first), so that a machine
            # speeding up or slowing down through a run weighs on both alike.
            tasks_first = number % 2 == 0
            baseline = None
            if tasks_first:
                migration = with_tasks(args, label, figures, last=last)
            if not args.skip_baseline:
                print(f"\n1. Migration, events only{label}", flush=True)
                with running_stack(argparse.Namespace(**{**vars(args), "tasks": 0})) as stack:
                    baseline = asyncio.run(migrate(stack, args, tasks_on=False))
            if not tasks_first:
                migration = with_tasks(args, label, figures, last=last)
            rounds.append((baseline, migration))
            if baseline is not None:
                cost = baseline.per_second / migration.per_second - 1
                print(
                    f"  tasks cost {cost * 100:+.0f} % in time per user against events only "
                    f"({baseline.per_second:.1f} -> {migration.per_second:.1f} users/s)"
                    f"   [aim < 30 %: {mark(cost < 0.3)}]"
                )
        figures.update(rounds_figures(rounds, args))
        fastest, slowest = machine_speed()
        print(f"\nmachine after the run: {fastest:.0f}-{slowest:.0f} ms for the fixed workload")
        if args.json is not None:
            calibration["after_ms"] = [round(fastest), round(slowest)]
            write_figures(args, figures, calibration)
    except KeyboardInterrupt:
        print("\ninterrupted; every process is stopped", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
