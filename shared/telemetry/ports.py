"""Ports measured at their edge: the services call them as ever, these count and time what passes.

- the change feed: changes published by tenant and type, a span per append;
- the host's webhook: a client span per post, its time, delivered or failed, and after each post the
  tenant's backlog: the feed's head (one read) less the last change delivered (the range the
  `X-Connector-Delivery` header names: through its last when the post was taken, before its first when
  not). One place observes it, whichever worker posts, so it is the tenant's, not a worker's;
- the dead letters: each range written;
- Graph subscriptions: renewals by outcome, and how many of a tenant's expire within a day whenever
  they are listed (the renewal job lists them every round);
- the message monitor: each user's sync run by mode and outcome, from the one `pull` message the sync's
  executor (`shared/service/sync.py`, `_run_once`) records as the run ends, with its status (counted
  whether or not the monitor keeps it: `MESSAGE_MONITOR=off` records nothing but is measured alike).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.domain.tenants import Tenant
from shared.service.context import Services
from shared.service.errors import SubscriptionGone
from shared.service.monitor import Direction, MessagePage, MessageQuery, MessageStatus, MonitoredMessage
from shared.service.ports.clock import Clock
from shared.service.ports.feed import ChangeFeed, DeadLetterRepository, HostWebhook
from shared.service.ports.graph import SubscriptionGateway
from shared.service.ports.monitor import MessageLog
from shared.service.records import Change, DeadLetter, GraphSubscription
from shared.telemetry.instruments import Instruments

DELIVERY_HEADER: Final = "X-Connector-Delivery"  # as shared/service/deliveries.py sends it
EXPIRING_WITHIN: Final = timedelta(days=1)


def instrumented(services: Services) -> Services:
    from shared import telemetry

    instruments = telemetry.current()
    if instruments is None:
        return services
    return dataclasses.replace(
        services,
        feed=MeasuredFeed(services.feed, instruments),
        webhook=MeasuredWebhook(services.webhook, instruments, services.feed),
        dead_letters=MeasuredDeadLetters(services.dead_letters, instruments),
        subscriptions=MeasuredSubscriptions(services.subscriptions, instruments, services.clock),
        messages=MeasuredMessages(services.messages, instruments),
    )


class MeasuredFeed:
    def __init__(self, inner: ChangeFeed, instruments: Instruments) -> None:
        self._inner = inner
        self._instruments = instruments

    async def append(
        self, tenant_id: str, changes: Sequence[Change], *, key: str | None = None
    ) -> list[Change]:
        with self._instruments.tracer.start_as_current_span(
            "feed append", attributes={"connector.tenant": tenant_id, "connector.changes": len(changes)}
        ):
            appended = await self._inner.append(tenant_id, changes, key=key)
        for change_type, count in Counter(c.type for c in appended).items():
            self._instruments.changes_published.add(count, {"tenant": tenant_id, "type": change_type})
        return appended

    async def read(self, tenant_id: str, after: int, limit: int) -> list[Change]:
        return await self._inner.read(tenant_id, after, limit)

    async def read_json(self, tenant_id: str, after: int, limit: int) -> list[tuple[int, str]]:
        return await self._inner.read_json(tenant_id, after, limit)

    async def head(self, tenant_id: str) -> int:
        return await self._inner.head(tenant_id)

    async def prune(self, tenant_id: str, before: datetime) -> int:
        return await self._inner.prune(tenant_id, before)

    async def clear(self, tenant_id: str) -> None:
        await self._inner.clear(tenant_id)

    async def delete_tenant(self, tenant_id: str) -> None:
        await self._inner.delete_tenant(tenant_id)


def _delivered_range(headers: dict[str, str]) -> tuple[str, int, int] | None:
    """(tenant, first, last) from `{tenant}:{first}-{last}`."""
    tenant, _, span = headers.get(DELIVERY_HEADER, "").rpartition(":")
    first, _, last = span.partition("-")
    if not tenant or not first.isdigit() or not last.isdigit():
        return None
    return tenant, int(first), int(last)


class MeasuredWebhook:
    def __init__(self, inner: HostWebhook, instruments: Instruments, feed: ChangeFeed) -> None:
        self._inner = inner
        self._instruments = instruments
        self._feed = feed

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        delivered = _delivered_range(headers)
        attributes: dict[str, str | int] = {"http.request.method": "POST", "connector.bytes": len(body)}
        if delivered is not None:
            attributes["connector.tenant"] = delivered[0]
            attributes["connector.changes"] = delivered[2] - delivered[1] + 1
            attributes["connector.delivery"] = headers[DELIVERY_HEADER]
        started, outcome = time.perf_counter(), "failed"
        try:
            with self._instruments.tracer.start_as_current_span(
                "POST host webhook", kind=SpanKind.CLIENT, attributes=attributes
            ) as span:
                try:
                    status = await self._inner.post(url, body, headers)
                    outcome = "delivered"
                except Exception as error:
                    span.set_status(Status(StatusCode.ERROR, str(error)))
                    raise
                finally:
                    self._instruments.deliveries.add(1, {"outcome": outcome})
                    self._instruments.delivery_duration.record((time.perf_counter() - started) * 1000)
        finally:
            if delivered is not None:
                tenant, first, last = delivered
                await self._observe_backlog(tenant, last if outcome == "delivered" else first - 1)
        return status

    async def _observe_backlog(self, tenant_id: str, delivered_through: int) -> None:
        try:
            head = await self._feed.head(tenant_id)
        except Exception:
            return
        self._instruments.feed_backlog.set(max(0, head - delivered_through), {"tenant": tenant_id})


class MeasuredDeadLetters:
    def __init__(self, inner: DeadLetterRepository, instruments: Instruments) -> None:
        self._inner = inner
        self._instruments = instruments

    async def add(self, letter: DeadLetter) -> None:
        await self._inner.add(letter)
        self._instruments.dead_letters.add(1, {"tenant": letter.tenant_id})

    async def list(self, tenant_id: str) -> list[DeadLetter]:
        return await self._inner.list(tenant_id)

    async def delete(self, tenant_id: str, first_sequence: int) -> None:
        await self._inner.delete(tenant_id, first_sequence)

    async def delete_tenant(self, tenant_id: str) -> None:
        await self._inner.delete_tenant(tenant_id)


class MeasuredSubscriptions:
    def __init__(self, inner: SubscriptionGateway, instruments: Instruments, clock: Clock) -> None:
        self._inner = inner
        self._instruments = instruments
        self._clock = clock

    async def create(
        self, tenant: Tenant, graph_user_id: str, client_state: str, expires_at: datetime
    ) -> GraphSubscription:
        return await self._inner.create(tenant, graph_user_id, client_state, expires_at)

    async def renew(self, tenant: Tenant, subscription_id: str, expires_at: datetime) -> datetime:
        outcome = "failed"
        try:
            renewed = await self._inner.renew(tenant, subscription_id, expires_at)
            outcome = "renewed"
            return renewed
        except SubscriptionGone:
            outcome = "gone"  # Graph no longer holds it: the caller makes a new one
            raise
        finally:
            self._instruments.subscription_renewals.add(1, {"outcome": outcome})

    async def delete(self, tenant: Tenant, subscription_id: str) -> None:
        await self._inner.delete(tenant, subscription_id)

    async def list(self, tenant: Tenant) -> list[GraphSubscription]:
        found = await self._inner.list(tenant)
        horizon = self._clock.now() + EXPIRING_WITHIN
        expiring = sum(1 for s in found if s.expires_at <= horizon)
        self._instruments.subscriptions_expiring.set(expiring, {"tenant": tenant.tenant_id})
        return found


def run_outcome(message: MonitoredMessage) -> str:
    """A sync run's outcome from its `pull` message: `synced`; `throttled` (queued again); `held` (the
    mass-deletion guard: the run read and published, the deletions wait, the status is failed); `error`."""
    if message.status is MessageStatus.OK:
        return "synced"
    if message.status is MessageStatus.RETRYING:
        return "throttled"
    return "held" if "read" in message.detail else "error"


class MeasuredMessages:
    def __init__(self, inner: MessageLog, instruments: Instruments) -> None:
        self._inner = inner
        self._instruments = instruments

    async def record(self, messages: Sequence[MonitoredMessage]) -> None:
        for message in messages:
            if message.direction is Direction.PULL:
                self._instruments.sync_runs.add(1, {"mode": message.kind, "outcome": run_outcome(message)})
        await self._inner.record(messages)

    async def list(self, tenant_id: str, query: MessageQuery) -> MessagePage:
        return await self._inner.list(tenant_id, query)

    async def get(self, tenant_id: str, message_id: str) -> MonitoredMessage | None:
        return await self._inner.get(tenant_id, message_id)

    async def prune(self, tenant_id: str, before: datetime) -> int:
        return await self._inner.prune(tenant_id, before)

    async def delete_staff(self, tenant_id: str, staff_id: str) -> None:
        await self._inner.delete_staff(tenant_id, staff_id)

    async def delete_tenant(self, tenant_id: str) -> None:
        await self._inner.delete_tenant(tenant_id)
