"""Mailbox calendars and change-notification subscriptions through Graph (`CalendarGateway`,
`SubscriptionGateway`): the data plane of the Outlook-to-host sync.

Every request goes through the SDK's request adapter and middleware (retry honouring `Retry-After`, at
most `MAX_SDK_RETRIES`); delta pages come back as raw bytes and are parsed by `events.py`. Requests on
events carry `Prefer: IdType="ImmutableId"`, so an event keeps its id when it moves between folders, and
the ids of delta reads, `connector_events`, notifications and `translateExchangeIds`
(`restImmutableEntryId`) are the same strings.

Graph's failures become the ports' errors here, once:
- 410 (or `syncStateNotFound`/`resyncRequired`), and a 400 on a stored delta link → `DeltaTokenRejected`;
- 429/503/504 after the SDK's retries, other 5xx and transport failures → `RateLimited`;
- a refused token request (the app's secret, its service principal) → `TenantAccessError`; a 401
  (`InvalidAuthenticationToken`) reaching here was already sent again with a new token (`client.py`),
  so Graph refuses the tenant's authentication itself → `TenantAccessError` saying so, never throttling;
- 404 on a mailbox path → `MailboxUnavailable` (no such user, no Exchange Online mailbox);
- 403 on a mailbox path → one directory read decides: refused too → the tenant's consent is gone
  (`TenantAccessError`); allowed → only this mailbox is closed to the app (`MailboxUnavailable`).
"""

from __future__ import annotations

import asyncio
import builtins
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, time
from typing import Any, Final, TypeVar
from urllib.parse import quote

from shared.adapters.graph.client import GraphClients, TenantGraph, TenantKey
from shared.adapters.graph.errors import (
    AccessDenied,
    AuthFailed,
    GraphError,
    GraphNotFound,
    SyncStateLost,
    Throttled,
    refusal_reason,
)
from shared.adapters.graph.events import parse_delta_page, parse_event, parse_graph_datetime
from shared.domain.calendar import APPOINTMENT_PROPERTY_ID, OutlookEvent
from shared.domain.tenants import Tenant
from shared.service.errors import (
    DeltaTokenRejected,
    MailboxUnavailable,
    RateLimited,
    SubscriptionGone,
    TenantAccessError,
)
from shared.service.records import DeltaRead, GraphSubscription, WorkingHours

IMMUTABLE_IDS: Final = 'IdType="ImmutableId"'
UTC_TIMES: Final = 'outlook.timezone="UTC"'
TRANSLATE_BATCH: Final = 1000  # translateExchangeIds takes at most this many ids per request
BATCH_LIMIT: Final = 20  # Graph's `$batch` maximum
MAX_PAGES: Final = 10_000  # a guard against a server that never ends a round
TRANSIENT_RETRY_AFTER: Final = 10.0  # seconds, for a 5xx or a broken connection without Retry-After
CHANGE_TYPES: Final = "created,updated,deleted"
T = TypeVar("T")  # an item of a delta page
# What `events.parse_event` reads of an event, and a master's cancelled occurrences.
EVENT_PROPERTIES: Final = ",".join(
    (
        "id,changeKey,iCalUId,type,seriesMasterId,subject,body,location,start,end,isAllDay,showAs",
        "sensitivity,categories,isCancelled,organizer,attendees,onlineMeeting,onlineMeetingUrl",
        "originalStartTimeZone,lastModifiedDateTime,transactionId,originalStart,isOrganizer,responseStatus",
        "recurrence,cancelledOccurrences",
    )
)

NO_USER: Final = {"errorinvaliduser", "request_resourcenotfound", "resourcenotfound"}
NO_MAILBOX: Final = {
    "mailboxnotenabledforrestapi",
    "mailboxnotsupportedforrestapi",
    "errornonexistentmailbox",
}

KeyFor = Callable[[Tenant], Awaitable[TenantKey]]


def _utc(value: datetime, name: str) -> str:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _window_param(value: datetime, name: str) -> str:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return quote(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), safe="")


def user_path(graph_user_id: str) -> str:
    return f"/users/{quote(graph_user_id, safe='')}"


