"""An idle mailbox's night, counted in the emulator's stats (the real adapters, msgraph-sdk against the
emulator; state on the fakes): off the user's reconciliation night the nightly run costs one delta read
of the calendar and one of the To Do list, nothing else; a change made meanwhile, whose notification
never reached the connector, still arrives that night, once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.adapters.graph.task_changes import GraphTaskChanges
from shared.adapters.graph.todo import GraphTodo
from shared.domain.sync_window import reconciliation_night
from shared.domain.tenants import TenantState
from shared.domain.users import MatchStatus, StaffMember, UserRecord
from shared.service import jobs
from shared.service.context import Services
from shared.service.job_handlers import run_job
from shared.service.notifications import receive_lifecycle
from shared.service.schedules import fan_out
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.fixtures.emulator import EmulatorInfo
from tests.integration.graph.harness import EmulatorGraph, open_emulator_graph

pytestmark = pytest.mark.integration


@pytest.fixture
async def graph(emulator_reset: EmulatorInfo) -> AsyncIterator[EmulatorGraph]:
    async with open_emulator_graph(emulator_reset) as harness:
        yield harness


def graph_requests(stats: dict[str, Any]) -> Counter[str]:
    return Counter({k: v for k, v in stats["requests"].items() if " /v1.0" in k})


async def drain(world: FakeWorld, services: Services, graph: EmulatorGraph) -> None:
    for _ in range(50):
        lifecycle = [n for n in graph.webhook.received if "lifecycleEvent" in n]
        graph.webhook.received.clear()  # change notifications are dropped: the connector never hears them
        if lifecycle:
            await receive_lifecycle(services, json.dumps({"value": lifecycle}).encode())
        batch = [j for j in world.jobs.take() if j.queue != jobs.DELIVERY_QUEUE]
        if not batch:
            return
        for job in batch:
            await run_job(services, job)
    raise AssertionError("the queues never went quiet")


def next_at(now: datetime, hour: int) -> datetime:
    """The next `hour`:00 UTC after `now`."""
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return at + timedelta(days=1) if at <= now else at


async def evening(world: FakeWorld, graph: EmulatorGraph) -> None:
    """Both clocks to the next 20:00 UTC, whatever the hour the test runs at: the first night (02:00) is the
    next day's and comes 6 hours on, before the nightly run counts a subscription silent (12 hours), and
    the window (on whole UTC days) steps on the 8th night."""
    now = world.clock.now()
    at = next_at(now, 20)
    await graph.control.advance_clock(seconds=(at - now).total_seconds())
    world.clock.current = at


async def night(world: FakeWorld, services: Services, graph: EmulatorGraph) -> Counter[str]:
    """Both clocks to the next 02:00 UTC, the nightly timer's work run; the Graph requests it made."""
    now = world.clock.now()
    at = next_at(now, 2)
    before = graph_requests(await graph.control.stats())
    await graph.control.advance_clock(seconds=(at - now).total_seconds())
    world.clock.current = at
    await fan_out(services, jobs.nightly)
    await drain(world, services, graph)
    return graph_requests(await graph.control.stats()) - before


def connected(world: FakeWorld, graph: EmulatorGraph, reconciliation_days: int = 7) -> Services:
    """The fake world's services with the real Graph adapters (calendar, subscriptions, To Do)."""
    return replace(
        world.services,
        config=replace(world.services.config, reconciliation_days=reconciliation_days),
        calendar=graph.calendar(),
        subscriptions=graph.subscriptions(),
        task_changes=GraphTaskChanges(
            graph.clients,
            graph.key_for,
            notification_url=graph.webhook.notification_url,
            lifecycle_url=graph.webhook.lifecycle_url,
        ),
        todo=GraphTodo(graph.clients, graph.key_for),
    )


def quiet_staff(tenant_id: str, now: datetime, every_days: int, nights: int) -> str:
    """A staff id whose reconciliation night is none of the next `nights`."""
    return next(
        f"s{n}"
        for n in range(1, 1000)
        if not any(
            reconciliation_night(tenant_id, f"s{n}", now + timedelta(days=d), every_days)
            for d in range(nights + 1)
        )
    )


