"""Mail from staff mailboxes, end to end: how soon a mail PUT is sent, how many Graph requests a mail
takes, and how fast a burst drains with every copy delivered exactly once.

    .venv/bin/python -m benchmarks.mail_bench [--users 50] [--samples 30] [--burst 1000]
                                              [--latency-ms 50] [--concurrency 50]

Starts the same stack as `benchmarks.sync_bench` (Azurite, the emulator with a bulk tenant at `--latency-ms`
per request, the local host running the real app), migrates the bulk tenant (all-users scope: the staff ids
are the Graph user ids), turns mail on for every staff member (the staff PUT's `switches.mail`), then:

1. Latency: `--samples` mails one after another (one recipient each, spread over the staff): the time from
   the PUT's 202 to the message's state `sent` (its GET polled every 20 ms), p50/p95.
2. Graph requests per mail (the emulator's `/stats` around phase 1) against the minimum: `sendMail` would
   be one request, but it cannot be made exactly once; the draft's POST and its send are two.
3. Burst: `--burst` mail PUTs spread over the staff, `--concurrency` at a time; the API's answer latency,
   the time until every one is on the feed as `mail.sent` or `mail.failed` (messages per second), and the
   copies the emulator delivered of them (aim: exactly one each). Exchange Online's 30 messages per minute
   per mailbox hold: 1,000 mails from 50 staff is 20 each.

Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp
import httpx

from benchmarks.sync_bench import (
    Feed,
    Stack,
    add_stack_arguments,
    graph_requests,
    migrate,
    percentile,
    run_on_stack,
)
from shared.domain.mail import MAIL_PROPERTY_ID

MINIMUM_REQUESTS = 2  # the draft's POST and its send


def mail(staff_id: str, number: int) -> dict[str, Any]:
    return {
        "from_staff_id": staff_id,
        "to": [{"name": "Chris Customer", "address": f"customer{number % 97}@customer.example"}],
        "subject": f"Bench mail {number}",
        "body": {"content_type": "html", "content": f"<p>Your booking {number} is confirmed.</p>"},
    }


def mail_requests(diff: Counter[str]) -> Counter[str]:
    """Graph requests on messages (drafts, look-ups, attachments, send), as the emulator's stats name them."""
    return Counter({k: v for k, v in diff.items() if "/messages" in k or "/mailFolders/" in k})


async def switch_mail_on(stack: Stack, staff: list[str]) -> None:
    tid = stack.bulk_tenant_id
    api = httpx.AsyncClient(base_url=stack.url, headers={"x-functions-key": stack.key}, timeout=60)
    async with api:
        users: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            params = {"page_size": "500", **({"cursor": cursor} if cursor else {})}
            page = (await api.get(f"/api/v1/tenants/{tid}/users", params=params)).json()
            users.update({u["staff_id"]: u for u in page["value"]})
            cursor = page.get("next_cursor")
            if not cursor:
                break
        for staff_id in staff:
            user = users[staff_id]
            body = {"upn": user["upn"], "email": user["email"], "display_name": user["display_name"]}
            answer = await api.put(
                f"/api/v1/tenants/{tid}/staff/{staff_id}", json={**body, "switches": {"mail": True}}
            )
            answer.raise_for_status()