class GraphPort:
    """What both gateways share: the tenant's client, and Graph's errors translated for a mailbox."""

    def __init__(self, clients: GraphClients, key_for: KeyFor) -> None:
        self._clients = clients
        self._key_for = key_for

    async def _graph(self, tenant: Tenant) -> TenantGraph:
        return await self._clients.for_tenant(await self._key_for(tenant))

    async def _translated(
        self, graph: TenantGraph, error: GraphError, graph_user_id: str | None
    ) -> Exception:
        """The port's error for a Graph failure (`graph_user_id` when the request was on a mailbox)."""
        if isinstance(error, SyncStateLost):
            return DeltaTokenRejected(f"{error.status} {error.code}: {error.message}")
        if isinstance(error, Throttled):
            return RateLimited(error.retry_after, f"{error.status} {error.code}: {error.message}")
        if isinstance(error, AuthFailed):
            # A refused token request, or Graph refusing a new token too (client.py sent it once more).
            return TenantAccessError(refusal_reason(error))
        if isinstance(error, GraphNotFound) and graph_user_id is not None:
            return MailboxUnavailable(_not_found_reason(error, graph_user_id))
        if isinstance(error, AccessDenied):
            return await self._access_denied(graph, error, graph_user_id)
        if error.status == 0 or error.status >= 500:
            return RateLimited(TRANSIENT_RETRY_AFTER, f"{error.status} {error.code}: {error.message}")
        return error

    async def _delta_round(
        self,
        graph: TenantGraph,
        graph_user_id: str,
        url: str,
        headers: dict[str, str],
        parse: Callable[[bytes], tuple[list[T], str | None, str | None]],
        *,
        resumed: bool,
        not_found: Callable[[GraphNotFound], Exception] | None = None,
    ) -> tuple[list[T], str, int]:
        """Every page of one delta round from `url`, in order, to its delta link: the items, the link and
        the requests made. A resumed round (from a stored link) answered 400 raises DeltaTokenRejected (a
        link Graph cannot read any more); `not_found` names what a 404 means, when not the mailbox's."""
        items: list[T] = []
        requests = 0
        while requests < MAX_PAGES:
            requests += 1
            try:
                body = await graph.request_bytes("GET", url, headers=headers)
            except GraphError as error:
                if resumed and error.status == 400:
                    raise DeltaTokenRejected(f"{error.status} {error.code}: {error.message}") from error
                if not_found is not None and isinstance(error, GraphNotFound):
                    raise not_found(error) from error
                raise await self._translated(graph, error, graph_user_id) from error
            page, next_link, delta_link = parse(body)
            items += page
            if delta_link:
                return items, delta_link, requests
            if not next_link:
                raise GraphError(200, "NoDeltaLink", "a delta page with neither a nextLink nor a deltaLink")
            url = next_link
        raise GraphError(200, "EndlessDelta", f"no delta link after {MAX_PAGES} pages")

    async def _access_denied(
        self, graph: TenantGraph, error: GraphError, graph_user_id: str | None
    ) -> Exception:
        """A 403: one directory read tells a tenant-wide refusal (the token has no roles: consent revoked,
        the app removed) from one that only concerns this mailbox (an Exchange application access policy)."""
        try:
            await graph.request_json("GET", "/users?$top=1&$select=id")
        except (AuthFailed, AccessDenied) as directory:
            return TenantAccessError(
                f"Graph refuses the tenant ({error.code}, and {directory.code} on the directory): the admin "
                "consent was revoked or the app was removed; an administrator must consent again"
            )
        except GraphError as other:
            return await self._translated(graph, other, None)
        if graph_user_id is None:
            return error  # the tenant is readable: a refusal of this one request
        return MailboxUnavailable(
            f"the app may not open this mailbox although it can read the directory ({error.code}: "
            f"{error.message}): an Exchange application access policy (or RBAC for Applications) leaves the "
            "user out, or the app lacks Calendars.ReadWrite; add the user to the policy's group or grant it"
        )


def _not_found_reason(error: GraphError, graph_user_id: str) -> str:
    code = error.code.lower()
    if code in NO_USER or ("user" in error.message.lower() and "invalid" in error.message.lower()):
        return (
            f"Graph knows no user {graph_user_id} ({error.code}): the account was deleted or replaced; "
            "match the staff member again"
        )
    if code in NO_MAILBOX or "mailbox" in error.message.lower() or "rest api" in error.message.lower():
        return (
            f"the user has no Exchange Online mailbox ({error.code}): it is unlicensed, inactive, "
            "soft-deleted or on-premises; assign an Exchange Online licence or unlink the staff member"
        )
    return (
        f"the mailbox answered 404 ({error.code}: {error.message}); check that the user still has a mailbox"
    )


