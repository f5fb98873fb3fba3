"""A fake of To Do (`TodoGateway`) that keeps Graph's contract: lists per mailbox, found by display
name; tasks made with their link and checklist in one request and found again by the link; dates kept as
the UTC instants they name (To Do answers them in UTC); a 404 on a list or task path is
`TodoListMissing` / `TodoTaskMissing`; delete is idempotent. Faults are queued per operation: `throttle`
(429: nothing happened), `lost` (a 5xx after the effect took place), `refused` (a 400/403: TodoRefused),
`gone` (the mailbox: MailboxUnavailable). `requests` counts the Graph requests each operation stands for.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from shared.domain.tasks import TaskRecord, TaskState
from shared.domain.tenants import Tenant
from shared.domain.timezones import iana_zone
from shared.service.errors import (
    AlreadyExists,
    MailboxUnavailable,
    RateLimited,
    StaleWrite,
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
    TodoItem,
    TodoListRef,
    WallTime,
)

_ids = itertools.count(1)


def instant(value: WallTime | None) -> datetime | None:
    if value is None:
        return None
    if value.zone.upper() == "UTC":
        return value.wall.replace(tzinfo=UTC)
    iana = iana_zone(value.zone)
    if iana is None:
        raise TodoRefused(f"400 TimeZoneNotSupportedException: {value.zone}")
    return value.wall.replace(tzinfo=ZoneInfo(iana)).astimezone(UTC)


@dataclass
class FakeTask:
    id: str
    draft: TodoDraft
    link: TaskLink
    checklist: list[ChecklistEntry] = field(default_factory=list)
    version: int = 1

    def item(self, *, links: bool = False, checklist: bool = False) -> TodoItem:
        d = self.draft
        return TodoItem(
            id=self.id,
            etag=f'W/"{self.id}.{self.version}"',
            title=d.title,
            status=d.status,
            importance=d.importance,
            body=d.body,
            due=instant(d.due),
            start=instant(d.start),
            reminder=instant(d.reminder),
            completed=instant(d.completed),
            categories=d.categories,
            links=(self.link,) if links else (),
            checklist=tuple(self.checklist) if checklist else (),
        )


@dataclass
class FakeList:
    id: str
    name: str
    tasks: dict[str, FakeTask] = field(default_factory=dict)


class FakeTodo:
    def __init__(self) -> None:
        self.lists: dict[str, dict[str, FakeList]] = {}  # mailbox → list id → list
        self.faults: dict[str, list[str]] = {}
        self.requests = 0
        self.gone_mailboxes: set[str] = set()

    # test helpers ----------------------------------------------------------------------------------
    def fail(self, operation: str, *faults: str) -> None:
        self.faults.setdefault(operation, []).extend(faults)

    def mailbox(self, user: str) -> dict[str, FakeList]:
        if user not in self.lists:
            default = FakeList(f"list-{next(_ids)}", "Tasks")
            self.lists[user] = {default.id: default}
        return self.lists[user]

    def tasks_in(self, user: str, list_name: str) -> list[FakeTask]:
        return [t for lst in self.mailbox(user).values() if lst.name == list_name for t in lst.tasks.values()]

    def all_tasks(self, user: str) -> list[FakeTask]:
        return [t for lst in self.mailbox(user).values() for t in lst.tasks.values()]

    # the port --------------------------------------------------------------------------------------
    def _enter(self, operation: str, user: str, calls: int = 1) -> str | None:
        self.requests += calls
        if user in self.gone_mailboxes:
            raise MailboxUnavailable(f"no mailbox {user}")
        queued = self.faults.get(operation)
        fault = queued.pop(0) if queued else None
        if fault == "throttle":
            raise RateLimited(1, "429 TooManyRequests")
        if fault == "refused":
            raise TodoRefused("403 ErrorAccessDenied: Access is denied.")
        if fault == "gone":
            raise MailboxUnavailable(f"404 MailboxNotEnabledForRESTAPI: {user}")
        return fault

    @staticmethod
    def _lost(fault: str | None) -> None:
        if fault == "lost":
            raise RateLimited(10, "503 ServiceUnavailable (after the effect)")

    def _list(self, where: MailboxList) -> FakeList:
        found = self.mailbox(where.graph_user_id).get(where.list_id)
        if found is None:
            raise TodoListMissing(where.list_id)
        return found

    def _task(self, where: MailboxList, task_id: str) -> FakeTask:
        found = self._list(where).tasks.get(task_id)
        if found is None:
            raise TodoTaskMissing(task_id)
        return found

    async def find_list(self, tenant: Tenant, graph_user_id: str, name: str) -> TodoListRef | None:
        self._enter("find_list", graph_user_id)
        lists = list(self.mailbox(graph_user_id).values())
        for lst in lists:
            if lst.name == name:
                return TodoListRef(lst.id, lst.name)
        for lst in lists:
            if lst.name.casefold() == name.casefold():
                return TodoListRef(lst.id, lst.name)
        return None

    async def create_list(self, tenant: Tenant, graph_user_id: str, name: str) -> TodoListRef:
        fault = self._enter("create_list", graph_user_id)
        lst = FakeList(f"list-{next(_ids)}", name)
        self.mailbox(graph_user_id)[lst.id] = lst
        self._lost(fault)
        return TodoListRef(lst.id, lst.name)

    async def get_list(self, tenant: Tenant, graph_user_id: str, list_id: str) -> TodoListRef | None:
        self._enter("get_list", graph_user_id)
        lst = self.mailbox(graph_user_id).get(list_id)
        return TodoListRef(lst.id, lst.name) if lst else None

    async def delete_list(self, tenant: Tenant, graph_user_id: str, list_id: str) -> None:
        self._enter("delete_list", graph_user_id)
        self.mailbox(graph_user_id).pop(list_id, None)

    async def find_task(self, tenant: Tenant, where: MailboxList, link: TaskLink) -> TodoItem | None:
        self._enter("find_task", where.graph_user_id)
        for task in self._list(where).tasks.values():
            if (task.link.application_name, task.link.external_id) == (
                link.application_name,
                link.external_id,
            ):
                return task.item(links=True, checklist=True)
        return None

    async def get_task(self, tenant: Tenant, where: MailboxList, task_id: str) -> TodoItem | None:
        self._enter("get_task", where.graph_user_id)
        lst = self.mailbox(where.graph_user_id).get(where.list_id)
        task = lst.tasks.get(task_id) if lst else None
        return task.item() if task else None

    async def create_task(
        self,
        tenant: Tenant,
        where: MailboxList,
        draft: TodoDraft,
        link: TaskLink,
        checklist: Sequence[ChecklistDraft],
    ) -> TodoItem:
        fault = self._enter("create_task", where.graph_user_id)
        lst = self._list(where)
        instant(draft.due)  # an unknown zone is refused before anything is made
        task = FakeTask(
            f"task-{next(_ids)}",
            draft,
            link,
            [ChecklistEntry(f"item-{next(_ids)}", c.title, c.checked) for c in checklist],
        )
        lst.tasks[task.id] = task
        self._lost(fault)
        return task.item(links=True, checklist=True)

    async def update_task(
        self, tenant: Tenant, where: MailboxList, task_id: str, draft: TodoDraft
    ) -> TodoItem:
        fault = self._enter("update_task", where.graph_user_id)
        task = self._task(where, task_id)
        task.draft = draft
        task.version += 1
        self._lost(fault)
        return task.item()

    async def delete_task(self, tenant: Tenant, where: MailboxList, task_id: str) -> None:
        fault = self._enter("delete_task", where.graph_user_id)
        lst = self.mailbox(where.graph_user_id).get(where.list_id)
        if lst is not None:
            lst.tasks.pop(task_id, None)
        self._lost(fault)

    async def add_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item: ChecklistDraft
    ) -> str:
        fault = self._enter("add_checklist_item", where.graph_user_id)
        task = self._task(where, task_id)
        entry = ChecklistEntry(f"item-{next(_ids)}", item.title, item.checked)
        task.checklist.append(entry)
        task.version += 1
        self._lost(fault)
        return entry.id

    async def checklist_items(
        self, tenant: Tenant, where: MailboxList, task_id: str
    ) -> tuple[ChecklistEntry, ...]:
        self._enter("checklist_items", where.graph_user_id)
        return tuple(self._task(where, task_id).checklist)

    async def update_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item: ChecklistEntry
    ) -> None:
        self._enter("update_checklist_item", where.graph_user_id)
        task = self._task(where, task_id)
        for i, entry in enumerate(task.checklist):
            if entry.id == item.id:
                task.checklist[i] = replace(entry, title=item.title, checked=item.checked)
                task.version += 1
                return
        raise TodoTaskMissing(item.id)

    async def delete_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item_id: str
    ) -> None:
        self._enter("delete_checklist_item", where.graph_user_id)
        lst = self.mailbox(where.graph_user_id).get(where.list_id)
        task = lst.tasks.get(task_id) if lst else None
        if task is not None:
            task.checklist = [e for e in task.checklist if e.id != item_id]
            task.version += 1


class FakeTasks:
    """The `tasks` rows: insert without an etag, replace only with the current one."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], TaskRecord] = {}
        self._etags = itertools.count(1)

    async def get(self, tenant_id: str, task_id: str) -> TaskRecord | None:
        return self.rows.get((tenant_id, task_id))

    async def save(self, record: TaskRecord) -> TaskRecord:
        key = (record.tenant_id, record.task_id)
        current = self.rows.get(key)
        if record.etag is None:
            if current is not None:
                raise AlreadyExists(record.task_id)
        elif current is None or current.etag != record.etag:
            raise StaleWrite(record.task_id)
        saved = replace(record, etag=f"t{next(self._etags)}")
        self.rows[key] = saved
        return saved

    async def naming(self, tenant_id: str, staff_id: str) -> list[TaskRecord]:
        return [
            r
            for (tid, _), r in self.rows.items()
            if tid == tenant_id
            and (r.staff_id == staff_id or (r.task is not None and r.task.staff_id == staff_id))
        ]

    async def in_tenant(self, tenant_id: str) -> list[TaskRecord]:
        return [r for (tid, _), r in self.rows.items() if tid == tenant_id]

    async def unsettled(self, tenant_id: str) -> list[TaskRecord]:
        return [r for r in await self.in_tenant(tenant_id) if r.state is not TaskState.SYNCED]

    async def delete(self, tenant_id: str, task_id: str) -> None:
        self.rows.pop((tenant_id, task_id), None)

    async def delete_tenant(self, tenant_id: str) -> None:
        for key in [k for k in self.rows if k[0] == tenant_id]:
            del self.rows[key]
