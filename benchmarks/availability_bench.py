"""Availability end to end: a slot question answered from the synced state against the same question
answered through Graph's getSchedule, the freshness of an Outlook change in the answer, and the answer's
agreement with a brute-force expansion of the emulator's calendars.

    .venv/bin/python -m benchmarks.availability_bench [--users 20] [--events 50] [--latency-ms 50]
                                                      [--staff 10] [--questions 40] [--changes 20]
                                                      [--baseline DIR]

Starts the stack of `benchmarks.sync_bench` (Azurite, the emulator with a bulk tenant at `--latency-ms`
per Graph request, the local host running the real app) and migrates the bulk tenant (all-users scope),
then, side by side in one run:

1. Latency: `--questions` times `POST /availability` for `--staff` staff ("all" of them), 30-minute slots
   every 30 minutes, 08:00-18:00 UTC on each of the next 28 days: answered from the synced state; and the
   same question 200 days ahead, beyond the synced window (180 days forward), so every staff member is
   answered through getSchedule. p50/p95 of each and the ratio; and, as the floor of any answer on this
   host, `GET /tenants/{tid}` (one storage read). With each, the CPU the host's HTTP process and Azurite
   spent per request (psutil), which a busy machine inflates less than the wall time.
2. Freshness: `--changes` events created through Graph in random staff calendars, one at a time; the time
   from Graph's 201 to the event in the staff member's busy times (polled every 20 ms), and, as the
   reference, to the event on the feed; p50/p95.
3. Agreement: for the staff of part 1, each busy answer against calendarView (expanded occurrences,
   cancelled ones left out; all-day events as dates), and the question's slots against a brute-force
   minute grid over those calendars (busy, tentative, oof and unknown block; all-day events from
   midnight in the mailbox's working-hours zone); the share that agree.

With `--baseline DIR` (a checkout of another revision, e.g. `git worktree add --detach DIR main`), part 1
only, against two stacks: this checkout's and one running the app at DIR, their questions asked in turn
(one of this checkout's, then the same of the baseline's), so that a shared, noisy machine loads both alike
and the two columns compare.

Prints the figures with the aims in brackets; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import httpx
import psutil

from benchmarks.sync_bench import (
    Feed,
    Stack,
    add_stack_arguments,
    app_token,
    mark,
    migrate,
    percentile,
    run_on_stack,
    running_stack,
)
from shared.domain.timezones import iana_zone

BLOCKING = {"busy", "tentative", "oof", "unknown"}  # the tenant's default policy
POLL = 0.02


def z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(values: list[float], share: float) -> float:
    return percentile(values, share) * 1000


def question(staff: list[str], first_day: datetime) -> dict[str, Any]:
    periods = [
        {
            "start": z(first_day + timedelta(days=d, hours=8)),
            "end": z(first_day + timedelta(days=d, hours=18)),
        }
        for d in range(28)
    ]
    return {
        "participants": [{"staff_ids": staff}],
        "periods": periods,
        "duration_minutes": 30,
        "interval_minutes": 30,
        "max_results": 512,
    }


@dataclass
class App:
    """One stack under test: its API client, tenant and staff, and the processes whose CPU is counted."""

    name: str
    stack: Stack
    api: httpx.AsyncClient
    staff: list[str]
    processes: dict[str, list[psutil.Process]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.processes = {
            "host-http": [psutil.Process(self.stack.host.pid or 0)],
            "azurite": [psutil.Process(pid) for pid in self.stack.azurite.pids.values()],
        }

    def cpu(self) -> dict[str, float]:
        return {name: sum(sum(p.cpu_times()[:2]) for p in group) for name, group in self.processes.items()}


@dataclass
class Timings:
    """Seconds per request, and the CPU seconds each process spent on them."""

    seconds: list[float] = field(default_factory=list)
    cpu: Counter[str] = field(default_factory=Counter)


async def timed(app: App, method: str, path: str, body: dict[str, Any] | None, into: Timings) -> None:
    before = app.cpu()
    started = time.perf_counter()
    answer = await app.api.request(method, path, json=body)
    into.seconds.append(time.perf_counter() - started)
    answer.raise_for_status()
    into.cpu.update({name: spent - before[name] for name, spent in app.cpu().items()})


async def latency(apps: list[App], args: argparse.Namespace) -> None:
    """Part 1, for each app; with a baseline, question by question in turn, so both see the same load."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    asked: dict[str, list[tuple[str, str, dict[str, Any] | None]]] = {}
    for app in apps:
        tid = app.stack.bulk_tenant_id
        synced_body = question(app.staff, today + timedelta(days=1))
        graph_body = question(app.staff, today + timedelta(days=200))
        for body, source in ((synced_body, "synced"), (graph_body, "graph")):
            answer = (await app.api.post(f"/api/v1/tenants/{tid}/availability", json=body)).json()
            sources = {s["source"] for s in answer["staff"]}
            errors = [s["error"] for s in answer["staff"] if s["error"]]
            if sources != {source} or errors:
                print(f"  warning: the {source} question was answered from {sources}, errors {errors[:2]}")
        asked[app.name] = [
            ("POST", f"/api/v1/tenants/{tid}/availability", synced_body),
            ("POST", f"/api/v1/tenants/{tid}/availability", graph_body),
            ("GET", f"/api/v1/tenants/{tid}", None),  # the host and one storage read: any answer's floor
        ]
    together = " (interleaved with the baseline, question by question)" if len(apps) > 1 else ""
    print(
        f"\n1. A slot question for {len(apps[0].staff)} staff over 4 weeks ({args.questions} each, one at a"
        f" time){together}"
    )
    names = ("synced state", "getSchedule", "GET tenant")
    results = {app.name: [Timings() for _ in names] for app in apps}
    for kind in range(len(names)):
        for _ in range(args.questions):
            for app in apps:
                method, path, sent = asked[app.name][kind]
                await timed(app, method, path, sent, results[app.name][kind])
    for app in apps:
        if len(apps) > 1:
            print(f"  {app.name}:")
        for name, found in zip(names, results[app.name], strict=True):
            cpu = "   ".join(
                f"{p} {spent * 1000 / len(found.seconds):5.1f}" for p, spent in found.cpu.items()
            )
            print(
                f"  {name:<13} p50 {ms(found.seconds, 0.5):7.1f} ms   p95 {ms(found.seconds, 0.95):7.1f} ms"
                f"   CPU ms per request: {cpu}"
            )
        synced, graph = results[app.name][0].seconds, results[app.name][1].seconds
        p95 = percentile(synced, 0.95) * 1000
        print(
            f"  ratio getSchedule/synced: p50 {percentile(graph, 0.5) / percentile(synced, 0.5):.1f}x, "
            f"p95 {percentile(graph, 0.95) / percentile(synced, 0.95):.1f}x   "
            f"[aim: synced p95 < 30 ms: {mark(p95 < 30)}]"
        )


