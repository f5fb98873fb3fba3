"""A migration's pulls in the message monitor on Table Storage (Azurite, every request recorded): the
calendar's run and the To Do list's run beside it are two messages, written in one request."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from devhost.azurite import Azurite
from shared.adapters.storage import StorageClients
from shared.adapters.tables.messages import MESSAGES, TableMessages
from shared.domain.tenants import TenantState
from shared.service import jobs
from shared.service.job_handlers import run_job
from shared.service.monitor import Direction, MessageQuery, MessageStatus
from tests.fakes.outlook_tasks import task
from tests.fakes.services import add_tenant, fake_world
from tests.fixtures.azurite import fresh_storage
from tests.fixtures.table_requests import recorded_table_requests

pytestmark = pytest.mark.contract

TID = "contoso.example"


@pytest.fixture
async def storage(azurite: Azurite) -> AsyncIterator[StorageClients]:
    async with fresh_storage(azurite, "migmsg") as clients:
        yield clients


async def test_a_migrations_calendar_and_list_pulls_are_written_together(
    storage: StorageClients, azurite: Azurite
) -> None:
    world = fake_world()
    await add_tenant(world, TID, TenantState.MIGRATING, matched=1)
    [user] = await world.users.list_all(TID)
    assert user.staff.switches.tasks_from_outlook and user.graph_user_id
    listed = await world.todo.connector_list(user.graph_user_id, "Tasks from the host")
    world.todo.put(user.graph_user_id, listed, task("A", title="Staff's own"))
    messages = TableMessages(storage)
    services = dataclasses.replace(world.services, messages=messages)
    await storage.table(MESSAGES)
    world.jobs.take()

    with recorded_table_requests(azurite.table_endpoint) as log:
        await run_job(services, jobs.migrate_user(TID, user.staff_id))

    since = world.clock.now() - timedelta(hours=1)
    query = MessageQuery(since, direction=Direction.PULL, until=world.clock.now() + timedelta(hours=1))
    page = await messages.list(TID, query)
    assert sorted(m.kind for m in page.messages) == ["migrate", "tasks_migrate"]
    assert {m.status for m in page.messages} == {MessageStatus.OK}
    assert len(log) == 1  # the monitor is the only table here: one transaction holds both messages