class GraphCalendar(GraphPort):
    """`CalendarGateway` over Graph."""

    def __init__(self, clients: GraphClients, key_for: KeyFor, *, page_size: int = 200) -> None:
        super().__init__(clients, key_for)
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        self._page_size = page_size

    async def read_delta(
        self, tenant: Tenant, graph_user_id: str, delta_link: str | None, window: tuple[datetime, datetime]
    ) -> DeltaRead:
        """Every page of one delta round, in order, to its delta link."""
        graph = await self._graph(tenant)
        headers = {"Prefer": f"{UTC_TIMES}, odata.maxpagesize={self._page_size}, {IMMUTABLE_IDS}"}
        if delta_link is None:
            start, end = window
            url = (
                f"{user_path(graph_user_id)}/calendarView/delta"
                f"?startDateTime={_window_param(start, 'window start')}"
                f"&endDateTime={_window_param(end, 'window end')}"
            )
        else:
            url = delta_link
        items, new_delta_link, requests = await self._delta_round(
            graph, graph_user_id, url, headers, parse_delta_page, resumed=delta_link is not None
        )
        return DeltaRead(items, new_delta_link, requests)

    async def translate_ews_ids(
        self, tenant: Tenant, graph_user_id: str, ews_ids: Sequence[str]
    ) -> dict[str, str]:
        """EWS ids → the immutable REST ids that delta reads return (`restImmutableEntryId`), 1000 a request;
        ids the mailbox does not know are left out."""
        wanted = list(dict.fromkeys(i for i in ews_ids if i))
        if not wanted:
            return {}
        graph = await self._graph(tenant)
        found: dict[str, str] = {}
        for first in range(0, len(wanted), TRANSLATE_BATCH):
            body = {
                "inputIds": wanted[first : first + TRANSLATE_BATCH],
                "sourceIdType": "ewsId",
                "targetIdType": "restImmutableEntryId",
            }
            try:
                answer = await graph.request_json(
                    "POST", f"{user_path(graph_user_id)}/translateExchangeIds", body
                )
            except GraphError as error:
                raise await self._translated(graph, error, graph_user_id) from error
            for result in (answer or {}).get("value") or ():
                source, target = result.get("sourceId"), result.get("targetId")
                if source and target:
                    found[source] = target
        return found

    async def read_events(
        self, tenant: Tenant, graph_user_id: str, event_ids: Sequence[str]
    ) -> dict[str, OutlookEvent | None]:
        """Series masters by id, with their `recurrence` and `cancelledOccurrences` (what calendarView delta
        never reports; named in `$select`, as the v1.0 model has them, so whether Graph sends them by default
        does not matter). One is a `GET /events/{id}`. Several are read from the mailbox's list of masters
        (`GET /events?$filter=type eq 'seriesMaster'`: the list holds single instances and series masters,
        user-list-events.md), one request per page of `page_size` however many series it holds, for at most
        as many pages as masters wanted (a list never costs more requests than reading each); what is still
        unread then goes in `$batch`es of 20 (each item counted against throttling). None for a master the
        mailbox no longer has: absent from a list read to its end, or Graph's `ErrorItemNotFound`."""
        wanted = list(dict.fromkeys(event_ids))
        if len(wanted) <= 1:  # a `$batch` of one costs Graph a request more
            return {event_id: await self._read_event(tenant, graph_user_id, event_id) for event_id in wanted}
        graph = await self._graph(tenant)
        found, complete = await self._listed_masters(graph, graph_user_id, wanted)
        unread = [event_id for event_id in wanted if event_id not in found]
        if complete:
            return found | dict.fromkeys(unread)
        return found | await self._batched_events(tenant, graph, graph_user_id, unread)

    async def read_items(
        self, tenant: Tenant, graph_user_id: str, event_ids: Sequence[str]
    ) -> dict[str, OutlookEvent | None]:
        """Events by id, each a `GET /events/{id}` (several in `$batch`es of 20); None for Graph's
        `ErrorItemNotFound`."""
        wanted = list(dict.fromkeys(event_ids))
        if len(wanted) <= 1:
            return {event_id: await self._read_event(tenant, graph_user_id, event_id) for event_id in wanted}
        return await self._batched_events(tenant, await self._graph(tenant), graph_user_id, wanted)

    async def _listed_masters(
        self, graph: TenantGraph, graph_user_id: str, wanted: Sequence[str]
    ) -> tuple[dict[str, OutlookEvent | None], bool]:
        """The wanted masters found in the mailbox's list of series masters, and whether it was read whole
        (it stops once every wanted master is found, or after as many pages as masters wanted)."""
        condition = quote("type eq 'seriesMaster'", safe="")
        url: str | None = (
            f"{user_path(graph_user_id)}/events?$filter={condition}&$select={EVENT_PROPERTIES}"
            f"&$top={self._page_size}"
        )
        headers = {"Prefer": f"{UTC_TIMES}, {IMMUTABLE_IDS}"}
        remaining = set(wanted)
        found: dict[str, OutlookEvent | None] = {}
        pages = 0
        while url and remaining and pages < len(wanted):
            pages += 1
            try:
                page = await graph.request_json("GET", url, headers=headers)
            except GraphError as error:
                raise await self._translated(graph, error, graph_user_id) from error
            for raw in page.get("value") or ():
                if raw.get("id") in remaining:
                    remaining.discard(raw["id"])
                    found[raw["id"]] = parse_event(raw)
            url = page.get("@odata.nextLink")
        return found, url is None

    async def _batched_events(
        self, tenant: Tenant, graph: TenantGraph, graph_user_id: str, wanted: Sequence[str]
    ) -> dict[str, OutlookEvent | None]:
        """Events by id in `$batch`es of 20 (Graph hands Outlook four items of a batch at a time, the
        mailbox's concurrency); an item throttled or failed in the batch is asked again alone, so its
        failure is translated as any request's."""
        found: dict[str, OutlookEvent | None] = {}
        again: list[str] = []
        for first in range(0, len(wanted), BATCH_LIMIT):
            chunk = wanted[first : first + BATCH_LIMIT]
            requests = [
                {
                    "id": str(n),
                    "method": "GET",
                    "url": _event_url(graph_user_id, event_id),
                    "headers": {"Prefer": f"{UTC_TIMES}, {IMMUTABLE_IDS}"},
                }
                for n, event_id in enumerate(chunk)
            ]
            try:
                answer = await graph.request_json("POST", "/$batch", {"requests": requests})
            except GraphError as error:
                raise await self._translated(graph, error, graph_user_id) from error
            answered = {int(item["id"]): item for item in (answer or {}).get("responses") or ()}
            for n, event_id in enumerate(chunk):
                item = answered.get(n) or {}
                status, body = int(item.get("status") or 0), item.get("body") or {}
                if status == 200:
                    found[event_id] = parse_event(body)
                elif status == 404 and _error_code(body) == "erroritemnotfound":
                    found[event_id] = None
                else:
                    again.append(event_id)
        for event_id in again:
            found[event_id] = await self._read_event(tenant, graph_user_id, event_id)
        return found

    async def _read_event(self, tenant: Tenant, graph_user_id: str, event_id: str) -> OutlookEvent | None:
        graph = await self._graph(tenant)
        headers = {"Prefer": f"{UTC_TIMES}, {IMMUTABLE_IDS}"}
        try:
            body = await graph.request_bytes("GET", _event_url(graph_user_id, event_id), headers=headers)
        except GraphError as error:
            if isinstance(error, GraphNotFound) and error.code.lower() == "erroritemnotfound":
                return None
            raise await self._translated(graph, error, graph_user_id) from error
        return parse_event(json.loads(body))

    async def connector_events(self, tenant: Tenant, graph_user_id: str) -> dict[str, str]:
        """Events carrying the connector's extended property: Graph id → host appointment id."""
        graph = await self._graph(tenant)
        property_id = APPOINTMENT_PROPERTY_ID.replace("'", "''")
        condition = f"singleValueExtendedProperties/Any(ep: ep/id eq '{property_id}' and ep/value ne null)"
        expand = f"singleValueExtendedProperties($filter=id eq '{property_id}')"
        url: str | None = (
            f"{user_path(graph_user_id)}/events?$filter={quote(condition, safe='')}&$select=id"
            f"&$expand={quote(expand, safe='')}&$top={self._page_size}"
        )
        headers = {"Prefer": IMMUTABLE_IDS}
        found: dict[str, str] = {}
        pages = 0
        while url and pages < MAX_PAGES:
            pages += 1
            try:
                page = await graph.request_json("GET", url, headers=headers)
            except GraphError as error:
                raise await self._translated(graph, error, graph_user_id) from error
            for event in page.get("value") or ():
                value = _property_value(event)
                if value is not None:
                    found[event["id"]] = value
            url = page.get("@odata.nextLink")
        return found

    async def stamped(self, tenant: Tenant, graph_user_id: str, event_ids: Sequence[str]) -> dict[str, str]:
        """`GET /events/{id}` with only the connector's property expanded, for each event (the mailbox's
        gate keeps them at four at a time); a 404 is an event gone since the read that named it."""
        graph = await self._graph(tenant)
        property_id = APPOINTMENT_PROPERTY_ID.replace("'", "''")
        expand = quote(f"singleValueExtendedProperties($filter=id eq '{property_id}')", safe="")
        headers = {"Prefer": IMMUTABLE_IDS}

        async def one(event_id: str) -> tuple[str, str | None]:
            url = f"{user_path(graph_user_id)}/events/{quote(event_id, safe='')}?$select=id&$expand={expand}"
            try:
                return event_id, _property_value(await graph.request_json("GET", url, headers=headers) or {})
            except GraphNotFound as error:
                if error.code.lower() in NO_USER | NO_MAILBOX:
                    raise await self._translated(graph, error, graph_user_id) from error
                return event_id, None
            except GraphError as error:
                raise await self._translated(graph, error, graph_user_id) from error

        found = await asyncio.gather(*(one(i) for i in dict.fromkeys(event_ids)))
        return {event_id: value for event_id, value in found if value is not None}

    async def working_hours(self, tenant: Tenant, graph_user_id: str) -> WorkingHours | None:
        """`mailboxSettings`' working hours. A 403 or 404 only concerns this mailbox here (the delta read
        beside it proved the tenant readable), so it is `MailboxUnavailable` without a directory probe."""
        graph = await self._graph(tenant)
        url = f"{user_path(graph_user_id)}/mailboxSettings?$select=workingHours,timeZone"
        try:
            answer = await graph.request_json("GET", url)
        except (AccessDenied, GraphNotFound) as error:
            reason = f"mailboxSettings: {error.status} {error.code}: {error.message}"
            raise MailboxUnavailable(reason) from error
        except GraphError as error:
            raise await self._translated(graph, error, graph_user_id) from error
        return working_hours_of(answer or {})


