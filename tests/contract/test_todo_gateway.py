"""The To Do gateway's contract, written once and run against the fake (`tests/fakes/todo.py`) and the real
Graph adapter (`shared/adapters/graph/todo.py`, msgraph-sdk's request adapter) on the emulator: lists found
by name and made, a task made with its link and checklist in one request and found again by the link, its
members written whole, dates kept as the instants they name, checklist items one by one, deletes that are
idempotent, a create answered 503 after it took effect, a list that cannot be made, a missing mailbox."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Protocol

import pytest

from shared.adapters.graph.todo import GraphTodo
from shared.domain.tenants import Tenant
from shared.service.errors import (
    MailboxUnavailable,
    RateLimited,
    TodoListMissing,
    TodoRefused,
    TodoTaskMissing,
)
from shared.service.ports.todo import (
    ChecklistDraft,
    ChecklistEntry,
    MailboxList,
    TaskLink,
    TodoDraft,
    TodoGateway,
    WallTime,
)
from tests.fakes.todo import FakeTodo
from tests.integration.graph.harness import EmulatorGraph, open_emulator_graph, tenant_named

pytestmark = pytest.mark.contract

APP = "Contract host"


class Driver(Protocol):
    todo: TodoGateway
    tenant: Tenant

    async def new_mailbox(self) -> str: ...
    async def create_fails_after_its_effect(self) -> None: ...
    async def lists_cannot_be_made(self, user: str) -> None: ...
    async def no_mailbox(self) -> str: ...


class FakeDriver:
    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.fake = FakeTodo()
        self.todo: TodoGateway = self.fake
        self.tenant = tenant_named("3f1d6a52-0000-4000-8000-000000000002", "contoso.example")

    async def new_mailbox(self) -> str:
        return f"user-{next(self._ids)}"

    async def create_fails_after_its_effect(self) -> None:
        self.fake.fail("create_task", "lost")

    async def lists_cannot_be_made(self, user: str) -> None:
        self.fake.fail("create_list", "refused")

    async def no_mailbox(self) -> str:
        user = await self.new_mailbox()
        self.fake.gone_mailboxes.add(user)
        return user


class EmulatorDriver:
    def __init__(self, graph: EmulatorGraph) -> None:
        self.graph = graph
        self.todo: TodoGateway = GraphTodo(graph.clients, graph.key_for)
        self.tenant = graph.tenant

    async def new_mailbox(self) -> str:
        return await self.graph.new_mailbox()

    async def create_fails_after_its_effect(self) -> None:
        await self.graph.control.add_fault(
            status=503, method="POST", path=r"/todo/lists/[^/]+/tasks$", when="after", count=4
        )

    async def lists_cannot_be_made(self, user: str) -> None:
        await self.graph.control.add_fault(
            status=403,
            code="ErrorAccessDenied",
            message="Access is denied. Check credentials and try again.",
            method="POST",
            path=r"/todo/lists$",
            mailbox=user,
        )

    async def no_mailbox(self) -> str:
        return await self.graph.new_mailbox(mailbox_enabled=False)


@pytest.fixture(params=["fake", "emulator"])
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    if request.param == "fake":
        yield FakeDriver()
        return
    emulator = request.getfixturevalue("emulator")
    async with open_emulator_graph(emulator) as graph:
        try:
            yield EmulatorDriver(graph)
        finally:
            await graph.control.clear_faults()


def link() -> TaskLink:
    task_id = f"t-{uuid.uuid4().hex[:10]}"
    return TaskLink(APP, task_id, f"Task {task_id}", f"https://host.example/tasks/{task_id}")


async def new_list(driver: Driver, user: str, name: str = "Host tasks") -> MailboxList:
    made = await driver.todo.create_list(driver.tenant, user, name)
    return MailboxList(user, made.id)


async def test_a_list_is_found_by_its_name_exactly_then_ignoring_case(driver: Driver) -> None:
    user, todo, tenant = await driver.new_mailbox(), driver.todo, driver.tenant
    assert await todo.find_list(tenant, user, "Host tasks") is None
    made = await todo.create_list(tenant, user, "Host tasks")
    assert made.name == "Host tasks"
    assert await todo.find_list(tenant, user, "Host tasks") == made
    assert await todo.find_list(tenant, user, "host TASKS") == made
    assert await todo.get_list(tenant, user, made.id) == made
    assert await todo.get_list(tenant, user, "AAMkAGnothere") is None
    await todo.delete_list(tenant, user, made.id)
    await todo.delete_list(tenant, user, made.id)  # gone already is fine
    assert await todo.find_list(tenant, user, "Host tasks") is None


async def test_a_task_is_made_with_its_link_and_checklist_and_found_by_the_link(driver: Driver) -> None:
    user, todo, tenant = await driver.new_mailbox(), driver.todo, driver.tenant
    where, mine, other = await new_list(driver, user), link(), link()
    draft = TodoDraft(
        title="Call back",
        body="<p>About the quote</p>",
        body_type="html",
        importance="high",
        due=WallTime(datetime(2026, 3, 10), "Line Islands Standard Time"),
        reminder=WallTime(datetime(2026, 3, 9, 8, 15, 30), "UTC"),
        categories=("Sales",),
    )
    checklist = [ChecklistDraft("Price", True), ChecklistDraft("Dates", False)]
    made = await todo.create_task(tenant, where, draft, mine, checklist)
    assert [(c.title, c.checked) for c in made.checklist] == [("Price", True), ("Dates", False)]
    assert all(c.id for c in made.checklist)
    assert made.due == datetime(2026, 3, 9, 10, tzinfo=UTC)  # midnight at UTC+14
    assert made.reminder == datetime(2026, 3, 9, 8, 15, 30, tzinfo=UTC)
    assert await todo.find_task(tenant, where, other) is None
    found = await todo.find_task(tenant, where, mine)
    assert found is not None and found.id == made.id
    assert found.links[0].external_id == mine.external_id
    assert await todo.find_task(tenant, where, TaskLink("Another app", mine.external_id, "x")) is None
    read = await todo.get_task(tenant, where, made.id)
    assert read is not None
    assert (read.title, read.importance, read.categories) == ("Call back", "high", ("Sales",))


async def test_an_update_writes_every_member_and_clears_what_is_gone(driver: Driver) -> None:
    user, todo, tenant = await driver.new_mailbox(), driver.todo, driver.tenant
    where = await new_list(driver, user)
    due = WallTime(datetime(2026, 3, 10), "UTC-11")
    made = await todo.create_task(tenant, where, TodoDraft("One", due=due), link(), [])
    completed = WallTime(datetime(2026, 3, 11, 17, 45, 12), "UTC")
    updated = await todo.update_task(
        tenant, where, made.id, TodoDraft("One, done", status="completed", completed=completed)
    )
    assert (updated.title, updated.status) == ("One, done", "completed")
    assert updated.due is None
    assert updated.completed == datetime(2026, 3, 11, 17, 45, 12, tzinfo=UTC)
    assert updated.etag != made.etag


async def test_checklist_items_one_by_one(driver: Driver) -> None:
    user, todo, tenant = await driver.new_mailbox(), driver.todo, driver.tenant
    where = await new_list(driver, user)
    made = await todo.create_task(tenant, where, TodoDraft("Pack"), link(), [ChecklistDraft("Tent", False)])
    added = await todo.add_checklist_item(tenant, where, made.id, ChecklistDraft("Stove", False))
    await todo.update_checklist_item(
        tenant, where, made.id, ChecklistEntry(made.checklist[0].id, "Tent", True)
    )
    held = await todo.checklist_items(tenant, where, made.id)
    assert [(e.id, e.title, e.checked) for e in held] == [
        (made.checklist[0].id, "Tent", True),
        (added, "Stove", False),
    ]
    await todo.delete_checklist_item(tenant, where, made.id, added)
    await todo.delete_checklist_item(tenant, where, made.id, added)  # gone already is fine
    assert [e.title for e in await todo.checklist_items(tenant, where, made.id)] == ["Tent"]
    with pytest.raises(TodoTaskMissing):
        await todo.add_checklist_item(tenant, where, "AAMkAGnotatask", ChecklistDraft("x", False))
    with pytest.raises(TodoTaskMissing):
        await todo.checklist_items(tenant, where, "AAMkAGnotatask")


async def test_deletes_are_idempotent_and_a_missing_task_or_list_is_said_so(driver: Driver) -> None:
    user, todo, tenant = await driver.new_mailbox(), driver.todo, driver.tenant
    where = await new_list(driver, user)
    made = await todo.create_task(tenant, where, TodoDraft("Gone soon"), link(), [])
    await todo.delete_task(tenant, where, made.id)
    await todo.delete_task(tenant, where, made.id)
    assert await todo.get_task(tenant, where, made.id) is None
    with pytest.raises(TodoTaskMissing):
        await todo.update_task(tenant, where, made.id, TodoDraft("x"))
    nowhere = MailboxList(user, "AAMkAGnotalist")
    with pytest.raises(TodoListMissing):
        await todo.create_task(tenant, nowhere, TodoDraft("x"), link(), [])
    await todo.delete_task(tenant, nowhere, made.id)


async def test_a_create_answered_503_after_its_effect_is_found_by_its_link(driver: Driver) -> None:
    user, todo, tenant = await driver.new_mailbox(), driver.todo, driver.tenant
    where, mine = await new_list(driver, user), link()
    await driver.create_fails_after_its_effect()
    with pytest.raises(RateLimited):
        await todo.create_task(tenant, where, TodoDraft("Made once"), mine, [])
    found = await todo.find_task(tenant, where, mine)
    assert found is not None and found.title == "Made once"


async def test_a_list_that_cannot_be_made_is_refused_with_graphs_words(driver: Driver) -> None:
    user = await driver.new_mailbox()
    await driver.lists_cannot_be_made(user)
    with pytest.raises(TodoRefused) as refused:
        await driver.todo.create_list(driver.tenant, user, "Host tasks")
    assert "403" in refused.value.reason
    assert await driver.todo.find_list(driver.tenant, user, "Host tasks") is None


async def test_a_user_without_a_mailbox_is_unavailable(driver: Driver) -> None:
    user = await driver.no_mailbox()
    with pytest.raises(MailboxUnavailable):
        await driver.todo.find_list(driver.tenant, user, "Host tasks")
