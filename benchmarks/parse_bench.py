"""How long the connector takes to read a delta page: Graph's bytes to `OutlookEvent`s, and on to a plan.

    .venv/bin/python -m benchmarks.parse_bench [--events 200] [--rounds 200]

The page is what the emulator renders for a realistic mailbox (its demo calendar: stand-ups and
weekly series with attendees and Teams links, one-off meetings set in other zones, all-day events,
HTML bodies), 200 events with a few `@removed` entries, the shape of one `odata.maxpagesize=200`
delta page. Figures (best of `--rounds`, so the machine's noise shows least):
1. `parse_delta_page`: `json.loads` included, per event;
2. the same page through msgraph-sdk's model deserialisation, per event, for comparison (a few rounds);
3. parse + `shared.domain.planner.plan` against an empty stored map (a first sync: everything new)
   and against a full one (an incremental read where nothing the host sees changed).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from m365emulator.calendar.model import MailboxOwner
from m365emulator.calendar.render import View, render
from m365emulator.calendar.store import CalendarStore
from m365emulator.clock import Clock
from m365emulator.directory import User
from m365emulator.seed import demo_calendar
from shared.adapters.graph.events import parse_delta_page
from shared.domain.calendar import OutlookEvent
from shared.domain.planner import ItemStatus, Observation, Visibility, plan

ZONES = ("Pacific Standard Time", "W. Europe Standard Time", "India Standard Time", "UTC")


def delta_page(count: int = 200, *, removed: int = 5, seed: int = 7) -> bytes:
    """A calendarView delta page of `count` entries (`removed` of them `@removed`), as Graph's bytes."""
    rng = random.Random(seed)
    today = date(2026, 11, 16)
    team = [
        User(f"user-{i}", "tenant", f"person{i}@contoso.example", f"Person {i}", f"person{i}@contoso.example")
        for i in range(12)
    ]
    for i, person in enumerate(team):
        person.time_zone = ZONES[i % len(ZONES)]
    owner = team[0]
    store = CalendarStore(
        MailboxOwner(owner.tenant_id, owner.id, owner.upn, owner.mail, owner.display_name, owner.time_zone),
        Clock(),
        lambda change: None,
    )
    start = datetime(2026, 10, 1, tzinfo=UTC)
    instances: list[Any] = []
    for person in team:  # the owner's calendar, then colleagues' meetings, until the page is full
        for payload in demo_calendar(person, team, rng, today):
            store.seed_event(payload)
        instances = store.view(start, start + timedelta(days=180))
        if len(instances) >= count - removed:
            break
    view = View(store.owner)
    value: list[dict[str, Any]] = []
    for instance in instances[: count - removed]:
        day = instance.original_date if instance.event.kind == "seriesMaster" else None
        value.append(
            {"@odata.type": "#microsoft.graph.event", **render(instance.event, view, occurrence_of=day)}
        )
    for i in range(removed):
        value.append(
            {
                "@odata.type": "#microsoft.graph.event",
                "id": f"AAMkRemoved{i}=",
                "@removed": {"reason": "deleted"},
            }
        )
    page = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
        "@odata.deltaLink": "https://graph.microsoft.com/v1.0/users/x/calendarView/delta?$deltatoken=abc",
        "value": value,
    }
    return json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode()


def best(run: Callable[[], object], rounds: int) -> float:
    """The fastest of `rounds` runs, in seconds."""
    fastest = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - began)
    return fastest


def sdk_parse(body: bytes) -> int:
    """msgraph-sdk's way: a parse node over the bytes, then the generated `Event` models."""
    from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
    from msgraph.generated.users.item.calendar_view.delta.delta_get_response import DeltaGetResponse

    node = JsonParseNodeFactory().get_root_parse_node("application/json", body)
    response = node.get_object_value(DeltaGetResponse)
    return len(response.value or [])


def stored_from(items: list[Any]) -> dict[str, ItemStatus]:
    return {
        e.id: ItemStatus(
            e.id, e.change_key, e.ical_uid, e.content_hash(), e.ends_at(), True, None, e.series_master_id
        )
        for e in items
        if isinstance(e, OutlookEvent)
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)

    body = delta_page(args.events)
    items, _, _ = parse_delta_page(body)
    n = len(items)
    removed = n - sum(isinstance(i, OutlookEvent) for i in items)
    print(f"delta page: {n} entries ({removed} @removed), {len(body):,} bytes")

    per = 1e6 / n
    parse = best(lambda: parse_delta_page(body), args.rounds)
    loads = best(lambda: json.loads(body), args.rounds)
    print(
        f"parse_delta_page              {parse * per:7.1f} µs/event   (json.loads alone {loads * per:5.1f})"
    )

    try:
        sdk = best(lambda: sdk_parse(body), max(3, args.rounds // 50))
        print(f"msgraph-sdk deserialisation   {sdk * per:7.1f} µs/event   ({sdk / parse:.0f}x)")
    except ImportError as error:  # the SDK's module layout moved
        print(f"msgraph-sdk deserialisation   skipped ({error})")

    window_start = datetime(2026, 10, 1, tzinfo=UTC)
    visibility = Visibility()
    empty: dict[str, ItemStatus] = {}
    full = stored_from(items)

    def first_sync() -> None:
        page, _, _ = parse_delta_page(body)
        plan(Observation(page, complete=True, window_start=window_start), empty, visibility)

    def unchanged() -> None:
        page, _, _ = parse_delta_page(body)
        plan(Observation(page, complete=False, window_start=window_start), full, visibility)

    print(f"parse + plan, empty store     {best(first_sync, args.rounds) * per:7.1f} µs/event")
    print(f"parse + plan, full store      {best(unchanged, args.rounds) * per:7.1f} µs/event")


if __name__ == "__main__":
    main()