async def freshness(stack: Stack, api: httpx.AsyncClient, staff: list[str], args: argparse.Namespace) -> None:
    tid = stack.bulk_tenant_id
    print(f"\n2. Freshness of an Outlook change ({args.changes} events, one at a time)")
    graph = httpx.AsyncClient(
        base_url=stack.ready["graph"], verify=stack.tls(), timeout=60, headers=await _graph_headers(stack)
    )
    rng = random.Random(11)
    in_answer: list[float] = []
    on_feed: list[float] = []
    async with graph, aiohttp.ClientSession() as session:
        feed = Feed(session, stack, tid)
        await feed.next()
        for n in range(args.changes):
            user = rng.choice(staff)
            start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(
                days=3 + n % 20, hours=2
            )
            subject = f"fresh {uuid.uuid4().hex[:8]}"
            body = {
                "subject": subject,
                "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                "end": {
                    "dateTime": (start + timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%S"),
                    "timeZone": "UTC",
                },
            }
            created_at = time.perf_counter()
            made = await graph.post(f"/users/{user}/events", json=body)
            made.raise_for_status()
            created_at = time.perf_counter()
            wanted = (z(start), z(start + timedelta(minutes=20)))
            seen_answer: float | None = None
            seen_feed: float | None = None
            while seen_answer is None or seen_feed is None:
                if time.perf_counter() - created_at > 60:
                    break
                if seen_answer is None:
                    found = await api.get(
                        f"/api/v1/tenants/{tid}/staff/{user}/busy",
                        params={"start": z(start - timedelta(hours=1)), "end": z(start + timedelta(hours=1))},
                    )
                    if any((b["start"], b["end"]) == wanted for b in found.json().get("busy", [])):
                        seen_answer = time.perf_counter() - created_at
                if seen_feed is None:
                    changes = await feed.next()
                    if any(c["data"].get("event", {}).get("subject") == subject for c in changes):
                        seen_feed = time.perf_counter() - created_at
                await asyncio.sleep(POLL)
            if seen_answer is not None:
                in_answer.append(seen_answer)
            if seen_feed is not None:
                on_feed.append(seen_feed)
    for name, values in (("in the answer", in_answer), ("on the feed", on_feed)):
        print(
            f"  {name:<14} p50 {ms(values, 0.5):7.0f} ms   p95 {ms(values, 0.95):7.0f} ms"
            f"   ({len(values)}/{args.changes} seen)"
        )
    ok = percentile(in_answer, 0.95) <= percentile(on_feed, 0.95) + POLL * 3
    print(f"  [aim: p95 in the answer no later than on the feed: {mark(ok and bool(in_answer))}]")


