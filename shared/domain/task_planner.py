"""The tasks planner: what a tasks delta read of a staff member's To Do list reported, against what was
stored, becomes actions. Pure, like the calendar's `planner.py`, and storing the same `ItemStatus` (in the
user's own task scope of the item statuses): the Graph id, the change key (the task's etag), the content
hash, the host task it is linked to (`appointment_id` holds the host's task id) and whether the
connector wrote that version (`written`).

Rules:
- A task is changed for the host only when its content hash changed; a new change key with the same
  content only refreshes the status.
- The connector's own writes never come back: the write side notes the change key Graph answered
  (`written`, its content `UNOBSERVED`), and the first read of it afterwards is its echo (the change key
  may have moved on with the write's checklist steps). A task carrying the connector's link that has no
  status yet is a write whose note is on its way: recorded, not announced.
- Migration (the first read of the list) links the tasks that carry the connector's link and announces
  only the others.
- A complete read (the first, or after the delta link expired) also removes the stored tasks it did not
  see: the host hears of each once, so a fallback read never duplicates; when the run follows another
  list now (renamed by the tenant's or the staff member's `todo_list_name`), those left in the old list
  are `moved` out of the list.
- The host's own task changed, deleted or moved out of the list in To Do (not its echo) is no `task.*`
  change: it is an `OutlookEdit` for the tenant's conflict policy (`task_sync.py`), as a connector event
  changed in Outlook is a recheck for the appointment's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from shared.domain.outlook_tasks import (
    NEVER_ENDS,
    UNOBSERVED,
    OutlookTask,
    RemovalReason,
    RemovedTask,
    TaskItem,
)
from shared.domain.planner import ItemStatus


class TaskChangeType(StrEnum):
    CREATED = "task.created"
    UPDATED = "task.updated"
    DELETED = "task.deleted"


@dataclass(frozen=True, slots=True)
class TaskChange:
    """A change the host must hear about (the executor stamps tenant, staff and time on it)."""

    type: TaskChangeType
    graph_id: str
    data: dict[str, Any]


class EditKind(StrEnum):
    UPDATED = "updated"
    DELETED = "deleted"
    MOVED = "moved"  # out of the list, to another


@dataclass(frozen=True, slots=True)
class OutlookEdit:
    """The host's task changed in To Do by someone else than the connector: the policy decides."""

    host_task_id: str
    graph_id: str
    change: EditKind
    task: OutlookTask | None  # To Do's version (None once deleted or moved)


@dataclass(slots=True)
class TaskPlan:
    upserts: list[ItemStatus] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    changes: list[TaskChange] = field(default_factory=list)
    edits: list[OutlookEdit] = field(default_factory=list)

    @property
    def linked(self) -> int:
        """The host's tasks among the statuses planned (a migration's count)."""
        return sum(1 for s in self.upserts if s.appointment_id)


def plan_tasks(
    items: Sequence[TaskItem],
    stored: Mapping[str, ItemStatus],
    *,
    complete: bool,
    migrating: bool,
    unseen: RemovalReason = RemovalReason.DELETED,
    private: bool = False,
) -> TaskPlan:
    """`unseen`: why a complete read no longer holds a stored task (`moved` out of the list when the run
    follows another list now: the staff member's tasks left in the old one). `private` (the tenant's
    privacy mode): a change carries the task's `payload` without its words."""
    result = TaskPlan()
    seen: set[str] = set()
    for item in _last_word(items):
        seen.add(item.id)
        before = stored.get(item.id)
        if isinstance(item, RemovedTask):
            if before is not None:
                _remove(result, before, item.reason, migrating)
            continue
        _observe(result, item, before, migrating, private)
    if complete:
        for status in stored.values():
            if status.graph_id not in seen:
                _remove(result, status, unseen, migrating)
    return result


def task_status(task: OutlookTask, *, written: bool = False, host_task_id: str | None = None) -> ItemStatus:
    """The stored status of a task as observed now (or as the connector just wrote it: `written`)."""
    return ItemStatus(
        graph_id=task.id,
        change_key=task.change_key,
        ical_uid=None,
        content_hash=task.content_hash(),
        ends_at=NEVER_ENDS,
        admitted=True,
        appointment_id=host_task_id or task.host_task_id,
        written=written,
    )


def _last_word(items: Iterable[TaskItem]) -> list[TaskItem]:
    """Graph may report a task twice in one read (pages, replays): its last report wins."""
    latest: dict[str, TaskItem] = {}
    for item in items:
        latest.pop(item.id, None)
        latest[item.id] = item
    return list(latest.values())


def _observe(
    result: TaskPlan, task: OutlookTask, before: ItemStatus | None, migrating: bool, private: bool
) -> None:
    host_task_id = (before.appointment_id if before else None) or task.host_task_id
    status = task_status(task, host_task_id=host_task_id)
    if before is None:
        result.upserts.append(status)
        if host_task_id is not None:
            # Migration links the host's tasks; otherwise the connector's own create, its note on the way.
            return
        result.changes.append(_change(TaskChangeType.CREATED, task, private))
        return
    if before.written and (task.change_key == before.change_key or before.content_hash == UNOBSERVED):
        # The echo of the connector's own write (its change key; or the first read after a write whose
        # further steps, checklist items, moved the change key on): recorded, never announced.
        if (before.change_key, before.content_hash) != (status.change_key, status.content_hash):
            result.upserts.append(replace(status, written=True))
        return
    if before.change_key == status.change_key and before.content_hash == status.content_hash:
        return  # a duplicate or replayed report
    result.upserts.append(status)
    if before.content_hash == status.content_hash:
        return  # a new change key, nothing the host can see
    if host_task_id is None:
        result.changes.append(_change(TaskChangeType.UPDATED, task, private))
    elif not migrating:
        result.edits.append(OutlookEdit(host_task_id, task.id, EditKind.UPDATED, task))


def _remove(result: TaskPlan, before: ItemStatus, reason: RemovalReason, migrating: bool) -> None:
    result.deletes.append(before.graph_id)
    if before.appointment_id is not None:
        if not migrating:
            kind = EditKind.MOVED if reason is RemovalReason.MOVED else EditKind.DELETED
            result.edits.append(OutlookEdit(before.appointment_id, before.graph_id, kind, None))
        return
    result.changes.append(
        TaskChange(
            TaskChangeType.DELETED,
            before.graph_id,
            {"task": {"id": before.graph_id}, "task_id": before.appointment_id, "reason": reason.value},
        )
    )


def _change(kind: TaskChangeType, task: OutlookTask, private: bool) -> TaskChange:
    return TaskChange(kind, task.id, {"task": payload(task, private=private), "task_id": None})


def payload(task: OutlookTask, *, private: bool) -> dict[str, Any]:
    """What the host is told of a task on every `task.*` change: in privacy mode (`private`) its ids,
    status and days only (`OutlookTask.private`), as an event is its free/busy."""
    return task.private() if private else task.details()
