"""A To Do list's changes through Graph (`TaskChangesGateway`): the tasks delta, parsed from raw bytes,
and the `todoTask` subscription.

The delta read asks for `$expand=linkedResources` on its first request (Graph keeps query options in the
links it answers, contract §8 and the todoTask delta page), so each task says whether it is one of the
host's (a linked resource with the connector's `applicationName`, the host's task id as `externalId`).
A removed task is `@removed`; OData's reason `changed` (removed from the collection by a data change: a
task moved to another list gets a new id there) is a move, anything else a deletion.

Failures are translated as for the calendar (`calendar.GraphPort`): 410 `syncStateNotFound` /
`resyncRequired`, and a 400 on a stored link, are `DeltaTokenRejected`; a 404 on the list is
`MailboxUnavailable` (the list is gone: the run finds or makes it again).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.adapters.graph.calendar import (
    CHANGE_TYPES,
    MAX_PAGES,
    GraphPort,
    KeyFor,
    _subscription,
    _utc,
    user_path,
)
from shared.adapters.graph.client import GraphClients
from shared.adapters.graph.errors import GraphError, GraphNotFound
from shared.adapters.graph.events import _UTC_NAMES, _trim, _zone_named, parse_graph_datetime
from shared.domain.outlook_tasks import (
    GRAPH_STATUSES,
    TASK_LINK_APPLICATION,
    OutlookTask,
    RemovalReason,
    RemovedTask,
    TaskItem,
    TaskStatus,
)
from shared.domain.tenants import Tenant
from shared.service.errors import MailboxUnavailable
from shared.service.ports.task_changes import ZoneOfRead
from shared.service.records import GraphSubscription, TaskDeltaRead


class TaskPayloadError(ValueError):
    """Graph sent a task the connector cannot read (no id)."""


def tasks_resource(graph_user_id: str, list_id: str) -> str:
    return f"users/{graph_user_id}/todo/lists/{list_id}/tasks"


def raw_delta_page(body: bytes) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """One page of a tasks delta as answered: (its tasks' JSON objects, `@odata.nextLink`,
    `@odata.deltaLink`); `_item` parses them once the user's zone is known."""
    page = json.loads(body)
    return list(page.get("value") or ()), page.get("@odata.nextLink"), page.get("@odata.deltaLink")


def _item(raw: dict[str, Any], zone: tzinfo | None) -> TaskItem:
    removed = raw.get("@removed")
    if removed is not None:
        reason = removed.get("reason") if isinstance(removed, dict) else None
        return RemovedTask(raw["id"], RemovalReason.MOVED if reason == "changed" else RemovalReason.DELETED)
    return parse_task(raw, zone)


def parse_task(raw: dict[str, Any], zone: tzinfo | None = None) -> OutlookTask:
    get = raw.get
    task_id = get("id")
    if not task_id:
        raise TaskPayloadError("a task without an id")
    body = get("body") or {}
    created, modified = get("createdDateTime"), get("lastModifiedDateTime")
    return OutlookTask(
        id=task_id,
        change_key=get("@odata.etag"),
        title=get("title") or "",
        body=body.get("content") or "",
        body_type=(body.get("contentType") or "text").lower(),
        status=GRAPH_STATUSES.get(get("status") or "", TaskStatus.NOT_STARTED),
        importance=get("importance") or "normal",
        due=_day(get("dueDateTime"), zone),
        start=_day(get("startDateTime"), zone),
        reminder_at=_instant(get("reminderDateTime")) if get("isReminderOn") is not False else None,
        completed_at=_instant(get("completedDateTime")),
        categories=tuple(get("categories") or ()),
        recurrence=get("recurrence") or None,
        created_at=parse_graph_datetime(created) if created else None,
        last_modified=parse_graph_datetime(modified) if modified else None,
        host_task_id=_host_task_id(get("linkedResources")),
    )


