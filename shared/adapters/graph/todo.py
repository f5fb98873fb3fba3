"""Microsoft To Do through Graph (`TodoGateway`), as Microsoft documents it (contract §8, and
`m365emulator/todo.py` for the pages):

- lists: `GET /users/{id}/todo/lists` (paged, matched by `displayName` here: the docs document no
  `$filter` on lists), `POST /users/{id}/todo/lists`, `GET /users/{id}/todo/lists/{list}`;
- a task is made with its `linkedResources` and `checklistItems` inline (todotasklist-post-tasks.md),
  one request, and found again by its link: `GET …/tasks?$filter=linkedResources/any(r: r/externalId eq
  '…' and r/applicationName eq '…')&$expand=linkedResources` (To Do has no transactionId);
- the POSTs that make something go once, without the SDK's retries (a 5xx may follow the effect: the
  job retries, looking the task up first);
- `PATCH …/tasks/{id}` writes the task's own members; checklist items are their own resources
  (`POST|PATCH|DELETE …/tasks/{id}/checklistItems[/{item}]`);
- To Do answers every dateTimeTimeZone in UTC; one in another zone is read through `iana_zone`.

Graph's failures become the port's errors as the calendar's do (`GraphPort._translated`), plus: a 404
on a list or task path → `TodoListMissing` / `TodoTaskMissing` (a 404 naming the user or mailbox stays
`MailboxUnavailable`); another 4xx on the request (a 400, a 403 To Do gives although the mailbox opens)
→ `TodoRefused` with Graph's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.adapters.graph.calendar import NO_MAILBOX, NO_USER, GraphPort, user_path
from shared.adapters.graph.errors import AccessDenied, GraphError, GraphNotFound
from shared.adapters.graph.events import parse_graph_datetime
from shared.domain.tenants import Tenant
from shared.domain.timezones import iana_zone
from shared.service.errors import (
    TenantAccessError,
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

_MAILBOX_GONE: Final = NO_USER | NO_MAILBOX
MAX_LIST_PAGES: Final = 100


def _q(value: str) -> str:
    return quote(value, safe="")


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def wall_time(value: WallTime) -> dict[str, str]:
    return {"dateTime": value.wall.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": value.zone}


def draft_payload(draft: TodoDraft) -> dict[str, Any]:
    """Every writable member, a cleared one as null, so an update leaves nothing of an earlier version."""
    return {
        "title": draft.title,
        "body": {"content": draft.body, "contentType": draft.body_type},
        "importance": draft.importance,
        "status": draft.status,
        "dueDateTime": wall_time(draft.due) if draft.due else None,
        "startDateTime": wall_time(draft.start) if draft.start else None,
        "reminderDateTime": wall_time(draft.reminder) if draft.reminder else None,
        "isReminderOn": draft.reminder is not None,
        "completedDateTime": wall_time(draft.completed) if draft.completed else None,
        "categories": list(draft.categories),
        "recurrence": draft.recurrence,
    }


def link_payload(link: TaskLink) -> dict[str, Any]:
    body = {
        "applicationName": link.application_name,
        "displayName": link.display_name,
        "externalId": link.external_id,
    }
    if link.web_url:
        body["webUrl"] = link.web_url
    return body


def parse_zoned(raw: object) -> datetime | None:
    """A dateTimeTimeZone as an aware UTC instant (None when absent or unreadable)."""
    if not isinstance(raw, dict) or not raw.get("dateTime"):
        return None
    value = parse_graph_datetime(str(raw["dateTime"])).replace(tzinfo=None)
    zone_name = str(raw.get("timeZone") or "UTC")
    if zone_name.upper() in ("UTC", "ETC/UTC"):
        return value.replace(tzinfo=UTC)
    iana = iana_zone(zone_name)
    if iana is None:
        return value.replace(tzinfo=UTC)
    return value.replace(tzinfo=ZoneInfo(iana)).astimezone(UTC)


def parse_item(raw: dict[str, Any]) -> TodoItem:
    body = raw.get("body") or {}
    modified = raw.get("lastModifiedDateTime")
    return TodoItem(
        id=str(raw["id"]),
        etag=str(raw.get("@odata.etag") or ""),
        title=str(raw.get("title") or ""),
        status=str(raw.get("status") or "notStarted"),
        importance=str(raw.get("importance") or "normal"),
        body=str(body.get("content") or ""),
        due=parse_zoned(raw.get("dueDateTime")),
        start=parse_zoned(raw.get("startDateTime")),
        reminder=parse_zoned(raw.get("reminderDateTime")),
        completed=parse_zoned(raw.get("completedDateTime")),
        categories=tuple(str(c) for c in raw.get("categories") or ()),
        links=tuple(
            TaskLink(
                str(r.get("applicationName") or ""),
                str(r.get("externalId") or ""),
                str(r.get("displayName") or ""),
                r.get("webUrl"),
            )
            for r in raw.get("linkedResources") or ()
        ),
        checklist=tuple(
            ChecklistEntry(str(c["id"]), str(c.get("displayName") or ""), bool(c.get("isChecked")))
            for c in raw.get("checklistItems") or ()
        ),
        last_modified=parse_graph_datetime(str(modified)) if modified else None,
    )


class GraphTodo(GraphPort):
    """`TodoGateway` over Graph."""

    @staticmethod
    def _lists(graph_user_id: str) -> str:
        return f"{user_path(graph_user_id)}/todo/lists"

    def _tasks(self, where: MailboxList, task_id: str | None = None) -> str:
        base = f"{self._lists(where.graph_user_id)}/{_q(where.list_id)}/tasks"
        return f"{base}/{_q(task_id)}" if task_id else base

    async def _request(
        self,
        tenant: Tenant,
        method: str,
        url: str,
        graph_user_id: str,
        body: Any = None,
        *,
        once: bool = False,
    ) -> Any:
        """`once`: without the SDK's retries (a POST that makes something: a 5xx may come after it took
        effect, and only a look-up may decide what to do next)."""
        graph = await self._graph(tenant)
        try:
            if once:
                return await graph.request_json(method, url, body, retries=0)
            return await graph.request_json(method, url, body)
        except GraphNotFound as error:
            if error.code.lower() in _MAILBOX_GONE or "/todo/lists/" not in url:
                raise await self._translated(graph, error, graph_user_id) from error
            if "/tasks/" in url:
                raise TodoTaskMissing(url) from error
            raise TodoListMissing(url) from error
        except AccessDenied as error:
            translated = await self._access_denied(graph, error, graph_user_id)
            if isinstance(translated, TenantAccessError):
                raise translated from error
            raise TodoRefused(
                f"To Do refused the app for this mailbox ({error.status} {error.code}: {error.message}): the "
                "mailbox may have no To Do (an Exchange Online licence), or the consent lacks "
                "Tasks.ReadWrite.All"
            ) from error
        except GraphError as error:
            if 400 <= error.status < 500 and error.status not in (401, 408, 429):
                raise TodoRefused(
                    f"Graph refused it ({error.status} {error.code}: {error.message})"
                ) from error
            raise await self._translated(graph, error, graph_user_id) from error

    async def find_list(self, tenant: Tenant, graph_user_id: str, name: str) -> TodoListRef | None:
        url: str | None = f"{self._lists(graph_user_id)}?$select=id,displayName"
        lists: list[TodoListRef] = []
        for _ in range(MAX_LIST_PAGES):
            if url is None:
                break
            page = await self._request(tenant, "GET", url, graph_user_id) or {}
            lists.extend(
                TodoListRef(str(r["id"]), str(r.get("displayName") or "")) for r in page.get("value") or ()
            )
            url = page.get("@odata.nextLink")
        for found in lists:
            if found.name == name:
                return found
        folded = name.casefold()
        return next((found for found in lists if found.name.casefold() == folded), None)

    async def create_list(self, tenant: Tenant, graph_user_id: str, name: str) -> TodoListRef:
        raw = await self._request(
            tenant, "POST", self._lists(graph_user_id), graph_user_id, {"displayName": name}, once=True
        )
        return TodoListRef(str(raw["id"]), str(raw.get("displayName") or name))

    async def get_list(self, tenant: Tenant, graph_user_id: str, list_id: str) -> TodoListRef | None:
        try:
            raw = await self._request(
                tenant, "GET", f"{self._lists(graph_user_id)}/{_q(list_id)}", graph_user_id
            )
        except TodoListMissing:
            return None
        return TodoListRef(str(raw["id"]), str(raw.get("displayName") or ""))

    async def delete_list(self, tenant: Tenant, graph_user_id: str, list_id: str) -> None:
        try:
            await self._request(
                tenant, "DELETE", f"{self._lists(graph_user_id)}/{_q(list_id)}", graph_user_id
            )
        except TodoListMissing:
            return

    async def find_task(self, tenant: Tenant, where: MailboxList, link: TaskLink) -> TodoItem | None:
        condition = (
            f"linkedResources/any(r: r/externalId eq {_odata_string(link.external_id)} and "
            f"r/applicationName eq {_odata_string(link.application_name)})"
        )
        url = f"{self._tasks(where)}?$filter={_q(condition)}&$expand=linkedResources,checklistItems"
        page = await self._request(tenant, "GET", url, where.graph_user_id) or {}
        for raw in page.get("value") or ():
            item = parse_item(raw)
            if any(
                found.external_id == link.external_id and found.application_name == link.application_name
                for found in item.links
            ):
                return item
        return None

    async def get_task(self, tenant: Tenant, where: MailboxList, task_id: str) -> TodoItem | None:
        try:
            raw = await self._request(tenant, "GET", self._tasks(where, task_id), where.graph_user_id)
        except (TodoTaskMissing, TodoListMissing):
            return None
        return parse_item(raw)

    async def create_task(
        self,
        tenant: Tenant,
        where: MailboxList,
        draft: TodoDraft,
        link: TaskLink,
        checklist: Sequence[ChecklistDraft],
    ) -> TodoItem:
        body = {k: v for k, v in draft_payload(draft).items() if v is not None}
        body["linkedResources"] = [link_payload(link)]
        if checklist:
            body["checklistItems"] = [{"displayName": c.title, "isChecked": c.checked} for c in checklist]
        raw = await self._request(tenant, "POST", self._tasks(where), where.graph_user_id, body, once=True)
        return parse_item(raw)

    async def update_task(
        self, tenant: Tenant, where: MailboxList, task_id: str, draft: TodoDraft
    ) -> TodoItem:
        raw = await self._request(
            tenant, "PATCH", self._tasks(where, task_id), where.graph_user_id, draft_payload(draft)
        )
        return parse_item(raw)

    async def delete_task(self, tenant: Tenant, where: MailboxList, task_id: str) -> None:
        try:
            await self._request(tenant, "DELETE", self._tasks(where, task_id), where.graph_user_id)
        except (TodoTaskMissing, TodoListMissing):
            return

    async def add_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item: ChecklistDraft
    ) -> str:
        url = f"{self._tasks(where, task_id)}/checklistItems"
        raw = await self._request(
            tenant,
            "POST",
            url,
            where.graph_user_id,
            {"displayName": item.title, "isChecked": item.checked},
            once=True,
        )
        return str(raw["id"])

    async def checklist_items(
        self, tenant: Tenant, where: MailboxList, task_id: str
    ) -> tuple[ChecklistEntry, ...]:
        url = f"{self._tasks(where, task_id)}/checklistItems"
        page = await self._request(tenant, "GET", url, where.graph_user_id) or {}
        return parse_item({"id": task_id, "checklistItems": page.get("value") or ()}).checklist

    async def update_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item: ChecklistEntry
    ) -> None:
        url = f"{self._tasks(where, task_id)}/checklistItems/{_q(item.id)}"
        await self._request(
            tenant, "PATCH", url, where.graph_user_id, {"displayName": item.title, "isChecked": item.checked}
        )

    async def delete_checklist_item(
        self, tenant: Tenant, where: MailboxList, task_id: str, item_id: str
    ) -> None:
        url = f"{self._tasks(where, task_id)}/checklistItems/{_q(item_id)}"
        try:
            await self._request(tenant, "DELETE", url, where.graph_user_id)
        except TodoTaskMissing:
            return