async def until_sent(api: httpx.AsyncClient, path: str, limit: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        body = (await api.get(path)).json()
        if body.get("state") == "sent":
            return time.monotonic() - started
        if body.get("state") == "failed":
            raise RuntimeError(f"{path}: {body}")
        await asyncio.sleep(0.02)
    raise TimeoutError(path)


async def latency(stack: Stack, staff: list[str], args: argparse.Namespace) -> None:
    tid = stack.bulk_tenant_id
    api = httpx.AsyncClient(base_url=stack.url, headers={"x-functions-key": stack.key}, timeout=60)
    async with api, stack.control() as control:
        before = await control.stats()
        seconds: list[float] = []
        for n in range(args.samples):
            path = f"/api/v1/tenants/{tid}/mail/lat-{n}-{uuid.uuid4().hex[:6]}"
            answer = await api.put(path, json=mail(staff[n % len(staff)], n))
            answer.raise_for_status()
            seconds.append(await until_sent(api, path))
        after = await control.stats()
    requests = mail_requests(graph_requests(before, after))
    per = sum(requests.values()) / args.samples
    p50, p95 = percentile(seconds, 0.5) * 1000, percentile(seconds, 0.95) * 1000
    print(f"  PUT -> sent p50 {p50:.0f} ms, p95 {p95:.0f} ms over {args.samples} mails")
    print(
        f"  Graph requests per mail: {per:.2f} (minimum {MINIMUM_REQUESTS}: the draft and its send; "
        f"{per / MINIMUM_REQUESTS:.2f}x) {dict(requests)}"
    )


async def burst(stack: Stack, staff: list[str], args: argparse.Namespace) -> None:
    tid = stack.bulk_tenant_id
    run = uuid.uuid4().hex[:6]
    async with aiohttp.ClientSession() as session:
        feed = Feed(session, stack, tid)
        await feed.next()  # from here on
        gate = asyncio.Semaphore(args.concurrency)
        answers: list[float] = []
        headers = {"x-functions-key": stack.key}

        async def one(n: int) -> None:
            path = f"{stack.url}/api/v1/tenants/{tid}/mail/burst-{run}-{n}"
            async with gate:
                sent = time.monotonic()
                async with session.put(path, json=mail(staff[n % len(staff)], n), headers=headers) as r:
                    r.raise_for_status()
                answers.append(time.monotonic() - sent)

        started = time.monotonic()
        await asyncio.gather(*(one(n) for n in range(args.burst)))
        accepted = time.monotonic() - started
        sent: set[str] = set()
        failed: dict[str, str] = {}
        while len(sent) + len(failed) < args.burst and time.monotonic() - started < args.timeout:
            for change in await feed.next():
                data = change["data"]
                if change["type"] == "mail.sent":
                    sent.add(data["message_id"])
                elif change["type"] == "mail.failed":
                    failed[data["message_id"]] = data["reason"]
            await asyncio.sleep(0.2)
        done = time.monotonic() - started
    async with stack.control() as control:
        delivered = await control.mail_deliveries()
    copies = Counter(
        (d.get("extended_properties") or {}).get(MAIL_PROPERTY_ID)
        for d in delivered
        if str((d.get("extended_properties") or {}).get(MAIL_PROPERTY_ID, "")).startswith(f"burst-{run}-")
    )
    p50, p99 = percentile(answers, 0.5) * 1000, percentile(answers, 0.99) * 1000
    print(
        f"  {args.burst} PUTs accepted in {accepted:.1f} s (answer p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
        f"{args.concurrency} at a time)"
    )
    print(
        f"  all settled after {done:.1f} s: {len(sent)} sent, {len(failed)} failed; "
        f"{len(sent) / done:.1f} messages per second"
    )
    twice = sum(1 for n in copies.values() if n > 1)
    print(
        f"  copies delivered: {sum(copies.values())} for {len(copies)} messages ({twice} delivered more than "
        f"once, {args.burst - len(copies)} not delivered)"
    )
    if failed:
        print(f"  first failure: {next(iter(failed.values()))}")


async def run(stack: Stack, args: argparse.Namespace) -> None:
    migrated = await migrate(stack, args)
    staff = sorted(migrated.users)[: args.staff]
    await switch_mail_on(stack, staff)
    print(
        f"\n1-2. Mail PUT -> sent ({args.latency_ms:g} ms per Graph request), mail on for {len(staff)} staff"
    )
    await latency(stack, staff, args)
    if args.burst:
        print(f"\n3. A burst of {args.burst} mails from {len(staff)} staff")
        await burst(stack, staff, args)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mail_bench", description=summary)
    add_stack_arguments(parser, users=50, events=1)
    parser.add_argument("--staff", type=int, default=50, help="staff the mails come from (50)")
    parser.add_argument("--samples", type=int, default=30, help="mails timed one after another (30)")
    parser.add_argument("--burst", type=int, default=1000, help="mails in the burst (1000; 0 skips)")
    parser.add_argument("--concurrency", type=int, default=50, help="PUTs in flight during the burst (50)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (1800 s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_on_stack(
        f"mail bench: {args.users} users, emulator latency {args.latency_ms:g} ms",
        args,
        run,
    )


if __name__ == "__main__":
    main()