async def test_an_idle_users_night_is_one_delta_read_of_the_calendar_and_one_of_the_list(
    graph: EmulatorGraph,
):
    world = fake_world()
    world.clock.current = datetime.fromisoformat(await graph.control.clock())
    tenant = await add_tenant(
        world, graph.tenant.tenant_id, TenantState.ACTIVE, directory_id=graph.tenant.directory_id
    )
    services = connected(world, graph)
    now = world.clock.now()
    staff_id = quiet_staff(tenant.tenant_id, now, 7, nights=2)
    mailbox = await graph.new_mailbox()
    day = (now + timedelta(days=3)).date()
    await graph.seed(
        mailbox,
        {
            "subject": "Before",
            "start": {"dateTime": f"{day}T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{day}T10:00:00", "timeZone": "UTC"},
        },
    )
    staff = StaffMember(staff_id, f"{staff_id}@{tenant.tenant_id}", None, "Staff")
    await world.users.save(
        UserRecord(tenant.tenant_id, staff, MatchStatus.MATCHED, now, graph_user_id=mailbox)
    )
    await world.jobs.enqueue([jobs.migrate_user(tenant.tenant_id, staff_id)])
    await drain(world, services, graph)
    migrated = await world.users.get(tenant.tenant_id, staff_id)
    assert migrated is not None and migrated.delta_link and migrated.task_sync.delta_link

    spent = await night(world, services, graph)
    assert sum(spent.values()) == 2, spent
    assert {endpoint.split(" ")[0] for endpoint in spent} == {"GET"}
    assert all(endpoint.endswith("/delta") for endpoint in spent)
    after = await world.users.get(tenant.tenant_id, staff_id)
    assert after is not None and after.delta_since == migrated.delta_since  # no read of the whole window
    feed = world.feed.entries.get(tenant.tenant_id, [])
    assert [c.type for c in feed].count("event.created") == 1

    # A change made in Outlook that no notification brought: the next night announces it, once.
    client = await graph.graph()
    await client.request_json(
        "POST",
        f"/users/{mailbox}/events",
        {
            "subject": "While idle",
            "start": {"dateTime": f"{day}T11:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{day}T12:00:00", "timeZone": "UTC"},
        },
    )
    await night(world, services, graph)
    feed = world.feed.entries.get(tenant.tenant_id, [])
    subjects = [c.data["event"].get("subject") for c in feed if c.type == "event.created"]
    assert subjects.count("While idle") == 1


async def test_an_event_past_the_links_far_edge_is_announced_once_when_the_window_steps(graph: EmulatorGraph):
    world = fake_world()
    world.clock.current = datetime.fromisoformat(await graph.control.clock())
    await evening(world, graph)
    tenant = await add_tenant(
        world, graph.tenant.tenant_id, TenantState.ACTIVE, directory_id=graph.tenant.directory_id
    )
    services = connected(world, graph, reconciliation_days=28)
    now = world.clock.now()
    staff_id = quiet_staff(tenant.tenant_id, now, 28, nights=10)
    mailbox = await graph.new_mailbox()
    staff = StaffMember(staff_id, f"{staff_id}@{tenant.tenant_id}", None, "Staff")
    await world.users.save(
        UserRecord(tenant.tenant_id, staff, MatchStatus.MATCHED, now, graph_user_id=mailbox)
    )
    await world.jobs.enqueue([jobs.migrate_user(tenant.tenant_id, staff_id)])
    await drain(world, services, graph)
    migrated = await world.users.get(tenant.tenant_id, staff_id)
    assert migrated is not None and migrated.delta_window is not None
    day = (migrated.delta_window[1] + timedelta(days=1)).date()  # a day past what the link reads
    await graph.seed(
        mailbox,
        {
            "subject": "Far",
            "start": {"dateTime": f"{day}T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{day}T11:00:00", "timeZone": "UTC"},
        },
    )

    def announced() -> int:
        feed = world.feed.entries.get(tenant.tenant_id, [])
        return sum(1 for c in feed if c.type == "event.created" and c.data["event"].get("subject") == "Far")

    for number in range(1, 10):
        spent = await night(world, services, graph)
        if number < 8:  # the configured far edge is inside what the link reads: one delta read each
            assert announced() == 0 and sum(spent.values()) == 2, (number, spent)
        elif number == 8:  # past the margin: the calendar read whole over the next window
            assert announced() == 1, spent
    assert announced() == 1
