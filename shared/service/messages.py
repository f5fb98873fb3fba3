"""The message monitor's use cases: the listing (host API and console), one message, a retry, pruning.

What a message is and where it is recorded: `shared/service/monitor.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from shared.observability import get_logger
from shared.service import jobs, limits
from shared.service.context import UsesClock, UsesDeadLetters, UsesJobs, UsesMessages
from shared.service.errors import Conflict, InvalidInput, NotFound
from shared.service.jobs import TenantJob
from shared.service.monitor import (
    MESSAGE_ID,
    Direction,
    MessagePage,
    MessageQuery,
    MessageStatus,
    MonitoredMessage,
    PushKind,
    retention_cutoff,
)
from shared.service.sync import ResyncPorts, request_user_resync
from shared.service.tenants import TenantPorts, get_tenant

log = get_logger("monitor")

DEFAULT_SINCE: Final = timedelta(days=1)  # a listing without `since` reads the last day
MAX_PAGE: Final = 500
DEFAULT_LIMIT: Final = 100


class MessagePorts(TenantPorts, UsesMessages, UsesClock, Protocol):
    """Reading the monitor: the tenant, its messages."""


class RetryPorts(MessagePorts, ResyncPorts, UsesJobs, UsesDeadLetters, Protocol):
    """Retrying a failed message: the job that does its work again."""


class PrunePorts(TenantPorts, UsesMessages, UsesClock, UsesJobs, Protocol):
    """Pruning the monitor by each tenant's retention."""


def parse_message_query(params: Mapping[str, str], now: datetime) -> MessageQuery:
    """The listing's query parameters; an unknown value or a bad cursor is an InvalidInput naming it."""

    def choice(name: str, allowed: type[Direction] | type[MessageStatus]) -> str | None:
        value = params.get(name) or None
        if value is not None and value not in {m.value for m in allowed}:
            raise InvalidInput(name, f"must be one of: {', '.join(m.value for m in allowed)}")
        return value

    direction = choice("direction", Direction)
    status = choice("status", MessageStatus)
    staff_id = params.get("staff_id") or None
    if staff_id is not None and len(staff_id) > 256:
        raise InvalidInput("staff_id", "must be at most 256 characters")
    since = now - DEFAULT_SINCE
    if raw := params.get("since"):  # nothing older than the longest retention is kept: read no further
        since = max(_instant("since", raw), now - timedelta(days=limits.MONITOR_RETENTION_DAYS[1] + 1))
    cursor = params.get("cursor") or None
    if cursor is not None and not MESSAGE_ID.fullmatch(cursor):
        raise InvalidInput("cursor", "is not a cursor this listing gave")
    limit = DEFAULT_LIMIT
    if raw := params.get("limit"):
        try:
            limit = int(raw)
        except ValueError:
            raise InvalidInput("limit", "must be an integer") from None
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")
    return MessageQuery(
        since=since,
        staff_id=staff_id,
        direction=Direction(direction) if direction else None,
        status=MessageStatus(status) if status else None,
        cursor=cursor,
        limit=limit,
        until=now,
    )


def _instant(name: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise InvalidInput(name, "must be an ISO 8601 date-time such as 2026-12-01T08:00:00Z") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not 1900 <= value.year <= 2999:
        raise InvalidInput(name, "must be between the years 1900 and 2999")
    return value.astimezone(UTC)


async def list_messages(services: MessagePorts, tenant_id: str, query: MessageQuery) -> MessagePage:
    await get_tenant(services, tenant_id)
    return await services.messages.list(tenant_id, query)


async def get_message(services: MessagePorts, tenant_id: str, message_id: str) -> MonitoredMessage:
    if not MESSAGE_ID.fullmatch(message_id):
        raise InvalidInput("monitor_id", "is not the id of a monitor message (19 digits and hex digits)")
    await get_tenant(services, tenant_id)
    found = await services.messages.get(tenant_id, message_id)
    if found is None:
        raise NotFound("message", message_id, "monitor_id")
    return found


async def retry_message(services: RetryPorts, tenant_id: str, message_id: str) -> str:
    """Do a failed message's work again: an appointment's or a task's write job, the user's full resync, or
    the delivery of its changes (its dead letter's whole range, the letter removed). Answers what was
    queued."""
    found = await get_message(services, tenant_id, message_id)
    if found.status is not MessageStatus.FAILED:
        raise Conflict("monitor_id", f"the message is {found.status.value}: only a failed one is retried")
    if found.direction is Direction.PUSH:
        if found.kind == PushKind.TASK:
            await services.jobs.enqueue([jobs.WriteTask(tenant_id, found.key)])
            return "write"
        if found.kind != PushKind.APPOINTMENT:
            raise Conflict(
                "monitor_id",
                f"a failed {found.kind} is final: the host sends it again under a new id",
            )
        await services.jobs.enqueue([jobs.write_appointment(tenant_id, found.key, "retried")])
        return "write"
    if found.direction is Direction.PULL:
        if found.staff_id is None:
            raise Conflict("monitor_id", "the message names no staff member")
        await request_user_resync(services, tenant_id, found.staff_id)
        return "resync"
    first = int(found.detail.get("first_sequence", 0))
    last = int(found.detail.get("last_sequence", 0))
    if first < 1 or last < first:
        raise Conflict("monitor_id", "the message names no range of the feed")
    for letter in await services.dead_letters.list(tenant_id):
        if letter.first_sequence == first:  # the post's dead letter: the whole range it kept
            await services.dead_letters.delete(tenant_id, letter.first_sequence)
            last = max(last, letter.last_sequence)
    await services.jobs.enqueue([jobs.deliver(tenant_id, first, last)])
    return "delivery"


async def fan_out_pruning(services: PrunePorts) -> int:
    """The pruning timer: a job per tenant that still has a row (stopped tenants' messages age out too)."""
    queued = [jobs.prune_messages(t.tenant_id) for t in await services.tenants.list() if not t.state.gone]
    await services.jobs.enqueue(queued)
    return len(queued)


async def prune_messages(services: PrunePorts, job: TenantJob) -> None:
    """Delete the tenant's messages older than its `monitor_retention_days`."""
    tenant = await services.tenants.get(job.tenant_id)
    if tenant is None:
        return
    days = tenant.settings.monitor_retention_days
    pruned = await services.messages.prune(tenant.tenant_id, retention_cutoff(services.clock.now(), days))
    log.info("monitor: %d messages older than %d days pruned for tenant %s", pruned, days, tenant.tenant_id)
