"""Table Storage for the host's tasks (table `tasks`, `TaskRepository`).

One row per task: partition = escaped tenant id, row = escaped task id. The host's task is kept as JSON
(its stored form, read back without the API's parser, so a later, stricter rule never makes a stored
task unreadable), beside where the connector wrote it (staff member, Graph user, list, task, the checklist
ids) and the outcome (state, error, revisions). Replaces are guarded by the entity's etag.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import date, datetime
from typing import Any, Final

from azure.core.exceptions import ResourceNotFoundError

from shared.adapters.storage import TenantStorage
from shared.adapters.tables.rows import (
    TableAdapter,
    delete_partition,
    escape_key,
    etag_of,
    read_entity,
    required_utc,
    without_none,
    write_entity,
)
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

TASKS: Final = "tasks"


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _day_json(value: TaskDay | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"day": value.day.isoformat(), "at": _when(value.at), "zone": value.zone}


def task_json(task: HostTask) -> str:
    body = {
        "staff_id": task.staff_id,
        "title": task.title,
        "body": task.body,
        "body_type": task.body_type,
        "due": _day_json(task.due),
        "start": _day_json(task.start),
        "reminder_at": _when(task.reminder_at),
        "importance": task.importance.value,
        "status": task.status.value,
        "completed_at": _when(task.completed_at),
        "categories": list(task.categories),
        "recurrence": task.recurrence,
        "checklist": [[c.id, c.title, c.checked] for c in task.checklist],
        "time_zone": task.time_zone,
    }
    return json.dumps(body, separators=(",", ":"))


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _day(raw: dict[str, Any] | None) -> TaskDay | None:
    if not raw:
        return None
    return TaskDay(date.fromisoformat(raw["day"]), _at(raw.get("at")), raw.get("zone"))


def task_from_json(task_id: str, text: str) -> HostTask:
    raw = json.loads(text)
    return HostTask(
        task_id=task_id,
        staff_id=raw["staff_id"],
        title=raw["title"],
        body=raw.get("body") or "",
        body_type=raw.get("body_type") or "text",
        due=_day(raw.get("due")),
        start=_day(raw.get("start")),
        reminder_at=_at(raw.get("reminder_at")),
        importance=TaskImportance(raw.get("importance") or "normal"),
        status=TaskStatus(raw.get("status") or "not_started"),
        completed_at=_at(raw.get("completed_at")),
        categories=tuple(raw.get("categories") or ()),
        recurrence=raw.get("recurrence"),
        checklist=tuple(ChecklistItem(i, t, bool(c)) for i, t, c in raw.get("checklist") or ()),
        time_zone=raw.get("time_zone"),
    )


def task_to_entity(record: TaskRecord) -> dict[str, Any]:
    return without_none(
        {
            "PartitionKey": escape_key(record.tenant_id),
            "RowKey": escape_key(record.task_id),
            "TenantId": record.tenant_id,
            "TaskId": record.task_id,
            "Revision": record.revision,
            "Task": task_json(record.task) if record.task is not None else None,
            "NamedStaffId": record.task.staff_id if record.task is not None else None,
            "UpdatedAt": record.updated_at,
            "State": record.state.value,
            "Error": record.error,
            "WrittenRevision": record.written_revision,
            "StaffId": record.staff_id,
            "GraphUserId": record.graph_user_id,
            "ListId": record.list_id,
            "GraphTaskId": record.graph_task_id,
            "Checklist": json.dumps(
                [list(asdict(c).values()) for c in record.checklist], separators=(",", ":")
            )
            if record.checklist
            else None,
            "WrittenEtag": record.written_etag,
            "ReportedRevision": record.reported_revision,
            "ReportedState": record.reported_state.value if record.reported_state else None,
        }
    )


def task_from_entity(entity: Any) -> TaskRecord:
    task_id = entity["TaskId"]
    stored = entity.get("Task")
    checklist = json.loads(entity["Checklist"]) if entity.get("Checklist") else []
    return TaskRecord(
        tenant_id=entity["TenantId"],
        task_id=task_id,
        revision=int(entity["Revision"]),
        task=task_from_json(task_id, stored) if stored else None,
        updated_at=required_utc(entity["UpdatedAt"]),
        state=TaskState(entity.get("State") or TaskState.PENDING),
        error=entity.get("Error"),
        written_revision=int(entity.get("WrittenRevision") or 0),
        staff_id=entity.get("StaffId"),
        graph_user_id=entity.get("GraphUserId"),
        list_id=entity.get("ListId"),
        graph_task_id=entity.get("GraphTaskId"),
        checklist=tuple(WrittenChecklistItem(i, g, t, bool(c)) for i, g, t, c in checklist),
        written_etag=entity.get("WrittenEtag"),
        reported_revision=int(entity.get("ReportedRevision") or 0),
        reported_state=_reported_state(entity),
        etag=etag_of(entity),
    )


def _reported_state(entity: Any) -> TaskState | None:
    """The outcome told for `ReportedRevision`; a row from before the column was kept: its state, when it
    is still that revision's settled one (what was told then)."""
    if entity.get("ReportedState"):
        return TaskState(entity["ReportedState"])
    state = TaskState(entity.get("State") or TaskState.PENDING)
    reported = int(entity.get("ReportedRevision") or 0)
    settled = state is not TaskState.PENDING and reported == int(entity["Revision"])
    return state if settled else None


class TableTasks(TableAdapter):
    """`TaskRepository` on Table Storage."""

    def __init__(self, storage: TenantStorage) -> None:
        super().__init__(storage, TASKS)

    async def get(self, tenant_id: str, task_id: str) -> TaskRecord | None:
        entity = await read_entity(await self._table(tenant_id), escape_key(tenant_id), escape_key(task_id))
        return None if entity is None else task_from_entity(entity)

    async def save(self, record: TaskRecord) -> TaskRecord:
        etag = await write_entity(await self._table(record.tenant_id), task_to_entity(record), record.etag)
        return replace(record, etag=etag)

    async def naming(self, tenant_id: str, staff_id: str) -> list[TaskRecord]:
        table = await self._table(tenant_id)
        # The SDK substitutes an @name only between spaces: no parenthesis may touch one.
        query = table.query_entities(
            "PartitionKey eq @pk and ( NamedStaffId eq @staff or StaffId eq @staff )",
            parameters={"pk": escape_key(tenant_id), "staff": staff_id},
        )
        return [task_from_entity(e) async for e in query]

    async def in_tenant(self, tenant_id: str) -> list[TaskRecord]:
        table = await self._table(tenant_id)
        query = table.query_entities("PartitionKey eq @pk", parameters={"pk": escape_key(tenant_id)})
        return [task_from_entity(e) async for e in query]

    async def unsettled(self, tenant_id: str) -> list[TaskRecord]:
        table = await self._table(tenant_id)
        query = table.query_entities(
            "PartitionKey eq @pk and State ne @synced",
            parameters={"pk": escape_key(tenant_id), "synced": TaskState.SYNCED.value},
        )
        return [task_from_entity(e) async for e in query]

    async def delete(self, tenant_id: str, task_id: str) -> None:
        try:
            await (await self._table(tenant_id)).delete_entity(escape_key(tenant_id), escape_key(task_id))
        except ResourceNotFoundError:
            return

    async def delete_tenant(self, tenant_id: str) -> None:
        await delete_partition(await self._table(tenant_id), escape_key(tenant_id))
