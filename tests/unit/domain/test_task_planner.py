"""The tasks planner: a To Do list's delta against the stored statuses becomes each change once."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.domain.outlook_tasks import RemovalReason, RemovedTask, TaskStatus
from shared.domain.planner import ItemStatus
from shared.domain.task_planner import (
    EditKind,
    OutlookEdit,
    TaskChangeType,
    TaskPlan,
    plan_tasks,
    task_status,
)
from tests.fakes.outlook_tasks import edited, task

pytestmark = pytest.mark.unit


def after(result: TaskPlan, before: dict[str, ItemStatus] | None = None) -> dict[str, ItemStatus]:
    state = dict(before or {})
    for graph_id in result.deletes:
        state.pop(graph_id, None)
    for status in result.upserts:
        state[status.graph_id] = status
    return state


def types(result: TaskPlan) -> list[str]:
    return [c.type.value for c in result.changes]


def test_a_new_task_is_created_once_and_its_replay_is_silent() -> None:
    new = task(title="Call the supplier", due=date(2026, 12, 5))
    first = plan_tasks([new], {}, complete=False, migrating=False)
    assert types(first) == ["task.created"]
    assert first.changes[0].data["task"]["title"] == "Call the supplier"
    assert first.changes[0].data["task"]["due"] == "2026-12-05"
    assert first.changes[0].data["task_id"] is None
    again = plan_tasks([new], after(first), complete=False, migrating=False)
    assert again.changes == [] and again.upserts == []


def test_completed_and_reopened_are_updates_and_a_touch_is_not() -> None:
    original = task()
    stored = after(plan_tasks([original], {}, complete=False, migrating=False))
    done_at = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    completed = edited(original, status=TaskStatus.COMPLETED, completed_at=done_at)
    result = plan_tasks([completed], stored, complete=False, migrating=False)
    assert types(result) == ["task.updated"]
    assert result.changes[0].data["task"]["status"] == "completed"
    assert result.changes[0].data["task"]["completed_at"] == "2026-12-01T10:30:00Z"
    stored = after(result, stored)
    reopened = edited(completed, status=TaskStatus.NOT_STARTED, completed_at=None)
    result = plan_tasks([reopened], stored, complete=False, migrating=False)
    assert types(result) == ["task.updated"]
    assert result.changes[0].data["task"]["status"] == "not_started"
    stored = after(result, stored)
    touched = edited(reopened)
    result = plan_tasks([touched], stored, complete=False, migrating=False)
    assert result.changes == []
    assert after(result, stored)[original.id].change_key == touched.change_key


def test_the_connectors_own_write_never_comes_back() -> None:
    written = task(host_task_id="T-1")
    stored = {written.id: task_status(written, written=True)}
    # the delta reports the very version the connector wrote (its change key), content as written
    assert plan_tasks([written], stored, complete=False, migrating=False).changes == []
    # ... and a write whose note is still on its way: linked, no status yet
    assert plan_tasks([written], {}, complete=False, migrating=False).changes == []


def test_an_outlook_edit_of_a_host_task_goes_to_the_conflict_policy() -> None:
    written = task(host_task_id="T-1")
    stored = {written.id: task_status(written, written=True)}
    changed = edited(written, title="Renamed in Outlook")
    result = plan_tasks([changed], stored, complete=False, migrating=False)
    assert types(result) == []
    assert result.edits == [OutlookEdit("T-1", written.id, EditKind.UPDATED, changed)]
    assert not after(result, stored)[written.id].written
    seen = after(result, stored)
    gone = plan_tasks([RemovedTask(written.id, RemovalReason.MOVED)], seen, complete=False, migrating=False)
    assert (types(gone), gone.deletes) == ([], [written.id])
    assert gone.edits == [OutlookEdit("T-1", written.id, EditKind.MOVED, None)]
    missing = plan_tasks([], seen, complete=True, migrating=False)  # a complete read no longer sees it
    assert [e.change for e in missing.edits] == [EditKind.DELETED]


def test_deleted_and_moved_tasks_carry_their_reason_the_hosts_going_to_the_policy() -> None:
    mine, theirs = task(host_task_id="T-9"), task()
    stored = after(plan_tasks([mine, theirs], {}, complete=False, migrating=True))
    result = plan_tasks(
        [RemovedTask(mine.id, RemovalReason.MOVED), RemovedTask(theirs.id)],
        stored,
        complete=False,
        migrating=False,
    )
    assert result.edits == [OutlookEdit("T-9", mine.id, EditKind.MOVED, None)]
    assert [(c.data["task_id"], c.data["reason"]) for c in result.changes] == [
        (None, "deleted"),
    ]
    assert after(result, stored) == {}
    # a removal of something never stored (made and removed between two reads) is nothing
    assert plan_tasks([RemovedTask("unknown")], {}, complete=False, migrating=False).changes == []


def test_migration_links_the_hosts_tasks_and_announces_only_the_rest() -> None:
    hosts, staffs = task(host_task_id="T-1"), task()
    result = plan_tasks([hosts, staffs], {}, complete=True, migrating=True)
    assert [(c.type, c.graph_id) for c in result.changes] == [(TaskChangeType.CREATED, staffs.id)]
    assert result.linked == 1


def test_a_complete_read_after_an_expired_link_announces_only_the_difference() -> None:
    kept, changed, gone = task(), task(), task()
    stored = after(plan_tasks([kept, changed, gone], {}, complete=True, migrating=False))
    new = task()
    renamed = edited(changed, title="Renamed")
    result = plan_tasks([kept, renamed, new], stored, complete=True, migrating=False)
    assert sorted((c.type.value, c.graph_id) for c in result.changes) == sorted(
        [("task.updated", changed.id), ("task.created", new.id), ("task.deleted", gone.id)]
    )
    assert (
        plan_tasks([kept, renamed, new], after(result, stored), complete=True, migrating=False).changes == []
    )


def test_the_last_report_of_a_task_in_one_read_wins() -> None:
    first = task()
    later = edited(first, title="Second thoughts")
    result = plan_tasks([first, later], {}, complete=False, migrating=False)
    assert types(result) == ["task.created"]
    assert result.changes[0].data["task"]["title"] == "Second thoughts"
    removed = plan_tasks([first, RemovedTask(first.id)], {}, complete=False, migrating=False)
    assert removed.changes == [] and removed.upserts == []
