"""One fake of Microsoft To Do that keeps Graph's contract (graph-contract.md §8) for both of the
connector's ports on it: `TodoGateway` (the write side: lists found by display name and made, tasks made
with their link and checklist in one request and found again by the link, members written whole, a 404 on
a list or task path is `TodoListMissing` / `TodoTaskMissing`, delete idempotent) and
`TaskChangesGateway` (the read side: tasks delta over each list's change log, `todoTask` subscriptions).

One store serves both, as in Graph: what the connector writes is what the list's delta read returns (with
the connector's linkedResource, as `host_task_id`), and what a staff member does in To Do (`put`,
`remove`, a move out of the list) is what the write side meets. A task keeps what Graph keeps: the
members as written and the UTC instants its dateTimeTimeZones name (To Do answers them in UTC); a read
gives a due or start date as that instant's day in the zone it is asked for. Every change to a task (its
members, a checklist step, its removal) moves its etag on and appends it to its list's change log; a delta
link names a position in that log, and one from before `expire_tokens` is rejected (DeltaTokenRejected).

Faults: per write operation (`fail`): `throttle` (429: nothing happened), `lost` (a 5xx after the effect
took place), `refused` (a 400/403: TodoRefused), `gone` (the mailbox: MailboxUnavailable); per list for
the delta read and subscribing (`task_list(...).faults`, exceptions raised in turn). A mailbox the calendar
fake calls unavailable, or a tenant whose consent it revoked, fails both sides. `requests` counts the Graph
requests each operation stands for (a delta read of one page: one).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from shared.domain.outlook_tasks import (
    GRAPH_STATUSES,
    TASK_LINK_APPLICATION,
    OutlookTask,
    RemovalReason,
    RemovedTask,
    TaskItem,
)
from shared.domain.tasks import TaskRecord, TaskState
from shared.domain.tenants import Tenant
from shared.domain.timezones import iana_zone
from shared.service.errors import (
    AlreadyExists,
    DeltaTokenRejected,
    MailboxUnavailable,
    RateLimited,
    StaleWrite,
    TenantAccessError,
    TodoListMissing,
    TodoRefused,
    TodoTaskMissing,
)
from shared.service.ports.task_changes import ZoneOfRead
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
from shared.service.records import GraphSubscription, TaskDeltaRead
from tests.fakes.calendar import FakeMailboxes

_ids = itertools.count(1)
_STATUS_NAMES = {status: name for name, status in GRAPH_STATUSES.items()}
_MADE = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def instant(value: WallTime | None) -> datetime | None:
    if value is None:
        return None
    if value.zone.upper() == "UTC":
        return value.wall.replace(tzinfo=UTC)
    iana = iana_zone(value.zone)
    if iana is None:
        raise TodoRefused(f"400 TimeZoneNotSupportedException: {value.zone}")
    return value.wall.replace(tzinfo=ZoneInfo(iana)).astimezone(UTC)


def _day(value: WallTime | None, zone: str | None) -> date | None:
    """A due or start date as a read in `zone` answers it (the instant's day there; UTC's without one)."""
    at = instant(value)
    if at is None:
        return None
    return at.astimezone(ZoneInfo(zone)).date() if zone else at.date()


def _wall(value: date | datetime | None, zone: str) -> WallTime | None:
    """A day as To Do's client sets it (midnight in the user's zone), or an instant (in UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return WallTime(value.astimezone(UTC).replace(tzinfo=None), "UTC")
    return WallTime(datetime.combine(value, time()), zone)


@dataclass
class FakeTask:
    id: str
    draft: TodoDraft
    link: TaskLink | None  # the connector's linkedResource (None: a task the staff member made)
    checklist: list[ChecklistEntry] = field(default_factory=list)
    version: int = 1
    created_at: datetime = _MADE

    @property
    def etag(self) -> str:
        return f'W/"{self.id}.{self.version}"'

    def item(self, *, links: bool = False, checklist: bool = False) -> TodoItem:
        d = self.draft
        return TodoItem(
            id=self.id,
            etag=self.etag,
            title=d.title,
            status=d.status,
            importance=d.importance,
            body=d.body,
            due=instant(d.due),
            start=instant(d.start),
            reminder=instant(d.reminder),
            completed=instant(d.completed),
            categories=d.categories,
            links=(self.link,) if links and self.link else (),
            checklist=tuple(self.checklist) if checklist else (),
        )

    def outlook(self, zone: str | None) -> OutlookTask:
        """The task as a tasks delta read in `zone` returns it."""
        d = self.draft
        linked = self.link is not None and self.link.application_name == TASK_LINK_APPLICATION
        return OutlookTask(
            id=self.id,
            change_key=self.etag,
            title=d.title,
            body=d.body,
            body_type=d.body_type,
            status=GRAPH_STATUSES[d.status],
            importance=d.importance,
            due=_day(d.due, zone),
            start=_day(d.start, zone),
            reminder_at=instant(d.reminder),
            completed_at=instant(d.completed),
            categories=d.categories,
            recurrence=d.recurrence,
            created_at=self.created_at,
            last_modified=self.created_at,
            host_task_id=self.link.external_id if linked and self.link else None,
        )


@dataclass
class FakeList:
    id: str
    name: str
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)  # task ids in change order (position = index + 1)
    moved: set[str] = field(default_factory=set)  # ids moved out (their removal says `moved`)
    generation: int = 0  # bumped by expire_tokens
    faults: list[Exception] = field(default_factory=list)  # raised in turn by reads and subscribing

    def changed(self, task: FakeTask) -> None:
        task.version += 1
        self.log.append(task.id)