async def _graph_headers(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {await app_token(stack)}", "Prefer": 'outlook.timezone="UTC"'}


def _when(value: dict[str, str], all_day: bool) -> datetime | date:
    text = value["dateTime"][:19]
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return moment.date() if all_day else moment


async def agreement(stack: Stack, api: httpx.AsyncClient, staff: list[str]) -> None:
    tid = stack.bulk_tenant_id
    first_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    span = (first_day - timedelta(days=1), first_day + timedelta(days=29))
    print(
        f"\n3. Agreement with a brute-force expansion of the emulator's calendars ({len(staff)} staff, "
        "4 weeks)"
    )
    graph = httpx.AsyncClient(
        base_url=stack.ready["graph"], verify=stack.tls(), timeout=60, headers=await _graph_headers(stack)
    )
    blocked: set[int] = set()  # epoch minutes when someone is busy
    busy_agree = busy_total = 0
    async with graph:
        for user in staff:
            settings = (await graph.get(f"/users/{user}/mailboxSettings")).json()
            zone = ZoneInfo(iana_zone(settings["workingHours"]["timeZone"]["name"]) or "UTC")
            params: dict[str, str] | None = {
                "startDateTime": z(span[0]),
                "endDateTime": z(span[1]),
                "$top": "1000",
            }
            items: list[dict[str, Any]] = []
            url = f"/users/{user}/calendarView"
            while url:
                page = (await graph.get(url, params=params)).json()
                items += page["value"]
                url, params = page.get("@odata.nextLink", ""), None
            expected: set[tuple[str, str, str]] = set()
            for item in items:
                if item.get("isCancelled"):
                    continue
                all_day = bool(item.get("isAllDay"))
                start, end = _when(item["start"], all_day), _when(item["end"], all_day)
                show_as = item.get("showAs", "busy")
                if isinstance(start, datetime) and isinstance(end, datetime):
                    expected.add((z(start), z(end), show_as))
                    first, last = start, end
                else:
                    expected.add((start.isoformat(), end.isoformat(), show_as))
                    first = datetime.combine(start, datetime.min.time(), tzinfo=zone)
                    last = datetime.combine(end, datetime.min.time(), tzinfo=zone)
                if show_as in BLOCKING:
                    minute = int(first.timestamp()) // 60
                    while minute < -(-int(last.timestamp()) // 60):
                        blocked.add(minute)
                        minute += 1
            answer = (
                await api.get(
                    f"/api/v1/tenants/{tid}/staff/{user}/busy",
                    params={"start": z(span[0]), "end": z(span[1])},
                )
            ).json()
            found = {(b["start"], b["end"], b["show_as"]) for b in answer["busy"]}
            busy_total += len(found | expected)
            busy_agree += len(found & expected)
    oracle: list[str] = []
    for d in range(28):
        start = first_day + timedelta(days=d, hours=8)
        for half in range(20):
            slot = start + timedelta(minutes=30 * half)
            minute = int(slot.timestamp()) // 60
            if not any(m in blocked for m in range(minute, minute + 30)):
                oracle.append(z(slot))
    answer = (await api.post(f"/api/v1/tenants/{tid}/availability", json=question(staff, first_day))).json()
    slots = [s["start"] for s in answer["slots"]]
    oracle = oracle[:512]
    same = len(set(slots) & set(oracle))
    total = len(set(slots) | set(oracle))
    busy_share = busy_agree / busy_total if busy_total else 1.0
    slot_share = same / total if total else 1.0
    print(
        f"  busy times: {busy_agree}/{busy_total} agree ({busy_share:.1%})   "
        f"[aim 100 %: {mark(busy_share == 1)}]"
    )
    print(f"  slots: {same}/{total} agree ({slot_share:.1%})   [aim 100 %: {mark(slot_share == 1)}]")


async def run(stack: Stack, args: argparse.Namespace) -> None:
    migrated = await migrate(stack, args)
    staff = sorted(migrated.users)[: args.staff]
    api = httpx.AsyncClient(base_url=stack.url, headers={"x-functions-key": stack.key}, timeout=120)
    async with api:
        await agreement(stack, api, staff)  # before part 2 adds events
        await latency([App("this checkout", stack, api, staff)], args)
        if args.changes:
            await freshness(stack, api, staff, args)


async def run_with_baseline(baseline: Path, stack: Stack, args: argparse.Namespace) -> None:
    """Part 1 only, against this checkout's stack and a second one running the app at `baseline`."""
    with contextlib.ExitStack() as stacks:
        # running_stack runs its own event loop while it starts: on a thread of its own
        base = await asyncio.to_thread(stacks.enter_context, running_stack(args, baseline))
        apps: list[App] = []
        for name, each in (("this checkout", stack), (f"baseline {baseline}", base)):
            migrated = await migrate(each, args)
            api = httpx.AsyncClient(base_url=each.url, headers={"x-functions-key": each.key}, timeout=120)
            apps.append(App(name, each, api, sorted(migrated.users)[: args.staff]))
        try:
            await latency(apps, args)
        finally:
            for app in apps:
                await app.api.aclose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.availability_bench", description=summary)
    add_stack_arguments(parser, users=20, events=50)
    parser.add_argument("--staff", type=int, default=10, help="staff in the question (10)")
    parser.add_argument("--questions", type=int, default=40, help="questions timed per source (40)")
    parser.add_argument("--changes", type=int, default=20, help="Outlook changes timed (20; 0 skips)")
    parser.add_argument("--timeout", type=float, default=900, help="give up on the migration after (900 s)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout (e.g. a git worktree of main) whose app runs on a second stack: part 1 only, the"
        " two answered question by question in turn, so both see the machine's load alike",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    title = (
        f"availability bench: {args.users} users x {args.events} events, emulator latency "
        f"{args.latency_ms:g} ms, {args.staff} staff per question"
    )
    if args.baseline is None:
        run_on_stack(title, args, run)
    else:
        run_on_stack(
            f"{title}; baseline {args.baseline}", args, functools.partial(run_with_baseline, args.baseline)
        )


if __name__ == "__main__":
    main()
