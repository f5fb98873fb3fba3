"""The `tasks` rows: each behaviour written once, run against the in-memory fake and the adapter on Azurite
(insert once, replace only with the current etag, the stored task read back whole, the tasks naming a
staff member, deletes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.adapters.tables.tasks import TableTasks
from shared.domain.tasks import (
    ChecklistItem,
    HostTask,
    TaskDay,
    TaskImportance,
    TaskRecord,
    TaskState,
    TaskStatus,
    WrittenChecklistItem,
)
from shared.service.errors import AlreadyExists, StaleWrite
from shared.service.ports.todo import TaskRepository
from tests.fakes.todo import FakeTasks
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TID = "contoso.example"
KIRI = ZoneInfo("Pacific/Kiritimati")


@pytest.fixture(params=["fake", "azurite"])
async def rows(request: pytest.FixtureRequest) -> AsyncIterator[TaskRepository]:
    if request.param == "fake":
        yield FakeTasks()
        return
    async with fresh_storage(request.getfixturevalue("azurite"), "tasks") as storage:
        yield TableTasks(storage)


def host_task(task_id: str = "t/1 ü", staff_id: str = "s1") -> HostTask:
    return HostTask(
        task_id=task_id,
        staff_id=staff_id,
        title="Call back — ünïcode",
        body="<p>Quote</p>",
        body_type="html",
        due=TaskDay(date(2026, 12, 31)),
        start=TaskDay(date(2026, 12, 30), datetime(2026, 12, 30, 9, 30, tzinfo=KIRI), "Pacific/Kiritimati"),
        reminder_at=datetime(2026, 12, 30, 21, 15, 7, tzinfo=UTC),
        importance=TaskImportance.HIGH,
        status=TaskStatus.COMPLETED,
        completed_at=datetime(2026, 12, 31, 8, 0, 1, tzinfo=UTC),
        categories=("Sales",),
        recurrence="FREQ=WEEKLY;BYDAY=MO",
        checklist=(ChecklistItem("a", "Price", True), ChecklistItem("b", "Dates")),
        time_zone="Pacific/Kiritimati",
    )


async def test_a_task_is_inserted_once_and_read_back_whole(rows: TaskRepository) -> None:
    record = TaskRecord(TID, "t/1 ü", 1, host_task(), T0)
    saved = await rows.save(record)
    assert saved.etag is not None
    with pytest.raises(AlreadyExists):
        await rows.save(record)
    read = await rows.get(TID, "t/1 ü")
    assert read == saved and read is not None and read.task == host_task()
    assert await rows.get(TID, "other") is None


async def test_replaces_need_the_current_etag_and_keep_where_it_was_written(rows: TaskRepository) -> None:
    saved = await rows.save(TaskRecord(TID, "t1", 1, host_task("t1"), T0))
    written = replace(
        saved,
        state=TaskState.PARTIAL,
        error="step b: refused",
        written_revision=1,
        reported_revision=1,
        reported_state=TaskState.PARTIAL,
        staff_id="s1",
        graph_user_id="g1",
        list_id="L1",
        graph_task_id="T1",
        checklist=(WrittenChecklistItem("a", "c1", "Price", True),),
        written_etag='W/"x"',
    )
    again = await rows.save(written)
    assert await rows.get(TID, "t1") == again
    with pytest.raises(StaleWrite):
        await rows.save(written)
    deleted = await rows.save(replace(again, task=None, revision=2))
    read = await rows.get(TID, "t1")
    assert read == deleted and read is not None and read.task is None


async def test_the_tasks_naming_a_staff_member_and_deletes(rows: TaskRepository) -> None:
    await rows.save(TaskRecord(TID, "named", 1, host_task("named", "s1"), T0))
    moved = await rows.save(TaskRecord(TID, "moved", 2, host_task("moved", "s2"), T0, staff_id="s1"))
    await rows.save(TaskRecord(TID, "other", 1, host_task("other", "s2"), T0))
    await rows.save(TaskRecord("fabrikam.example", "elsewhere", 1, host_task("elsewhere", "s1"), T0))
    assert sorted(r.task_id for r in await rows.naming(TID, "s1")) == ["moved", "named"]
    await rows.delete(TID, moved.task_id)
    await rows.delete(TID, moved.task_id)  # gone already is fine
    assert [r.task_id for r in await rows.naming(TID, "s1")] == ["named"]
    assert sorted(r.task_id for r in await rows.in_tenant(TID)) == ["named", "other"]
    await rows.delete_tenant(TID)
    assert await rows.naming(TID, "s2") == [] and await rows.get("fabrikam.example", "elsewhere") is not None


async def test_the_unsettled_tasks_are_those_not_synced(rows: TaskRepository) -> None:
    synced = await rows.save(TaskRecord(TID, "synced", 1, host_task("synced"), T0))
    await rows.save(replace(synced, state=TaskState.SYNCED, written_revision=1))
    await rows.save(TaskRecord(TID, "pending", 1, host_task("pending"), T0))
    await rows.save(TaskRecord(TID, "failed", 1, host_task("failed"), T0, state=TaskState.FAILED))
    await rows.save(TaskRecord(TID, "partial", 1, host_task("partial"), T0, state=TaskState.PARTIAL))
    await rows.save(TaskRecord("fabrikam.example", "elsewhere", 1, host_task("elsewhere"), T0))
    assert sorted(r.task_id for r in await rows.unsettled(TID)) == ["failed", "partial", "pending"]