class FakeTodo:
    def __init__(self, mailboxes: FakeMailboxes | None = None) -> None:
        self.mailboxes = mailboxes or FakeMailboxes()  # subscriptions live with the calendar's
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

    def task_list(self, user: str, list_id: str) -> FakeList:
        found = self.mailbox(user).get(list_id)
        if found is None:
            raise KeyError(f"no list {list_id} in {user}'s To Do")
        return found

    def tasks_in(self, user: str, list_name: str) -> list[FakeTask]:
        return [t for lst in self.mailbox(user).values() if lst.name == list_name for t in lst.tasks.values()]

    def all_tasks(self, user: str) -> list[FakeTask]:
        return [t for lst in self.mailbox(user).values() for t in lst.tasks.values()]

    async def connector_list(self, graph_user_id: str, name: str) -> str:
        """The list of that name (made as the user might have made it before): the one a run finds."""
        for found in self.mailbox(graph_user_id).values():
            if found.name == name:
                return found.id
        made = FakeList(f"list-{next(_ids)}", name)
        self.mailbox(graph_user_id)[made.id] = made
        return made.id

    # --- what a staff member does in To Do -----------------------------------------------------------

    def put(self, graph_user_id: str, list_id: str, task: OutlookTask, *, zone: str = "UTC") -> OutlookTask:
        """The staff member adds or edits a task (its dates set in their To Do client's `zone`); a task that
        carries a `host_task_id` carries the connector's link. Answers the task as a read in UTC shows it."""
        found = self.task_list(graph_user_id, list_id)
        draft = TodoDraft(
            title=task.title,
            body=task.body,
            body_type=task.body_type,
            importance=task.importance,
            status=_STATUS_NAMES[task.status],
            due=_wall(task.due, zone),
            start=_wall(task.start, zone),
            reminder=_wall(task.reminder_at, zone),
            completed=_wall(task.completed_at, zone),
            categories=tuple(task.categories),
            recurrence=task.recurrence,
        )
        stored = found.tasks.get(task.id)
        if stored is None:
            link = None
            if task.host_task_id is not None:
                link = TaskLink(TASK_LINK_APPLICATION, task.host_task_id, task.title)
            stored = FakeTask(task.id, draft, link, created_at=task.created_at or _MADE)
            found.tasks[task.id] = stored
        stored.draft = draft
        found.changed(stored)
        return stored.outlook(None)

    def remove(self, graph_user_id: str, list_id: str, task_id: str, *, moved: bool = False) -> None:
        """The staff member deletes a task, or moves it to another list (`moved`)."""
        found = self.task_list(graph_user_id, list_id)
        found.tasks.pop(task_id, None)
        if moved:
            found.moved.add(task_id)
        found.log.append(task_id)

    def expire_tokens(self, graph_user_id: str, list_id: str) -> None:
        self.task_list(graph_user_id, list_id).generation += 1

    def subscribed(self) -> set[tuple[str, str]]:
        """(user, list) of every task subscription Graph holds."""
        out = set()
        for user, subscription, _ in self.mailboxes.subscriptions.values():
            if "/todo/lists/" in subscription.resource:
                out.add((user, subscription.resource.split("/")[4]))
        return out

    # the mailbox -----------------------------------------------------------------------------------
    def _reach(self, tenant: Tenant, user: str, calls: int = 1) -> None:
        self.requests += calls
        if tenant.directory_id in self.mailboxes.revoked_tenants:
            raise TenantAccessError("Authorization_RequestDenied: consent was revoked")
        if user in self.gone_mailboxes:
            raise MailboxUnavailable(f"no mailbox {user}")
        unavailable = self.mailboxes.mailbox(user).unavailable
        if unavailable:
            raise MailboxUnavailable(unavailable)

    # TodoGateway -----------------------------------------------------------------------------------
    def _enter(self, tenant: Tenant, operation: str, user: str) -> str | None:
        self._reach(tenant, user)
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
        self._enter(tenant, "find_list", graph_user_id)
        lists = list(self.mailbox(graph_user_id).values())
        for lst in lists:
            if lst.name == name:
                return TodoListRef(lst.id, lst.name)
        for lst in lists:
            if lst.name.casefold() == name.casefold():
                return TodoListRef(lst.id, lst.name)
        return None

    async def create_list(self, tenant: Tenant, graph_user_id: str, name: str) -> TodoListRef:
        fault = self._enter(tenant, "create_list", graph_user_id)
        lst = FakeList(f"list-{next(_ids)}", name)
        self.mailbox(graph_user_id)[lst.id] = lst
        self._lost(fault)
        return TodoListRef(lst.id, lst.name)

    async def get_list(self, tenant: Tenant, graph_user_id: str, list_id: str) -> TodoListRef | None:
        self._enter(tenant, "get_list", graph_user_id)
        lst = self.mailbox(graph_user_id).get(list_id)
        return TodoListRef(lst.id, lst.name) if lst else None

    async def delete_list(self, tenant: Tenant, graph_user_id: str, list_id: str) -> None:
        self._enter(tenant, "delete_list", graph_user_id)
        self.mailbox(graph_user_id).pop(list_id, None)

    async def find_task(self, tenant: Tenant, where: MailboxList, link: TaskLink) -> TodoItem | None:
        self._enter(tenant, "find_task", where.graph_user_id)
        for task in self._list(where).tasks.values():
            if task.link is not None and (task.link.application_name, task.link.external_id) == (
                link.application_name,
                link.external_id,
            ):
                return task.item(links=True, checklist=True)
        return None

    async def get_task(self, tenant: Tenant, where: MailboxList, task_id: str) -> TodoItem | None:
        self._enter(tenant, "get_task", where.graph_user_id)
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
        fault = self._enter(tenant, "create_task", where.graph_user_id)
        lst = self._list(where)
        instant(draft.due)  # an unknown zone is refused before anything is made
        task = FakeTask(
            f"task-{next(_ids)}",
            draft,
            link,
            [ChecklistEntry(f"item-{next(_ids)}", c.title, c.checked) for c in checklist],
            version=0,
        )
        lst.tasks[task.id] = task
        lst.changed(task)
        self._lost(fault)
        return task.item(links=True, checklist=True)

    async def update_task(
        self, tenant: Tenant, where: MailboxList, task_id: str, draft: TodoDraft
    ) -> TodoItem:
        fault = self._enter(tenant, "update_task", where.graph_user_id)
        lst = self._list(where)
        task = self._task(where, task_id)
        task.draft = draft
        lst.changed(task)
        self._lost(fault)
        return task.item()

    async def delete_task(self, tenant: Tenant, where: MailboxList, task_id: str) -> None:
        fault = self._enter(tenant, "delete_task", where.graph_user_id)
        lst = self.mailbox(where.graph_user_id).get(where.list_id)
        if lst is not None and lst.tasks.pop(task_id, None) is not None:
            lst.log.append(task_id)
        self._lost(fault)

    async def add_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item: ChecklistDraft
    ) -> str:
        fault = self._enter(tenant, "add_checklist_item", where.graph_user_id)
        task = self._task(where, task_id)
        entry = ChecklistEntry(f"item-{next(_ids)}", item.title, item.checked)
        task.checklist.append(entry)
        self._list(where).changed(task)
        self._lost(fault)
        return entry.id

    async def checklist_items(
        self, tenant: Tenant, where: MailboxList, task_id: str
    ) -> tuple[ChecklistEntry, ...]:
        self._enter(tenant, "checklist_items", where.graph_user_id)
        return tuple(self._task(where, task_id).checklist)

    async def update_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item: ChecklistEntry
    ) -> None:
        self._enter(tenant, "update_checklist_item", where.graph_user_id)
        task = self._task(where, task_id)
        for i, entry in enumerate(task.checklist):
            if entry.id == item.id:
                task.checklist[i] = replace(entry, title=item.title, checked=item.checked)
                self._list(where).changed(task)
                return
        raise TodoTaskMissing(item.id)

    async def delete_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item_id: str
    ) -> None:
        self._enter(tenant, "delete_checklist_item", where.graph_user_id)
        lst = self.mailbox(where.graph_user_id).get(where.list_id)
        task = lst.tasks.get(task_id) if lst else None
        if lst is not None and task is not None:
            task.checklist = [e for e in task.checklist if e.id != item_id]
            lst.changed(task)

    # TaskChangesGateway ----------------------------------------------------------------------------
    def _reading(self, tenant: Tenant, graph_user_id: str, list_id: str) -> FakeList:
        self._reach(tenant, graph_user_id)
        found = self.mailbox(graph_user_id).get(list_id)
        if found is None:
            raise MailboxUnavailable(f"404 ErrorItemNotFound: no list {list_id}")
        if found.faults:
            raise found.faults.pop(0)
        return found

    async def read_tasks_delta(
        self,
        tenant: Tenant,
        graph_user_id: str,
        list_id: str,
        delta_link: str | None,
        zone: ZoneOfRead = None,
    ) -> TaskDeltaRead:
        found = self._reading(tenant, graph_user_id, list_id)
        await asyncio.sleep(0)  # the read's requests go out before a zone still to come is awaited
        days_in = zone if zone is None or isinstance(zone, str) else await zone
        if delta_link is None:
            items: list[TaskItem] = [t.outlook(days_in) for t in found.tasks.values()]
        else:
            user, listed, generation, position = delta_link.split("|")
            if (user, listed) != (graph_user_id, list_id) or int(generation) != found.generation:
                raise DeltaTokenRejected(delta_link)
            items = []
            for task_id in dict.fromkeys(found.log[int(position) :]):
                task = found.tasks.get(task_id)
                if task is not None:
                    items.append(task.outlook(days_in))
                else:
                    reason = RemovalReason.MOVED if task_id in found.moved else RemovalReason.DELETED
                    items.append(RemovedTask(task_id, reason))
        link = "|".join((graph_user_id, list_id, str(found.generation), str(len(found.log))))
        return TaskDeltaRead(items, link, requests=1)

    async def subscribe_tasks(
        self, tenant: Tenant, graph_user_id: str, list_id: str, client_state: str, expires_at: datetime
    ) -> GraphSubscription:
        self._reading(tenant, graph_user_id, list_id)
        resource = f"users/{graph_user_id}/todo/lists/{list_id}/tasks"
        for sid, (user, existing, state) in self.mailboxes.subscriptions.items():
            if existing.resource == resource and self.mailboxes._held(tenant, sid) is not None:
                # Graph refuses the duplicate (409); the adapter adopts and renews the existing one
                adopted = replace(existing, expires_at=expires_at, adopted=True)
                self.mailboxes.subscriptions[sid] = (user, adopted, state)
                return adopted
        subscription = GraphSubscription(f"sub-{next(_ids)}-tasks", expires_at, resource)
        self.mailboxes.subscriptions[subscription.id] = (graph_user_id, subscription, client_state)
        self.mailboxes.subscription_tenants[subscription.id] = tenant.directory_id
        return subscription


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
