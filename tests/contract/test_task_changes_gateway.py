"""One suite of `TaskChangesGateway` behaviours (with the `SubscriptionGateway` renewing and deleting what
it made), run against the in-memory fake (`tests/fakes/todo.py`) and the real Graph adapter on the
emulator, so the fake the service tests rely on keeps the real contract.

Each driver does what a staff member does in To Do (add, rename, complete, delete a task, move it to
another list), what the connector's write side leaves on a task (its linked resource), and what Graph
does on its own (forget delta tokens); the assertions are the same for both.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

import pytest

from shared.adapters.graph.calendar import GraphSubscriptions
from shared.adapters.graph.task_changes import GraphTaskChanges
from shared.adapters.graph.todo import GraphTodo
from shared.domain.outlook_tasks import (
    TASK_LINK_APPLICATION,
    OutlookTask,
    RemovalReason,
    RemovedTask,
    TaskStatus,
)
from shared.domain.tenants import Tenant
from shared.service.errors import DeltaTokenRejected, SubscriptionGone
from shared.service.ports.graph import SubscriptionGateway
from shared.service.ports.task_changes import TaskChangesGateway
from shared.service.ports.todo import MailboxList, TaskLink, TodoDraft, TodoGateway, WallTime
from shared.service.records import TaskDeltaRead
from tests.fakes.calendar import FakeMailboxes
from tests.fakes.outlook_tasks import task
from tests.fakes.todo import FakeTodo
from tests.integration.graph.harness import EmulatorGraph, open_emulator_graph, tenant_named

pytestmark = pytest.mark.contract


class Driver(Protocol):
    gateway: TaskChangesGateway
    todo: TodoGateway  # the write side, on the same To Do
    subscriptions: SubscriptionGateway
    tenant: Tenant

    async def new_list(self) -> tuple[str, str]: ...
    async def add(
        self, user: str, list_id: str, title: str, *, host_task_id: str | None = None, due: Any = None
    ) -> str: ...
    async def edit(self, user: str, list_id: str, task_id: str, **changes: Any) -> None: ...
    async def delete(self, user: str, list_id: str, task_id: str) -> None: ...
    async def move(self, user: str, list_id: str, task_id: str) -> None: ...
    async def expire_tokens(self, user: str, list_id: str) -> None: ...


class FakeDriver:
    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.fake = FakeTodo(FakeMailboxes())
        self.gateway: TaskChangesGateway = self.fake
        self.todo: TodoGateway = self.fake
        self.subscriptions: SubscriptionGateway = self.fake.mailboxes
        self.tenant = tenant_named("3f1d6a52-0000-4000-8000-000000000001", "contoso.example")

    async def new_list(self) -> tuple[str, str]:
        user = f"user-{next(self._ids)}"
        return user, await self.fake.connector_list(user, f"Jobs {next(self._ids)}")

    async def add(
        self, user: str, list_id: str, title: str, *, host_task_id: str | None = None, due: Any = None
    ) -> str:
        day = date.fromisoformat(due["dateTime"][:10]) if due else None
        made = task(f"AAMkFakeTask{next(self._ids)}=", title=title, host_task_id=host_task_id, due=day)
        zone = due["timeZone"] if due else "UTC"
        return self.fake.put(user, list_id, made, zone=zone).id

    async def edit(self, user: str, list_id: str, task_id: str, **changes: Any) -> None:
        current = self.fake.task_list(user, list_id).tasks[task_id].outlook(None)
        self.fake.put(user, list_id, replace(current, **changes))

    async def delete(self, user: str, list_id: str, task_id: str) -> None:
        self.fake.remove(user, list_id, task_id)

    async def move(self, user: str, list_id: str, task_id: str) -> None:
        self.fake.remove(user, list_id, task_id, moved=True)

    async def expire_tokens(self, user: str, list_id: str) -> None:
        self.fake.expire_tokens(user, list_id)


class GraphDriver:
    def __init__(self, graph: EmulatorGraph) -> None:
        self.graph = graph
        self.gateway = GraphTaskChanges(
            graph.clients,
            graph.key_for,
            notification_url=graph.webhook.notification_url,
            lifecycle_url=graph.webhook.lifecycle_url,
            page_size=2,  # the tests' lists span pages
        )
        self.todo = GraphTodo(graph.clients, graph.key_for)
        self.subscriptions: GraphSubscriptions = graph.subscriptions()
        self.tenant = graph.tenant
        self.lists: dict[str, str] = {}  # list id -> its name

    def _tasks(self, user: str, list_id: str) -> str:
        return f"/users/{quote(user, safe='')}/todo/lists/{quote(list_id, safe='')}/tasks"

    async def new_list(self) -> tuple[str, str]:
        user = await self.graph.new_mailbox()
        name = f"Jobs {len(self.lists)}"
        made = await (await self.graph.graph()).request_json(
            "POST", f"/users/{user}/todo/lists", {"displayName": name}
        )
        self.lists[made["id"]] = name
        return user, made["id"]

    async def add(
        self, user: str, list_id: str, title: str, *, host_task_id: str | None = None, due: Any = None
    ) -> str:
        body: dict[str, Any] = {"title": title}
        if host_task_id:
            body["linkedResources"] = [
                {"applicationName": TASK_LINK_APPLICATION, "displayName": title, "externalId": host_task_id}
            ]
        if due:
            body["dueDateTime"] = due
        made = await (await self.graph.graph()).request_json("POST", self._tasks(user, list_id), body)
        return str(made["id"])

    async def edit(self, user: str, list_id: str, task_id: str, **changes: Any) -> None:
        body: dict[str, Any] = {}
        if "title" in changes:
            body["title"] = changes["title"]
        if changes.get("status") is TaskStatus.COMPLETED:
            body["status"] = "completed"
        path = f"{self._tasks(user, list_id)}/{quote(task_id, safe='')}"
        await (await self.graph.graph()).request_json("PATCH", path, body)

    async def delete(self, user: str, list_id: str, task_id: str) -> None:
        path = f"{self._tasks(user, list_id)}/{quote(task_id, safe='')}"
        await (await self.graph.graph()).request_json("DELETE", path)

    async def move(self, user: str, list_id: str, task_id: str) -> None:
        await self.graph.control.move_task(
            self.tenant.directory_id, user, task_id, to="Elsewhere", list_name=self.lists[list_id]
        )

    async def expire_tokens(self, user: str, list_id: str) -> None:
        await self.graph.control.expire_delta_tokens(tenant_id=self.tenant.directory_id, user=user)


@pytest.fixture(params=["fake", "emulator"])
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    if request.param == "fake":
        yield FakeDriver()
        return
    emulator = request.getfixturevalue("emulator")
    async with emulator.control as control:
        await control.reset()
    async with open_emulator_graph(emulator) as graph:
        yield GraphDriver(graph)


def tasks(read: TaskDeltaRead) -> dict[str, OutlookTask]:
    return {i.id: i for i in read.items if isinstance(i, OutlookTask)}


def removals(read: TaskDeltaRead) -> dict[str, RemovalReason]:
    return {i.id: i.reason for i in read.items if isinstance(i, RemovedTask)}


async def test_a_first_read_returns_every_task_with_the_hosts_link(driver: Driver):
    user, list_id = await driver.new_list()
    staffs = [await driver.add(user, list_id, f"Call {i}") for i in range(3)]
    hosts = await driver.add(user, list_id, "Quote for job 7", host_task_id="T-7")

    read = await driver.gateway.read_tasks_delta(driver.tenant, user, list_id, None)

    found = tasks(read)
    assert set(found) == {*staffs, hosts}
    assert found[hosts].host_task_id == "T-7"
    assert {found[s].host_task_id for s in staffs} == {None}
    assert found[staffs[0]].title == "Call 0"
    assert read.delta_link
    assert removals(read) == {}


async def test_the_link_reads_only_what_changed_since(driver: Driver):
    user, list_id = await driver.new_list()
    renamed, completed, deleted, moved, kept = [await driver.add(user, list_id, f"t{i}") for i in range(5)]
    first = await driver.gateway.read_tasks_delta(driver.tenant, user, list_id, None)
    await driver.edit(user, list_id, renamed, title="renamed")
    await driver.edit(user, list_id, completed, status=TaskStatus.COMPLETED)
    await driver.delete(user, list_id, deleted)
    await driver.move(user, list_id, moved)

    read = await driver.gateway.read_tasks_delta(driver.tenant, user, list_id, first.delta_link)

    found = tasks(read)
    assert set(found) == {renamed, completed}
    assert found[renamed].title == "renamed"
    assert found[completed].status is TaskStatus.COMPLETED
    assert found[renamed].change_key != tasks(first)[renamed].change_key
    assert removals(read) == {deleted: RemovalReason.DELETED, moved: RemovalReason.MOVED}
    assert kept not in found
    again = await driver.gateway.read_tasks_delta(driver.tenant, user, list_id, read.delta_link)
    assert again.items == []


async def test_an_expired_link_is_rejected_and_a_fresh_read_works(driver: Driver):
    user, list_id = await driver.new_list()
    made = await driver.add(user, list_id, "survivor")
    first = await driver.gateway.read_tasks_delta(driver.tenant, user, list_id, None)
    await driver.expire_tokens(user, list_id)
    with pytest.raises(DeltaTokenRejected):
        await driver.gateway.read_tasks_delta(driver.tenant, user, list_id, first.delta_link)
    fresh = await driver.gateway.read_tasks_delta(driver.tenant, user, list_id, None)
    assert set(tasks(fresh)) == {made}


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
async def test_a_due_date_set_in_the_users_zone_reads_as_that_day(driver: Driver, zone: str):
    user, list_id = await driver.new_list()
    due = {"dateTime": "2026-12-05T00:00:00", "timeZone": zone}
    made = await driver.add(user, list_id, "Due on the 5th", due=due)
    read = await driver.gateway.read_tasks_delta(driver.tenant, user, list_id, None, zone)
    assert tasks(read)[made].due == date(2026, 12, 5)


async def test_a_zone_known_only_later_gives_the_days_the_zone_gives(driver: Driver):
    """A migration's read starts before the mailbox's zone is read: the pages are requested meanwhile,
    their days taken in the zone once it comes."""
    user, list_id = await driver.new_list()
    zone = "Pacific/Kiritimati"
    due = {"dateTime": "2026-12-05T00:00:00", "timeZone": zone}
    made = await driver.add(user, list_id, "Due on the 5th", due=due)
    later: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
    gateway = driver.gateway
    reading = asyncio.ensure_future(gateway.read_tasks_delta(driver.tenant, user, list_id, None, later))
    await asyncio.sleep(0.05)
    assert not reading.done()  # the read waits for the zone before it answers
    later.set_result(zone)
    read = await reading
    assert tasks(read)[made].due == date(2026, 12, 5)
    assert read.requests == 1


async def test_a_task_subscription_renews_and_deletes_as_events_do(driver: Driver):
    user, list_id = await driver.new_list()
    expires = datetime.now(UTC) + timedelta(hours=48)
    made = await driver.gateway.subscribe_tasks(driver.tenant, user, list_id, "v1.state", expires)
    assert f"todo/lists/{list_id}/tasks" in made.resource
    assert abs(made.expires_at - expires) < timedelta(seconds=5)
    # a second create for the same list (a run that died before indexing the first) adopts it
    again = await driver.gateway.subscribe_tasks(driver.tenant, user, list_id, "v1.state", expires)
    assert again.id == made.id
    assert again.adopted and not made.adopted  # its clientState's key version is not known
    later = expires + timedelta(hours=1)
    renewed = await driver.subscriptions.renew(driver.tenant, again.id, later)
    assert abs(renewed - later) < timedelta(seconds=5)
    await driver.subscriptions.delete(driver.tenant, again.id)
    with pytest.raises(SubscriptionGone):
        await driver.subscriptions.renew(driver.tenant, again.id, later)


async def test_what_the_connector_writes_is_what_the_lists_delta_read_returns(driver: Driver):
    user, list_id = await driver.new_list()
    first = await driver.gateway.read_tasks_delta(driver.tenant, user, list_id, None)
    where = MailboxList(user, list_id)
    due = WallTime(datetime(2026, 12, 5), "Pacific/Kiritimati")
    link = TaskLink(TASK_LINK_APPLICATION, "T-9", "Task T-9")
    made = await driver.todo.create_task(
        driver.tenant, where, TodoDraft("Quote for job 9", due=due), link, []
    )

    read = await driver.gateway.read_tasks_delta(
        driver.tenant, user, list_id, first.delta_link, "Pacific/Kiritimati"
    )

    [seen] = tasks(read).values()
    assert (seen.id, seen.host_task_id, seen.title) == (made.id, "T-9", "Quote for job 9")
    assert seen.due == date(2026, 12, 5) and seen.change_key == made.etag
    await driver.todo.delete_task(driver.tenant, where, made.id)
    gone = await driver.gateway.read_tasks_delta(driver.tenant, user, list_id, read.delta_link)
    assert removals(gone) == {made.id: RemovalReason.DELETED}
