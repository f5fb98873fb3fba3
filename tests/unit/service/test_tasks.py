"""Host tasks to To Do on fakes: created, updated, completed, reassigned, deleted; due days that never
shift in the two extreme zones; reminders and completion times to the second; a staff member unmatched or
switched off reported failed and caught up once switched on; a list To Do refuses; a create answered 503
after it took effect made once; the Graph requests each write costs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from shared.adapters.tables.tasks import task_from_entity
from shared.domain.tasks import TASK_LINK_APPLICATION, TaskState
from shared.domain.tenants import TenantState
from shared.domain.users import DirectoryUser, MatchStatus
from shared.service import jobs
from shared.service.commands import parse_staff_put
from shared.service.errors import InvalidInput
from shared.service.job_handlers import run_job
from shared.service.records import WorkingHours, WorkingHoursRecord
from shared.service.schedules import nightly_tenant
from shared.service.sync import request_tenant_resync, request_user_resync
from shared.service.task_api import delete_task, get_task, put_task
from shared.service.task_bodies import parse_task
from shared.service.tenant_disconnect import purge_rows
from shared.service.tenant_settings import update_settings
from shared.service.users import delete_staff, put_staff, set_switches
from tests.fakes.directory import FakeOrganisation
from tests.fakes.services import FakeWorld, add_tenant, fake_world, run_queued
from tests.fakes.todo import FakeTask

pytestmark = pytest.mark.unit

TID = "contoso.example"
LIST = "Tasks from the host"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, matched=3)
    return w


async def run_all(world: FakeWorld) -> None:
    await run_queued(world)


async def put(world: FakeWorld, task_id: str, **body: Any) -> None:
    await put_task(world.services, TID, parse_task(task_id, {"staff_id": "s1", "title": "Call back", **body}))
    await run_all(world)


def in_list(world: FakeWorld, user: str) -> list[FakeTask]:
    return world.todo.tasks_in(user, LIST)


def feed(world: FakeWorld, kind: str) -> list[dict[str, Any]]:
    return [c.data for c in world.feed.entries.get(TID, []) if c.type == kind]


async def test_a_task_is_made_in_the_staff_members_list_once_with_its_link(world: FakeWorld) -> None:
    await put(world, "t1", body="<p>Quote</p>", body_type="html", importance="high", categories=["Sales"])
    [made] = in_list(world, "g1")
    assert (made.draft.title, made.draft.body_type, made.draft.importance) == ("Call back", "html", "high")
    assert (made.link.application_name, made.link.external_id) == (TASK_LINK_APPLICATION, "t1")
    record = await get_task(world.services, TID, "t1")
    assert (record.state, record.graph_task_id, record.written_revision) == (TaskState.SYNCED, made.id, 1)
    user = await world.users.get(TID, "s1")
    assert user is not None and user.todo_list_id == record.list_id
    assert [(d["task_id"], d["state"]) for d in feed(world, "task.synced")] == [("t1", "synced")]
    await put(world, "t1", body="<p>Quote</p>", body_type="html", importance="high", categories=["Sales"])
    assert len(in_list(world, "g1")) == 1 and len(feed(world, "task.synced")) == 1  # a replay: nothing


async def test_updated_then_completed_with_the_completion_time_kept(world: FakeWorld) -> None:
    await put(world, "t1", checklist=[{"id": "a", "title": "Price"}, {"id": "b", "title": "Dates"}])
    [made] = in_list(world, "g1")
    first_ids = [c.id for c in made.checklist]
    await put(
        world,
        "t1",
        title="Call back, done",
        status="completed",
        completed_at="2026-11-23T17:45:12+01:00",
        checklist=[{"id": "a", "title": "Price", "checked": True}, {"id": "c", "title": "Sign"}],
    )
    [done] = in_list(world, "g1")
    assert done.id == made.id
    assert (done.draft.title, done.draft.status) == ("Call back, done", "completed")
    assert done.item().completed == datetime(2026, 11, 23, 16, 45, 12, tzinfo=UTC)
    assert [(c.title, c.checked) for c in done.checklist] == [("Price", True), ("Sign", False)]
    assert done.checklist[0].id == first_ids[0]  # changed in place, not made again
    record = await get_task(world.services, TID, "t1")
    assert (record.state, record.revision, record.written_revision) == (TaskState.SYNCED, 2, 2)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
async def test_a_due_day_never_shifts_in_the_extreme_zones(world: FakeWorld, zone: str) -> None:
    hours = WorkingHours(("monday",), time(9), time(17), zone)
    await world.busy.write_hours(TID, "s1", WorkingHoursRecord(hours, zone, world.clock.now()))
    await put(world, "t1", due="2026-12-31", reminder_at="2026-12-30T21:15:07Z")
    [made] = in_list(world, "g1")
    item = made.item()
    assert item.due is not None and item.due.astimezone(__import__("zoneinfo").ZoneInfo(zone)).date() == date(
        2026, 12, 31
    )
    assert item.reminder == datetime(2026, 12, 30, 21, 15, 7, tzinfo=UTC)


async def test_a_due_given_with_its_own_zone_is_that_zones_day(world: FakeWorld) -> None:
    await put(world, "t1", due="2026-03-10", time_zone="Pacific/Kiritimati")
    [made] = in_list(world, "g1")
    assert made.item().due == datetime(2026, 3, 9, 10, tzinfo=UTC)


async def test_a_task_given_to_another_staff_member_moves(world: FakeWorld) -> None:
    await put(world, "t1")
    await put(world, "t1", staff_id="s2")
    assert in_list(world, "g1") == []
    [moved] = in_list(world, "g2")
    record = await get_task(world.services, TID, "t1")
    assert (record.staff_id, record.graph_task_id, record.state) == ("s2", moved.id, TaskState.SYNCED)


async def test_a_deleted_task_leaves_to_do(world: FakeWorld) -> None:
    await put(world, "t1")
    await delete_task(world.services, TID, "t1")
    await run_all(world)
    assert in_list(world, "g1") == []
    record = await get_task(world.services, TID, "t1")
    assert (record.task, record.graph_task_id, record.state) == (None, None, TaskState.SYNCED)
    assert feed(world, "task.synced")[-1]["deleted"] is True


async def test_an_unmatched_staff_member_is_accepted_then_failed_with_the_reason(world: FakeWorld) -> None:
    user = await world.users.get(TID, "s3")
    assert user is not None
    await world.users.save(
        replace(user, match=MatchStatus.UNMATCHED, graph_user_id=None, match_reason="no UPN")
    )
    await put(world, "t1", staff_id="s3")
    record = await get_task(world.services, TID, "t1")
    assert record.state is TaskState.FAILED and record.error is not None and "matches no user" in record.error
    [failed] = feed(world, "task.failed")
    assert (failed["task_id"], failed["error"]) == ("t1", record.error)


async def test_switched_off_fails_and_on_again_catches_up_without_duplicates(world: FakeWorld) -> None:
    await set_switches(world.services, TID, ["s1"], {"tasks_to_outlook": False})
    await put(world, "t1")
    record = await get_task(world.services, TID, "t1")
    assert record.state is TaskState.FAILED and "tasks_to_outlook" in (record.error or "")
    assert in_list(world, "g1") == []
    await set_switches(world.services, TID, ["s1"], {"tasks_to_outlook": True})
    await run_all(world)
    assert len(in_list(world, "g1")) == 1
    assert (await get_task(world.services, TID, "t1")).state is TaskState.SYNCED
    await set_switches(world.services, TID, ["s1"], {"tasks_to_outlook": False})
    await set_switches(world.services, TID, ["s1"], {"tasks_to_outlook": True})
    await run_all(world)
    assert len(in_list(world, "g1")) == 1


async def test_a_list_to_do_refuses_fails_the_task_and_tells_the_user(world: FakeWorld) -> None:
    world.todo.fail("create_list", "refused")
    await put(world, "t1")
    record = await get_task(world.services, TID, "t1")
    user = await world.users.get(TID, "s1")
    assert record.state is TaskState.FAILED and user is not None
    assert record.error == user.todo_list_reason and LIST in (record.error or "")


async def test_a_create_answered_503_after_it_took_effect_is_made_once(world: FakeWorld) -> None:
    world.todo.fail("create_task", "lost")
    await put_task(
        world.services,
        TID,
        parse_task("t1", {"staff_id": "s1", "title": "Once", "checklist": [{"id": "a", "title": "Step"}]}),
    )
    for job in world.jobs.take():
        await run_job(world.services, job)
    assert len(in_list(world, "g1")) == 1
    assert (await get_task(world.services, TID, "t1")).state is TaskState.PENDING
    retried = [j for j in world.jobs.take() if isinstance(j, jobs.WriteTask)]
    assert retried and retried[0].delay_seconds > 0
    for job in retried:
        await run_job(world.services, job)
    [made] = in_list(world, "g1")
    record = await get_task(world.services, TID, "t1")
    assert (record.state, record.graph_task_id) == (TaskState.SYNCED, made.id)
    assert [c.graph_id for c in record.checklist] == [made.checklist[0].id]


async def test_a_checklist_step_whose_add_was_answered_503_after_it_took_effect_is_added_once(
    world: FakeWorld,
) -> None:
    await put(world, "t1", checklist=[{"id": "a", "title": "Price"}])
    world.todo.fail("add_checklist_item", "lost")
    await put(world, "t1", checklist=[{"id": "a", "title": "Price"}, {"id": "b", "title": "Sign"}])
    [made] = in_list(world, "g1")
    assert [c.title for c in made.checklist] == ["Price", "Sign"]
    record = await get_task(world.services, TID, "t1")
    assert (record.state, record.written_revision) == (TaskState.SYNCED, 2)
    assert [(c.id, c.graph_id) for c in record.checklist] == [
        (c, e.id) for c, e in zip("ab", made.checklist, strict=True)
    ]
    await put(world, "t1", checklist=[{"id": "a", "title": "Price"}])  # the step the retry found goes
    assert [c.title for c in in_list(world, "g1")[0].checklist] == ["Price"]


async def test_a_step_whose_add_never_reached_to_do_is_added_on_the_retry(world: FakeWorld) -> None:
    await put(world, "t1")
    world.todo.fail("add_checklist_item", "throttle")
    await put(world, "t1", checklist=[{"id": "a", "title": "Price"}])
    [made] = in_list(world, "g1")
    assert [c.title for c in made.checklist] == ["Price"]
    record = await get_task(world.services, TID, "t1")
    assert [c.graph_id for c in record.checklist] == [made.checklist[0].id]


async def test_each_write_costs_one_graph_request_once_the_list_is_known(world: FakeWorld) -> None:
    await put(world, "t0")  # finds (1) and makes (1) the list, makes the task (1)
    assert world.todo.requests == 3
    for n, change in enumerate([{}, {"title": "Renamed"}, {"status": "completed"}]):
        before = world.todo.requests
        await put(world, f"t{n + 1}" if not change else "t0", **change)
        assert world.todo.requests - before == 1
    before = world.todo.requests
    await delete_task(world.services, TID, "t0")
    await run_all(world)
    assert world.todo.requests - before == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 256}, "title"),
        ({"due": "2026-02-30"}, "due"),
        ({"due": "tomorrow"}, "due"),
        ({"status": "done"}, "status"),
        ({"body": "x" * 64_001}, "body"),
        ({"recurrence": "FREQ=HOURLY", "due": "2026-03-10"}, "recurrence"),
        ({"recurrence": "FREQ=WEEKLY;COUNT=3", "due": "2026-03-10"}, "recurrence"),
        ({"recurrence": "FREQ=WEEKLY"}, "due"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"completed_at": "2026-03-10T10:00:00Z"}, "completed_at"),
        ({"checklist": [{"id": "a", "title": "x"}, {"id": "a", "title": "y"}]}, "checklist"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_task("t1", {"staff_id": "s1", "title": "Call back", **body})
    assert refused.value.field == field
    assert refused.value.status in (400, 422)


async def test_an_unknown_staff_member_is_refused_and_nothing_is_stored(world: FakeWorld) -> None:
    with pytest.raises(InvalidInput) as refused:
        await put_task(world.services, TID, parse_task("t1", {"staff_id": "nobody", "title": "x"}))
    assert (refused.value.field, refused.value.status) == ("staff_id", 422)
    assert world.tasks.rows == {} and world.jobs.take() == []


async def test_deleting_a_staff_member_and_disconnecting_remove_the_tasks_state_not_to_do(
    world: FakeWorld,
) -> None:
    await put(world, "t1")
    await put(world, "t2", staff_id="s2")
    await delete_staff(world.services, TID, "s1")
    await run_all(world)
    assert sorted(key[1] for key in world.tasks.rows) == ["t2"]
    assert len(in_list(world, "g1")) == 1  # what was written to To Do stays
    await purge_rows(world.services, TID)
    assert world.tasks.rows == {}
    assert len(in_list(world, "g2")) == 1


async def test_a_staff_member_given_their_own_list_name_has_their_tasks_moved_there(world: FakeWorld) -> None:
    people = {"g1": DirectoryUser("g1", "user1@contoso.example", "user1@contoso.example", (), True)}
    world.directory.add(FakeOrganisation("dir-1", {TID}, people, consented=True))
    await put(world, "t1")
    user = await world.users.get(TID, "s1")
    assert user is not None
    staff, switches = parse_staff_put("s1", {"email": user.staff.email, "todo_list_name": "ERP+"})
    await put_staff(world.services, TID, staff, switches)
    await run_all(world)
    assert in_list(world, "g1") == []
    [moved] = world.todo.tasks_in("g1", "ERP+")
    record = await get_task(world.services, TID, "t1")
    assert (record.graph_task_id, record.state) == (moved.id, TaskState.SYNCED)


async def test_a_redelivered_write_job_costs_no_graph_request_and_tells_nothing_again(
    world: FakeWorld,
) -> None:
    await put(world, "t1")
    before, told = world.todo.requests, len(feed(world, "task.synced"))
    await run_job(world.services, jobs.WriteTask(TID, "t1", revision=1))
    assert world.todo.requests == before and len(feed(world, "task.synced")) == told
    assert len(in_list(world, "g1")) == 1


async def test_a_new_tenant_list_name_moves_the_tasks_not_in_a_staff_members_own_list(
    world: FakeWorld,
) -> None:
    await put(world, "t1")
    await put(world, "t2", staff_id="s2")
    await update_settings(world.services, TID, {"todo_list_name": "Host work"})
    await run_all(world)
    assert in_list(world, "g1") == [] and in_list(world, "g2") == []
    assert (
        len(world.todo.tasks_in("g1", "Host work")) == 1 and len(world.todo.tasks_in("g2", "Host work")) == 1
    )
    assert {(await get_task(world.services, TID, t)).state for t in ("t1", "t2")} == {TaskState.SYNCED}


async def lost_and_refused(world: FakeWorld) -> None:
    """t1's write job is lost (pending), t2's create is refused by To Do (failed), t3 is written (synced)."""
    await put_task(world.services, TID, parse_task("t1", {"staff_id": "s1", "title": "Lost"}))
    world.jobs.take()  # its job went to the poison queue
    world.todo.fail("create_task", "refused")
    await put(world, "t2", title="Refused")
    await put(world, "t3", title="Written")
    states = {t: (await get_task(world.services, TID, t)).state for t in ("t1", "t2", "t3")}
    assert states == {"t1": TaskState.PENDING, "t2": TaskState.FAILED, "t3": TaskState.SYNCED}


@pytest.mark.parametrize("resync", ["nightly", "user", "tenant"])
async def test_the_nightly_run_and_resyncs_write_the_hosts_unsettled_tasks_again(
    world: FakeWorld, resync: str
) -> None:
    await lost_and_refused(world)
    if resync == "nightly":
        await nightly_tenant(world.services, TID)
    elif resync == "user":
        await request_user_resync(world.services, TID, "s1")
    else:
        await request_tenant_resync(world.services, TID)
    await run_all(world)
    assert sorted(t.draft.title for t in in_list(world, "g1")) == ["Lost", "Refused", "Written"]
    for task_id in ("t1", "t2", "t3"):
        assert (await get_task(world.services, TID, task_id)).state is TaskState.SYNCED
    # each revision's outcome told once it settled: t2's, told failed before, is now told synced
    assert sorted(d["task_id"] for d in feed(world, "task.synced")) == ["t1", "t2", "t3"]


async def test_a_resync_of_the_failed_only_leaves_a_pending_task_to_its_job(world: FakeWorld) -> None:
    await lost_and_refused(world)
    await request_tenant_resync(world.services, TID, only_failed=True)
    assert [j.task_id for j in world.jobs.take() if isinstance(j, jobs.WriteTask)] == ["t2"]


def outcomes(world: FakeWorld) -> list[tuple[str, str, int]]:
    return [
        (c.type, c.data["task_id"], c.data["revision"])
        for c in world.feed.entries.get(TID, [])
        if c.type in ("task.synced", "task.failed")
    ]


async def test_a_failed_revision_written_later_is_told_synced_and_each_outcome_once(world: FakeWorld) -> None:
    await set_switches(world.services, TID, ["s1"], {"tasks_to_outlook": False})
    await put(world, "t1")
    await nightly_tenant(world.services, TID)  # requeued, and failing again: not told twice
    await run_all(world)
    assert outcomes(world) == [("task.failed", "t1", 1)]
    await set_switches(world.services, TID, ["s1"], {"tasks_to_outlook": True})
    await run_all(world)
    await world.jobs.enqueue([jobs.WriteTask(TID, "t1")])  # redelivered
    await run_all(world)
    assert outcomes(world) == [("task.failed", "t1", 1), ("task.synced", "t1", 1)]
    assert (await get_task(world.services, TID, "t1")).state is TaskState.SYNCED


def test_a_row_stored_before_the_told_outcome_was_kept_reads_what_was_told() -> None:
    row = {
        "TenantId": TID,
        "TaskId": "t1",
        "Revision": 2,
        "UpdatedAt": datetime(2026, 12, 1, tzinfo=UTC),
        "ReportedRevision": 2,
    }
    assert task_from_entity({**row, "State": "failed"}).reported_state is TaskState.FAILED
    assert task_from_entity({**row, "State": "pending"}).reported_state is None  # requeued: tell what comes
    assert task_from_entity({**row, "State": "synced", "ReportedRevision": 1}).reported_state is None
    stored = task_from_entity({**row, "State": "synced", "ReportedState": "failed"})
    assert stored.reported_state is TaskState.FAILED and stored.unreported
