"""Free/busy through Graph's `getSchedule` (`ScheduleGateway`): the availability API's fallback for staff
the synced state cannot answer for.

The request is built by the SDK (`users/{id}/calendar/getSchedule`) and sent through its adapter and
middleware like every other call; the answer's raw body is parsed here (the SDK's models cost
milliseconds per item). Graph's limits split a question: at most `MAX_ADDRESSES` addresses and
`MAX_DAYS` days per request, so 150 addresses over 70 days are four requests. Times come back in UTC
(`Prefer: outlook.timezone="UTC"`); items are not clipped to the window, so an item reported by two
requests of one span is kept once.

A single address Graph cannot resolve (or without a mailbox) fails alone, inside a 200: that address's
`Schedule.error`. A refused token is `TenantAccessError`, throttling and 5xx `RateLimited`, a missing or
closed mailbox asked through `MailboxUnavailable` (as the calendar gateway translates them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.users.item.calendar.get_schedule.get_schedule_post_request_body import (
    GetSchedulePostRequestBody,
)

from shared.adapters.graph.calendar import UTC_TIMES, GraphPort, working_hours_of
from shared.adapters.graph.client import ERROR_MAP, MAX_SDK_RETRIES
from shared.adapters.graph.errors import GraphError, from_sdk
from shared.adapters.graph.events import parse_graph_datetime
from shared.domain.tenants import Tenant
from shared.service.records import Schedule, ScheduleItem

MAX_ADDRESSES: Final = 100  # Graph: "The allowed size = 100" (ErrorMailboxDataArrayTooBig)
MAX_DAYS: Final = 62  # Graph: "The allowed limit = 62 days" (ErrorTimeIntervalTooBig)
VIEW_INTERVAL: Final = 1440  # minutes; the connector reads the items, not the availability view


def spans(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into pieces of at most `MAX_DAYS` days, in order."""
    pieces: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end:
        stop = min(end, cursor + timedelta(days=MAX_DAYS))
        pieces.append((cursor, stop))
        cursor = stop
    return pieces or [(start, end)]


def batches(addresses: Sequence[str]) -> list[list[str]]:
    """The addresses, once each, in groups of at most `MAX_ADDRESSES`."""
    unique = list(dict.fromkeys(addresses))
    return [unique[i : i + MAX_ADDRESSES] for i in range(0, len(unique), MAX_ADDRESSES)]


def _graph_time(value: datetime) -> DateTimeTimeZone:
    if value.tzinfo is None:
        raise ValueError("getSchedule's window must be timezone-aware")
    utc = value.astimezone(UTC)
    return DateTimeTimeZone(date_time=utc.strftime("%Y-%m-%dT%H:%M:%S"), time_zone="UTC")


class GraphSchedules(GraphPort):
    """`ScheduleGateway` over Graph."""

    async def schedules(
        self, tenant: Tenant, via_user_id: str, addresses: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, Schedule]:
        found: dict[str, _Collected] = {address: _Collected() for address in addresses}
        for span_start, span_end in spans(start, end):
            for batch in batches(addresses):
                answer = await self._ask(tenant, via_user_id, batch, span_start, span_end)
                for address, info in zip(batch, _by_address(answer, batch), strict=True):
                    found[address].add(info)
        return {address: collected.schedule(address) for address, collected in found.items()}

    async def _ask(
        self, tenant: Tenant, via_user_id: str, batch: list[str], start: datetime, end: datetime
    ) -> Any:
        graph = await self._graph(tenant)
        body = GetSchedulePostRequestBody(
            schedules=batch,
            start_time=_graph_time(start),
            end_time=_graph_time(end),
            availability_view_interval=VIEW_INTERVAL,
        )
        builder = graph.sdk.users.by_user_id(via_user_id).calendar.get_schedule
        info = builder.to_post_request_information(body)
        info.headers.add("Prefer", UTC_TIMES)
        info.add_request_options([RetryHandlerOption(max_retries=MAX_SDK_RETRIES)])
        try:
            try:
                raw = await graph.adapter.send_primitive_async(info, "bytes", ERROR_MAP)
            except Exception as error:
                raise from_sdk(error) from error
        except GraphError as error:
            raise await self._translated(graph, error, via_user_id) from error
        return json.loads(raw) if raw else {}


def _by_address(answer: Any, batch: list[str]) -> list[dict[str, Any]]:
    """Graph's `scheduleInformation` per address of the batch (in order; matched by `scheduleId` when
    Graph reorders them); an address it left out is an error of its own."""
    value = answer.get("value") if isinstance(answer, dict) else None
    infos = [v for v in value or () if isinstance(v, dict)]
    by_id = {str(v.get("scheduleId", "")).lower(): v for v in infos}
    missing = {"error": {"message": "getSchedule gave no answer for this address"}}
    return [by_id.get(address.lower(), missing) for address in batch]


class _Collected:
    """One address's answers across the requests of a span."""

    def __init__(self) -> None:
        self.items: dict[tuple[datetime, datetime, str], None] = {}
        self.hours: dict[str, Any] | None = None
        self.error: str | None = None

    def add(self, info: dict[str, Any]) -> None:
        error = info.get("error")
        if isinstance(error, dict):
            code = error.get("responseCode")
            message = str(error.get("message") or "getSchedule refused this address")
            self.error = f"{message} ({code})" if code else message
            return
        for item in info.get("scheduleItems") or ():
            try:
                start = parse_graph_datetime(str(item["start"]["dateTime"]))
                end = parse_graph_datetime(str(item["end"]["dateTime"]))
            except (KeyError, TypeError, ValueError):
                continue  # an item without readable times blocks nothing the connector can place
            self.items[(start, end, str(item.get("status") or "unknown"))] = None
        if isinstance(info.get("workingHours"), dict):
            self.hours = info["workingHours"]

    def schedule(self, address: str) -> Schedule:
        if self.error is not None:
            return Schedule(address, error=self.error)
        items = tuple(ScheduleItem(s, e, show_as) for s, e, show_as in sorted(self.items))
        hours = working_hours_of({"workingHours": self.hours}) if self.hours is not None else None
        return Schedule(address, items, hours)
