"""Where a user's To Do task statuses live, and what the write side notes there so that the connector's own
task writes never come back as `task.*` changes (the calendar's write side notes its events the same way).

The statuses are the item statuses' (`ItemStatusRepository`) in the user's task scope, `{staff}/tasks`
(no staff id holds a `/`). A note is a blind write beside the sync run's pages; the run's next load lays it
over them (`task_planner.py` reads a `written` status whose content is `UNOBSERVED` as the connector's own
version, whatever change key the first read after it carries).
"""

from __future__ import annotations

from shared.domain.outlook_tasks import NEVER_ENDS, UNOBSERVED
from shared.domain.planner import ItemStatus
from shared.service.ports.sync_storage import ItemStatusRepository


def tasks_scope(staff_id: str) -> str:
    """The user's task statuses' key in the item statuses: no staff id holds a `/`."""
    return f"{staff_id}/tasks"


async def note_written_task(  # noqa: PLR0917 (the note's fields, in order)
    statuses: ItemStatusRepository,
    tenant_id: str,
    staff_id: str,
    graph_id: str,
    change_key: str | None,
    host_task_id: str,
) -> None:
    """Before the connector changes a task (`change_key` None) and after it made or changed one (the change
    key Graph answered): the next read of it is its echo, never a `task.*` change."""
    status = ItemStatus(
        graph_id=graph_id,
        change_key=change_key,
        ical_uid=None,
        content_hash=UNOBSERVED,
        ends_at=NEVER_ENDS,
        admitted=True,
        appointment_id=host_task_id,
        written=True,
    )
    await statuses.note(tenant_id, tasks_scope(staff_id), [status], [])


async def note_deleted_task(
    statuses: ItemStatusRepository, tenant_id: str, staff_id: str, graph_id: str
) -> None:
    """Before the connector deletes a task: forgotten, so its removal in the delta is no change (and should
    the delete fail, the task, carrying the connector's link, is recorded again unannounced)."""
    await statuses.note(tenant_id, tasks_scope(staff_id), [], [graph_id])
