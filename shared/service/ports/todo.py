"""Microsoft To Do in a staff member's mailbox: the list the host's tasks go to, and the tasks in it.

The records speak Graph's terms (the service maps the host's task to them, `shared/domain/tasks.py`):
times are wall clocks in a Windows zone (or "UTC") on the way in, and the instants To Do keeps on the
way out (it answers every dateTimeTimeZone in UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.domain.tasks import TaskRecord
from shared.domain.tenants import Tenant


@dataclass(frozen=True, slots=True)
class TodoListRef:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class MailboxList:
    """Where tasks are: a list in a mailbox."""

    graph_user_id: str
    list_id: str


@dataclass(frozen=True, slots=True)
class WallTime:
    """A dateTimeTimeZone to write: a naive wall clock and the Windows zone (or "UTC") it is read in."""

    wall: datetime
    zone: str


@dataclass(frozen=True, slots=True)
class TaskLink:
    """The linkedResource naming the host's task: To Do's own key for a task another app made."""

    application_name: str
    external_id: str
    display_name: str
    web_url: str | None = None


@dataclass(frozen=True, slots=True)
class ChecklistDraft:
    title: str
    checked: bool


@dataclass(frozen=True, slots=True)
class TodoDraft:
    """A todoTask's writable members (all of them: an update writes each, so none keeps a stale value)."""

    title: str
    body: str = ""
    body_type: str = "text"  # text | html
    importance: str = "normal"  # low | normal | high
    status: str = "notStarted"  # Graph's taskStatus
    due: WallTime | None = None
    start: WallTime | None = None
    reminder: WallTime | None = None
    completed: WallTime | None = None
    categories: tuple[str, ...] = ()
    recurrence: dict[str, Any] | None = None  # patternedRecurrence


@dataclass(frozen=True, slots=True)
class ChecklistEntry:
    id: str
    title: str
    checked: bool


@dataclass(frozen=True, slots=True)
class TodoItem:
    """A task as To Do answers it (times as aware UTC instants)."""

    id: str
    etag: str
    title: str
    status: str
    importance: str = "normal"
    body: str = ""
    due: datetime | None = None
    start: datetime | None = None
    reminder: datetime | None = None
    completed: datetime | None = None
    categories: tuple[str, ...] = ()
    links: tuple[TaskLink, ...] = ()  # only when read with them (find, create)
    checklist: tuple[ChecklistEntry, ...] = ()  # only when read with them (create)
    last_modified: datetime | None = None


class TaskRepository(Protocol):
    """One row per host task (table `tasks`)."""

    async def get(self, tenant_id: str, task_id: str) -> TaskRecord | None: ...
    async def save(self, record: TaskRecord) -> TaskRecord:
        """Insert when `etag` is None (AlreadyExists if taken), else replace guarded by it (StaleWrite)."""
        ...

    async def naming(self, tenant_id: str, staff_id: str) -> list[TaskRecord]:
        """The tasks that name the staff member or were written to their list (a scan of the tenant)."""
        ...

    async def in_tenant(self, tenant_id: str) -> list[TaskRecord]:
        """Every task of the tenant (a scan of its partition: rare)."""
        ...

    async def unsettled(self, tenant_id: str) -> list[TaskRecord]:
        """The tenant's tasks not `synced` (pending, partial, failed): what the nightly run and a resync
        write again (a query of its partition on the state)."""
        ...

    async def delete(self, tenant_id: str, task_id: str) -> None:
        """Idempotent."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None: ...


class TodoGateway(Protocol):
    """A mailbox's To Do through Graph. Every method raises RateLimited (429, a 5xx, a broken connection:
    try again later), MailboxUnavailable (no such user or mailbox, or an access policy for this mailbox),
    TenantAccessError (the tenant refuses the app), TodoRefused (Graph refused the request as it is, or To
    Do refused the app), and TodoListMissing where a list id is given and that list is gone."""

    async def find_list(self, tenant: Tenant, graph_user_id: str, name: str) -> TodoListRef | None:
        """The list of that display name (the exact name first, else one that differs only in case)."""
        ...

    async def create_list(self, tenant: Tenant, graph_user_id: str, name: str) -> TodoListRef: ...

    async def get_list(self, tenant: Tenant, graph_user_id: str, list_id: str) -> TodoListRef | None: ...

    async def delete_list(self, tenant: Tenant, graph_user_id: str, list_id: str) -> None:
        """Idempotent. Only for a list the connector just made twice (two workers racing)."""
        ...

    async def find_task(self, tenant: Tenant, where: MailboxList, link: TaskLink) -> TodoItem | None:
        """The task in the list linked to `link.external_id` by `link.application_name` (a retried create
        looks here first: To Do has no transactionId)."""
        ...

    async def get_task(self, tenant: Tenant, where: MailboxList, task_id: str) -> TodoItem | None: ...

    async def create_task(
        self,
        tenant: Tenant,
        where: MailboxList,
        draft: TodoDraft,
        link: TaskLink,
        checklist: Sequence[ChecklistDraft],
    ) -> TodoItem:
        """One request: the task with its link and checklist inline (the answer carries their ids)."""
        ...

    async def update_task(
        self, tenant: Tenant, where: MailboxList, task_id: str, draft: TodoDraft
    ) -> TodoItem:
        """PATCH every member of `draft` (TodoTaskMissing when the task is gone)."""
        ...

    async def delete_task(self, tenant: Tenant, where: MailboxList, task_id: str) -> None:
        """Idempotent: gone already (the task or its list) is fine."""
        ...

    async def add_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item: ChecklistDraft
    ) -> str:
        """The new item's id (TodoTaskMissing when the task is gone)."""
        ...

    async def checklist_items(
        self, tenant: Tenant, where: MailboxList, task_id: str
    ) -> tuple[ChecklistEntry, ...]:
        """The task's checklist items as To Do holds them (TodoTaskMissing when the task is gone): a retried
        add looks here first, as a retried create looks the task up by its link."""
        ...

    async def update_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item: ChecklistEntry
    ) -> None: ...

    async def delete_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item_id: str
    ) -> None:
        """Idempotent."""
        ...