def _day(value: Any, zone: tzinfo | None) -> date | None:
    """To Do's due and start dates. To Do keeps a due date as midnight of that day in the zone it was set
    in and answers the instant in UTC (todotask-update.md), so the day is the instant's date in the
    user's zone; without one, the date part as answered (a day set in UTC, or in the zone named)."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        return None
    text: str = value["dateTime"]
    if zone is None:
        return date.fromisoformat(text[:10])
    instant = _instant(value)
    return instant.astimezone(zone).date() if instant is not None else None


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        return None
    text = value["dateTime"]
    zone_name = value.get("timeZone") or "UTC"
    if zone_name in _UTC_NAMES:
        return parse_graph_datetime(text)
    wall = datetime.fromisoformat(_trim(text))
    if wall.tzinfo is not None:
        return wall.astimezone(UTC)
    zone = _zone_named(zone_name)
    return wall.replace(tzinfo=zone or UTC).astimezone(UTC)


def _host_task_id(resources: Any) -> str | None:
    for resource in resources or ():
        if isinstance(resource, dict) and resource.get("applicationName") == TASK_LINK_APPLICATION:
            external = resource.get("externalId")
            if isinstance(external, str) and external:
                return external
    return None


class GraphTaskChanges(GraphPort):
    """`TaskChangesGateway` over Graph."""

    def __init__(
        self,
        clients: GraphClients,
        key_for: KeyFor,
        *,
        notification_url: str,
        lifecycle_url: str,
        page_size: int = 200,
    ) -> None:
        super().__init__(clients, key_for)
        self._notification_url = notification_url
        self._lifecycle_url = lifecycle_url
        self._page_size = page_size

    async def read_tasks_delta(
        self,
        tenant: Tenant,
        graph_user_id: str,
        list_id: str,
        delta_link: str | None,
        zone: ZoneOfRead = None,
    ) -> TaskDeltaRead:
        graph = await self._graph(tenant)
        headers = {"Prefer": f"odata.maxpagesize={self._page_size}"}
        url = delta_link or (
            f"{user_path(graph_user_id)}/todo/lists/{quote(list_id, safe='')}/tasks/delta"
            "?$expand=linkedResources"
        )

        def gone(error: GraphNotFound) -> Exception:
            return MailboxUnavailable(
                f"the To Do list {list_id} or its mailbox is gone ({error.code}: {error.message})"
            )

        pages, new_delta_link, requests = await self._delta_round(
            graph,
            graph_user_id,
            url,
            headers,
            raw_delta_page,
            resumed=delta_link is not None,
            not_found=gone,
        )
        known = zone if zone is None or isinstance(zone, str) else await zone  # the days, once it is known
        days_in = ZoneInfo(known) if known else None
        return TaskDeltaRead([_item(raw, days_in) for raw in pages], new_delta_link, requests)

    async def subscribe_tasks(
        self, tenant: Tenant, graph_user_id: str, list_id: str, client_state: str, expires_at: datetime
    ) -> GraphSubscription:
        graph = await self._graph(tenant)
        resource = tasks_resource(graph_user_id, list_id)
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": self._notification_url,
            "lifecycleNotificationUrl": self._lifecycle_url,
            "resource": resource,
            "expirationDateTime": _utc(expires_at, "expires_at"),
            "clientState": client_state,
        }
        try:
            answer = await graph.request_json("POST", "/subscriptions", body)
        except GraphError as error:
            if error.status == 409:  # ours already, left by a run that died before indexing it: adopt it
                adopted = await self._adopt(tenant, resource, expires_at)
                if adopted is not None:
                    return adopted
            raise await self._translated(graph, error, graph_user_id) from error
        return _subscription(answer)

    async def _adopt(self, tenant: Tenant, resource: str, expires_at: datetime) -> GraphSubscription | None:
        graph = await self._graph(tenant)
        try:
            page: dict[str, Any] | None = await graph.request_json("GET", "/subscriptions")
        except GraphError as error:
            raise await self._translated(graph, error, None) from error
        url: str | None = None
        pages = 0
        while page is not None and pages < MAX_PAGES:
            pages += 1
            for raw in page.get("value") or ():
                existing = _subscription(raw)
                if existing.resource.strip("/").lower() == resource.lower():
                    return await self._renewed(tenant, existing, expires_at)
            url = page.get("@odata.nextLink")
            page = await graph.request_json("GET", url) if url else None
        return None

    async def _renewed(
        self, tenant: Tenant, existing: GraphSubscription, expires_at: datetime
    ) -> GraphSubscription | None:
        graph = await self._graph(tenant)
        try:
            answer = await graph.request_json(
                "PATCH",
                f"/subscriptions/{quote(existing.id, safe='')}",
                {"expirationDateTime": _utc(expires_at, "expires_at")},
            )
        except GraphNotFound:
            return None
        except GraphError as error:
            raise await self._translated(graph, error, None) from error
        renewed = parse_graph_datetime(answer["expirationDateTime"]) if answer else expires_at
        return GraphSubscription(existing.id, renewed, existing.resource, adopted=True)