def _event_url(graph_user_id: str, event_id: str) -> str:
    return f"{user_path(graph_user_id)}/events/{quote(event_id, safe='')}?$select={EVENT_PROPERTIES}"


def _error_code(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code") or "").lower() if isinstance(error, dict) else ""


def working_hours_of(settings: dict[str, Any]) -> WorkingHours | None:
    """Graph's `workingHours` (its zone, else the mailbox's); None when absent or unreadable."""
    raw = settings.get("workingHours")
    if not isinstance(raw, dict):
        return None
    zone = (raw.get("timeZone") or {}).get("name") if isinstance(raw.get("timeZone"), dict) else None
    zone = zone or settings.get("timeZone")
    try:
        start, end = _wall_clock(raw["startTime"]), _wall_clock(raw["endTime"])
    except (KeyError, TypeError, ValueError):
        return None
    days = tuple(str(d).lower() for d in raw.get("daysOfWeek") or ())
    return WorkingHours(days=days, start=start, end=end, zone=str(zone or "UTC"))


def _wall_clock(value: Any) -> time:
    """Graph's `08:00:00.0000000` (seven fractional digits, more than `time.fromisoformat` takes)."""
    text = str(value)
    whole, _, fraction = text.partition(".")
    return time.fromisoformat(whole).replace(microsecond=int((fraction + "000000")[:6]))


def _property_value(event: dict[str, Any]) -> str | None:
    wanted = APPOINTMENT_PROPERTY_ID.lower()
    for prop in event.get("singleValueExtendedProperties") or ():
        if str(prop.get("id", "")).lower() == wanted and prop.get("value") is not None:
            return str(prop["value"])
    return None


class GraphSubscriptions(GraphPort):
    """`SubscriptionGateway` over Graph: `created,updated,deleted` on users' events, immutable ids."""

    def __init__(
        self, clients: GraphClients, key_for: KeyFor, *, notification_url: str, lifecycle_url: str
    ) -> None:
        super().__init__(clients, key_for)
        self._notification_url = notification_url
        self._lifecycle_url = lifecycle_url

    async def create(
        self, tenant: Tenant, graph_user_id: str, client_state: str, expires_at: datetime
    ) -> GraphSubscription:
        graph = await self._graph(tenant)
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": self._notification_url,
            "lifecycleNotificationUrl": self._lifecycle_url,
            "resource": f"users/{graph_user_id}/events",
            "expirationDateTime": _utc(expires_at, "expires_at"),
            "clientState": client_state,
        }
        try:
            answer = await graph.request_json(
                "POST", "/subscriptions", body, headers={"Prefer": IMMUTABLE_IDS}
            )
        except GraphError as error:
            if error.status == 409:  # ours already, left by a run that died before indexing it: adopt it
                adopted = await self._adopt(tenant, graph_user_id, expires_at)
                if adopted is not None:
                    return adopted
            raise await self._translated(graph, error, graph_user_id) from error
        return _subscription(answer)

    async def _adopt(
        self, tenant: Tenant, graph_user_id: str, expires_at: datetime
    ) -> GraphSubscription | None:
        """Graph refuses a duplicate (same app, resource, change types and URL): one a run left before
        indexing it. Its clientState is the same HMAC, under the key version current then (a re-signing
        deletes the old subscription before creating, so it never meets its own): renew it, answer it as
        adopted (that version is not known here: the next renewal re-signs it)."""
        wanted = f"users/{graph_user_id}/events".lower()
        for existing in await self.list(tenant):
            if existing.resource.strip("/").lower() == wanted:
                try:
                    renewed = await self.renew(tenant, existing.id, expires_at)
                except SubscriptionGone:
                    return None
                return GraphSubscription(existing.id, renewed, existing.resource, adopted=True)
        return None

    async def renew(self, tenant: Tenant, subscription_id: str, expires_at: datetime) -> datetime:
        graph = await self._graph(tenant)
        body = {"expirationDateTime": _utc(expires_at, "expires_at")}
        try:
            answer = await graph.request_json(
                "PATCH", f"/subscriptions/{quote(subscription_id, safe='')}", body
            )
        except GraphNotFound as error:
            raise SubscriptionGone(subscription_id) from error
        except GraphError as error:
            raise await self._translated(graph, error, None) from error
        return parse_graph_datetime(answer["expirationDateTime"]) if answer else expires_at

    async def delete(self, tenant: Tenant, subscription_id: str) -> None:
        graph = await self._graph(tenant)
        try:
            await graph.request_json("DELETE", f"/subscriptions/{quote(subscription_id, safe='')}")
        except GraphNotFound:
            return
        except GraphError as error:
            raise await self._translated(graph, error, None) from error

    async def list(self, tenant: Tenant) -> builtins.list[GraphSubscription]:
        """Every subscription this app holds in the tenant (Graph answers only the caller's)."""
        graph = await self._graph(tenant)
        found: builtins.list[GraphSubscription] = []
        url: str | None = "/subscriptions"
        pages = 0
        while url and pages < MAX_PAGES:
            pages += 1
            try:
                page = await graph.request_json("GET", url)
            except GraphError as error:
                raise await self._translated(graph, error, None) from error
            found += [_subscription(raw) for raw in page.get("value") or ()]
            url = page.get("@odata.nextLink")
        return found


def _subscription(raw: dict[str, Any]) -> GraphSubscription:
    return GraphSubscription(
        id=str(raw["id"]),
        expires_at=parse_graph_datetime(str(raw["expirationDateTime"])),
        resource=str(raw.get("resource") or ""),
    )
