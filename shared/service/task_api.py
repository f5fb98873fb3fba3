"""Host API: the host's tasks (PUT, GET, DELETE), written to the staff member's To Do list by a queued
job (`task_writes.py`). As appointments: the API stores the host's version (a new revision) and answers
at once; a replay of the current version changes nothing (and queues the write again while it is still
pending); the ETag is the revision and `If-Match` makes a PUT or DELETE conditional. A task for a staff
member who is unmatched or has tasks switched off is accepted, and its revision reported `failed` with
the reason; an unknown staff member is refused (422, `staff_id`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from shared.domain.tasks import HostTask, TaskRecord, TaskState
from shared.service import jobs
from shared.service.context import UsesClock, UsesJobs, UsesTasks, UsesUsers
from shared.service.errors import InvalidInput, NotFound
from shared.service.revisions import check_if_match, connected_tenant, revision_etag, save_revision
from shared.service.tenants import TenantPorts, get_tenant


class TaskReadPorts(TenantPorts, UsesTasks, Protocol):
    """GET: the tenant, then the task."""


class TaskDeletePorts(TaskReadPorts, UsesJobs, UsesClock, Protocol):
    """DELETE: a new revision, and its write job."""


class TaskPutPorts(TaskDeletePorts, UsesUsers, Protocol):
    """PUT: as DELETE, and the staff member it names is known."""


def etag(record: TaskRecord) -> str:
    return revision_etag(record.revision)


async def put_task(
    services: TaskPutPorts, tenant_id: str, task: HostTask, *, if_match: str | None = None
) -> TaskRecord:
    tenant = await connected_tenant(services, tenant_id, "tasks")
    if await services.users.get(tenant.tenant_id, task.staff_id) is None:
        raise InvalidInput("staff_id", "no such staff member (PUT the staff member first)", status=422)

    def revised(record: TaskRecord | None) -> TaskRecord | None:
        _check_precondition(record, if_match)
        if record is not None and record.task == task:
            return None  # a replay of the current version
        now = services.clock.now()
        if record is None:
            record = TaskRecord(tenant.tenant_id, task.task_id, 0, None, now)
        return replace(
            record, task=task, revision=record.revision + 1, updated_at=now, state=TaskState.PENDING
        )

    done = await save_revision(
        lambda: services.tasks.get(tenant.tenant_id, task.task_id),
        revised,
        services.tasks.save,
        field="task_id",
        what="task",
    )
    record = done.latest
    assert record is not None
    if done.saved is not None or record.state is TaskState.PENDING:
        await _queue_write(services, record)
    return record


async def delete_task(
    services: TaskDeletePorts, tenant_id: str, task_id: str, *, if_match: str | None = None
) -> TaskRecord:
    """Mark it deleted and queue its removal from To Do (idempotent)."""
    await get_tenant(services, tenant_id)

    def deleted(record: TaskRecord | None) -> TaskRecord | None:
        if record is None:
            raise NotFound("task", task_id, "task_id")
        _check_precondition(record, if_match)
        if record.task is None:
            return None
        now = services.clock.now()
        return replace(
            record, task=None, revision=record.revision + 1, updated_at=now, state=TaskState.PENDING
        )

    done = await save_revision(
        lambda: services.tasks.get(tenant_id, task_id),
        deleted,
        services.tasks.save,
        field="task_id",
        what="task",
    )
    record = done.latest
    assert record is not None
    if done.saved is not None or record.state is TaskState.PENDING:
        await _queue_write(services, record)
    return record


async def get_task(services: TaskReadPorts, tenant_id: str, task_id: str) -> TaskRecord:
    await get_tenant(services, tenant_id)
    record = await services.tasks.get(tenant_id, task_id)
    if record is None:
        raise NotFound("task", task_id, "task_id")
    return record


def _check_precondition(record: TaskRecord | None, if_match: str | None) -> None:
    check_if_match(
        if_match, record.revision if record is not None and record.task is not None else None, "task"
    )


async def _queue_write(services: TaskDeletePorts, record: TaskRecord) -> None:
    await services.jobs.enqueue([jobs.WriteTask(record.tenant_id, record.task_id, revision=record.revision)])
