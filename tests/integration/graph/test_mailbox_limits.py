"""Graph's limits held across workers, on the emulator through the real adapters (msgraph-sdk, Table
Storage on Azurite): two workers, as Azure Functions runs the sync queue's and the write queue's
functions on instances of their own, each with its own Graph clients and gate, sharing the mailbox
claims table. A sync's delta read on one worker and four event writes at a time on the other, on one
mailbox: never more than four requests at once in the emulator's stats, no MailboxConcurrency 429. And
a tenant Graph throttles as a whole: bulk reads of many mailboxes slow down and all finish."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import ClientSecretCredential

from devhost.azurite import Azurite
from shared.adapters.graph.calendar import GraphCalendar
from shared.adapters.graph.client import GraphClients, TenantKey
from shared.adapters.graph.writes import GraphCalendarWriter
from shared.adapters.tables.mailbox_claims import TableMailboxClaims
from shared.domain.appointments import Appointment, AppointmentState
from shared.domain.tenants import Tenant, TenantState
from shared.domain.users import MatchStatus, StaffMember, SyncState, UserRecord
from shared.service import jobs
from shared.service.appointment_api import get_appointment, put_appointment
from shared.service.job_handlers import run_job
from shared.service.work_priority import Priority, working_as
from tests.fakes.services import add_tenant, fake_world
from tests.fixtures.azurite import fresh_storage
from tests.fixtures.emulator import EmulatorInfo
from tests.integration.graph.harness import GRAPH_SCOPE, tenant_named

pytestmark = pytest.mark.integration

WINDOW = (datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))
Workers = Callable[[bool], Awaitable[tuple[GraphClients, GraphClients]]]


def event(subject: str, day: int) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"2030-03-{day:02d}T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"2030-03-{day:02d}T10:00:00", "timeZone": "UTC"},
    }


@pytest.fixture
async def org(emulator_reset: EmulatorInfo) -> AsyncIterator[tuple[EmulatorInfo, Tenant]]:
    emulator = emulator_reset
    async with emulator.control as control:
        domain = f"limits-{uuid.uuid4().hex[:10]}.example"
        created = await control.create_tenant("Limits", [domain])
        await control.consent(created["id"], emulator.client_id)
        yield emulator, tenant_named(created["id"], domain)


@pytest.fixture
async def workers(org: tuple[EmulatorInfo, Tenant], azurite: Azurite) -> AsyncIterator[Workers]:
    emulator, _ = org

    async def credential_for(key: TenantKey) -> AsyncTokenCredential:
        return ClientSecretCredential(
            key.directory_id,
            key.client_id,
            emulator.client_secret,
            authority=emulator.authority,
            disable_instance_discovery=True,
            connection_verify=emulator.ca_file,
        )

    async with AsyncExitStack() as stack:
        storage = await stack.enter_async_context(fresh_storage(azurite, "limits"))

        async def two(claimed: bool) -> tuple[GraphClients, GraphClients]:
            built = []
            for _ in range(2):
                clients = GraphClients(
                    emulator.graph,
                    GRAPH_SCOPE,
                    credential_for,
                    ca_bundle=emulator.ca_file,
                    claims=TableMailboxClaims(storage) if claimed else None,
                )
                stack.push_async_callback(clients.close)
                built.append(clients)
            return built[0], built[1]

        yield two


async def mailbox(emulator: EmulatorInfo, tenant: Tenant, events: int) -> tuple[str, str]:
    upn = f"staff-{uuid.uuid4().hex[:8]}@{tenant.tenant_id}"
    async with emulator.control as control:
        user = await control.create_user(tenant.directory_id, upn, time_zone="UTC")
        specs = [{"event": event(f"seeded {n}", 1 + n % 28)} for n in range(events)]
        if specs:
            await control.seed_events(tenant.directory_id, user["id"], specs)
    return str(user["id"]), upn


@pytest.mark.parametrize("claimed", [True, False], ids=["claims", "one-gate-per-worker"])
async def test_a_sync_and_writes_on_two_workers_stay_within_four_requests_on_a_mailbox(
    org: tuple[EmulatorInfo, Tenant], workers: Workers, claimed: bool
) -> None:
    emulator, tenant = org
    user_id, upn = await mailbox(emulator, tenant, 30)
    key = TenantKey(tenant.directory_id, emulator.client_id)
    sync_worker, write_worker = await workers(claimed)
    calendar = GraphCalendar(sync_worker, lambda _: asyncio.sleep(0, key), page_size=5)
    writer = await write_worker.for_tenant(key)
    async with emulator.control as control:
        await control.set_latency(150)

        async def sync_job() -> int:
            read = await calendar.read_delta(tenant, user_id, None, WINDOW)
            return len(read.items)

        async def write_jobs() -> None:
            for round_ in range(3):  # the write queue's function runs four messages at a time
                await asyncio.gather(
                    *(
                        writer.request_json(
                            "POST", f"/users/{quote(user_id)}/events", event(f"write {round_}.{n}", 2)
                        )
                        for n in range(4)
                    )
                )

        read, _ = await asyncio.gather(sync_job(), write_jobs())
        stats = await control.stats()
        await control.set_latency(0)
    assert read >= 30
    peak = stats["concurrency_peak"][f"{emulator.client_id}|{upn.lower()}"]
    if claimed:
        assert peak <= 4
        assert "concurrency" not in stats["throttled_by_reason"]
    else:  # each worker keeps only its own four: together they pass Outlook's
        assert peak > 4


async def test_bulk_reads_of_a_tenant_graph_throttles_slow_down_and_all_finish(
    org: tuple[EmulatorInfo, Tenant], workers: Workers
) -> None:
    emulator, tenant = org
    mailboxes = [(await mailbox(emulator, tenant, 12))[0] for _ in range(6)]
    key = TenantKey(tenant.directory_id, emulator.client_id)
    worker, _ = await workers(True)
    calendar = GraphCalendar(worker, lambda _: asyncio.sleep(0, key), page_size=3)
    async with emulator.control as control:
        await control.set_settings(throttle_tenant_budget=15, throttle_tenant_window_s=2)
        with working_as(Priority.BULK):
            reads = await asyncio.gather(
                *(calendar.read_delta(tenant, user_id, None, WINDOW) for user_id in mailboxes)
            )
        stats = await control.stats()
        await control.set_settings(throttle_tenant_budget=0)
    assert [len(read.items) for read in reads] == [12] * 6
    assert stats["throttled_by_reason"].get("tenant", 0) >= 1
    budget = (await worker.for_tenant(key)).budget
    assert budget.throttles >= 1 and budget.rate < budget.ceiling


async def test_a_migration_job_and_write_jobs_on_two_workers_stay_within_four_requests(
    org: tuple[EmulatorInfo, Tenant], workers: Workers
) -> None:
    """The jobs themselves, through the job table: a user's migration on the sync worker, four
    appointment writes for the same staff member at once on the write worker (the write queue's
    function takes several messages at a time); storage the in-memory fakes both workers share."""
    emulator, tenant = org
    user_id, upn = await mailbox(emulator, tenant, 30)
    key = TenantKey(tenant.directory_id, emulator.client_id)

    async def key_for(_: Tenant) -> TenantKey:
        return key

    sync_worker, write_worker = await workers(True)
    world = fake_world()
    async with emulator.control as control:
        world.clock.current = datetime.fromisoformat(await control.clock())
        await add_tenant(world, "limits.example", TenantState.ACTIVE, directory_id=tenant.directory_id)
        staff = StaffMember("s1", upn, None, "Staff One")
        await world.users.save(
            UserRecord("limits.example", staff, MatchStatus.MATCHED, world.clock.now(), graph_user_id=user_id)
        )
        syncing = replace(world.services, calendar=GraphCalendar(sync_worker, key_for, page_size=5))
        writing = replace(world.services, calendar_writer=GraphCalendarWriter(write_worker, key_for))
        day = world.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
        for n in range(4):
            start = day.replace(day=min(day.day + 1, 27), hour=8 + n)
            await put_appointment(
                writing,
                "limits.example",
                Appointment(f"a-{n}", f"Visit {n}", start, start.replace(hour=9 + n), "UTC", False, ("s1",)),
            )
        writes = world.jobs.take()
        assert len(writes) == 4
        await control.set_latency(150)
        await asyncio.gather(
            run_job(syncing, jobs.sync_user("limits.example", "s1", "migration", kind="migrate")),
            *(run_job(writing, job) for job in writes),
        )
        stats = await control.stats()
        await control.set_latency(0)
    user = await world.users.get("limits.example", "s1")
    assert user is not None and user.sync_state is SyncState.SYNCED
    for n in range(4):
        record = await get_appointment(writing, "limits.example", f"a-{n}")
        assert record.state is AppointmentState.SYNCED
    assert stats["concurrency_peak"][f"{emulator.client_id}|{upn.lower()}"] <= 4
    assert "concurrency" not in stats["throttled_by_reason"]
