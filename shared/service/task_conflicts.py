"""The host's task changed in To Do: the tenant's conflict policy decides, as for appointments
(`outlook_conflicts.py`).

The list's sync run (`task_sync.py`) hands over what its planner found (`OutlookEdit`: the host's task
changed, deleted or moved out of the list by someone else than the connector) and publishes what this
answers, `task.changed_in_outlook`, beside its other changes:
- host wins: the task's row turns `pending` and its write job is queued, so the host's revision is written
  again (PATCHed whole, or made anew where it was deleted or moved); `resolution` reverted or recreated;
- Outlook wins: To Do's version is kept until the host's next revision; `resolution` kept.
Staff's progress is no conflict under either policy: the host's task whose status (and completion time)
moved on in To Do, its title, due day, importance and categories as the host wrote them, is told as
`task.updated` with the host's id and left as it is (a task list's two-way promise: a task completed in
To Do reaches the host, and is not put back). The body is not compared (To Do may rewrite its markup).
The task is shown as `task.*` changes show it (only its state and days in privacy mode). A task whose row
the host deleted or moved on (it names no task or another To Do task) is no conflict: it is told as any
task's `task.updated` / `task.deleted`, with the host's id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from shared.domain.task_planner import EditKind, OutlookEdit, payload
from shared.domain.tasks import TaskRecord, TaskState
from shared.domain.tenants import ConflictPolicy, Tenant
from shared.service import jobs
from shared.service.context import UsesJobs, UsesTasks
from shared.service.records import Change
from shared.service.retries import update_optimistically


class TaskConflictPorts(UsesTasks, UsesJobs, Protocol):
    """Deciding about the host's tasks changed in To Do: their rows, the write queue."""


async def settle_edits(
    services: TaskConflictPorts, tenant: Tenant, staff_id: str, edits: Sequence[OutlookEdit], now: datetime
) -> list[Change]:
    """The `task.changed_in_outlook` changes to publish; under host wins, the writes putting them back are
    queued."""
    host_wins = tenant.settings.conflict_policy is ConflictPolicy.HOST_WINS
    private = tenant.settings.privacy_mode
    changes: list[Change] = []
    writes: list[jobs.Job] = []
    for edit in edits:
        progress = await _progress(services, tenant.tenant_id, edit)
        record = (
            None if progress else await _still_written(services, tenant.tenant_id, edit, put_back=host_wins)
        )
        if record is None:  # no conflict: told as any task's change, with the host's id
            changes.append(_plain(tenant.tenant_id, staff_id, edit, now, private=private))
            continue
        if host_wins:
            writes.append(jobs.WriteTask(tenant.tenant_id, edit.host_task_id, revision=record.revision))
        resolution = _resolution(edit.change) if host_wins else "kept"
        data: dict[str, Any] = {
            "task_id": edit.host_task_id,
            "change": edit.change.value,
            "resolution": resolution,
            "graph_task_id": edit.graph_id,
            "task": None,
        }
        if edit.task is not None:
            data["task"] = payload(edit.task, private=private)
        changes.append(Change("task.changed_in_outlook", tenant.tenant_id, data, now, staff_id=staff_id))
    if writes:
        await services.jobs.enqueue(writes)
    return changes


async def _progress(services: TaskConflictPorts, tenant_id: str, edit: OutlookEdit) -> bool:
    """Staff moved the host's task on in To Do (its status or completion) and changed nothing else the
    host wrote."""
    if edit.change is not EditKind.UPDATED or edit.task is None:
        return False
    record = await services.tasks.get(tenant_id, edit.host_task_id)
    if not _names(record, edit):
        return False
    assert record is not None and record.task is not None
    host, todo = record.task, edit.task
    moved_on = host.status.value != todo.status.value or host.completed_at != todo.completed_at
    return (
        moved_on
        and todo.title == host.title
        and todo.importance == host.importance.value
        and todo.due == (host.due.day if host.due is not None else None)
        and tuple(todo.categories) == tuple(host.categories)
    )


def _plain(tenant_id: str, staff_id: str, edit: OutlookEdit, now: datetime, *, private: bool) -> Change:
    if edit.task is not None:
        data: dict[str, Any] = {"task": payload(edit.task, private=private), "task_id": edit.host_task_id}
        return Change("task.updated", tenant_id, data, now, staff_id=staff_id)
    reason = "moved" if edit.change is EditKind.MOVED else "deleted"
    data = {"task": {"id": edit.graph_id}, "task_id": edit.host_task_id, "reason": reason}
    return Change("task.deleted", tenant_id, data, now, staff_id=staff_id)


def _resolution(change: EditKind) -> str:
    return "reverted" if change is EditKind.UPDATED else "recreated"


async def _still_written(
    services: TaskConflictPorts, tenant_id: str, edit: OutlookEdit, *, put_back: bool
) -> TaskRecord | None:
    """The host's task row while it still names this To Do task (turned `pending` with `put_back`)."""

    async def read() -> TaskRecord | None:
        return await services.tasks.get(tenant_id, edit.host_task_id)

    def pending(record: TaskRecord | None) -> TaskRecord | None:
        if not _names(record, edit) or not put_back:
            return None
        assert record is not None
        return None if record.state is TaskState.PENDING else replace(record, state=TaskState.PENDING)

    done = await update_optimistically(read, pending, services.tasks.save, attempts=5)
    current = done.latest
    return current if _names(current, edit) else None


def _names(record: TaskRecord | None, edit: OutlookEdit) -> bool:
    return record is not None and record.task is not None and record.graph_task_id == edit.graph_id
