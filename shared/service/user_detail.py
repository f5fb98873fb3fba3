"""A user's own page (COINS' MS Graph tab): the subscription and its expiry, whether a delta link is held and
since when (never the link), the last sync and last error per direction; and its buttons: refresh (a full
resync, `sync.request_user_resync`), delete the subscription, rematch this user."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final, Protocol

from shared.domain.users import UserRecord
from shared.observability import bound, get_logger
from shared.service.context import UsesClock, UsesLeases, UsesMessages, UsesUsers
from shared.service.errors import Conflict, NotFound
from shared.service.leasing import run_leased
from shared.service.monitor import Direction, MessageQuery, MessageStatus, MonitoredMessage
from shared.service.subscriptions import UnsubscribePorts, remove_user_subscription
from shared.service.sync import LEASE_TTL
from shared.service.tenants import TenantPorts, get_tenant
from shared.service.users import MatchPorts, put_staff

log = get_logger("users")

LAST_OF: Final = 1


class UserDetailPorts(TenantPorts, UsesUsers, UsesMessages, UsesClock, Protocol):
    """The page: the tenant, the user's row, the monitor's last messages."""


class SubscriptionRemovalPorts(TenantPorts, UsesUsers, UnsubscribePorts, UsesLeases, UsesClock, Protocol):
    """Deleting a user's subscription, under the user's sync lease."""


@dataclass(frozen=True, slots=True)
class DirectionSummary:
    last: MonitoredMessage | None  # the newest message within the retention
    last_failed: MonitoredMessage | None  # the newest failed one


@dataclass(frozen=True, slots=True)
class UserDetail:
    user: UserRecord
    push: DirectionSummary
    pull: DirectionSummary


async def user_detail(services: UserDetailPorts, tenant_id: str, staff_id: str) -> UserDetail:
    tenant = await get_tenant(services, tenant_id)
    user = await services.users.get(tenant_id, staff_id)
    if user is None:
        raise NotFound("staff member", staff_id, "staff_id")
    now = services.clock.now()
    since = now - timedelta(days=tenant.settings.monitor_retention_days)

    async def newest(direction: Direction, status: MessageStatus | None) -> MonitoredMessage | None:
        query = MessageQuery(since, staff_id, direction, status, limit=LAST_OF, until=now)
        found = (await services.messages.list(tenant_id, query)).messages
        return found[0] if found else None

    async def summary(direction: Direction) -> DirectionSummary:
        last = await newest(direction, None)
        if last is None or last.status is MessageStatus.FAILED:
            return DirectionSummary(last, last)
        return DirectionSummary(last, await newest(direction, MessageStatus.FAILED))

    return UserDetail(user, await summary(Direction.PUSH), await summary(Direction.PULL))


async def delete_user_subscription(
    services: SubscriptionRemovalPorts, tenant_id: str, staff_id: str
) -> UserRecord:
    """Delete the user's Graph subscription (Graph, the index, the row): Outlook's changes stop arriving
    until the next renewal round or a refresh makes a new one. Under the user's sync lease, so no run saves
    the old id back; a run under way is a 409."""
    tenant = await get_tenant(services, tenant_id)
    done: list[UserRecord] = []

    async def remove(_: int) -> None:
        user = await services.users.get(tenant_id, staff_id)
        if user is None:
            raise NotFound("staff member", staff_id, "staff_id")
        if user.subscription_id is None:
            done.append(user)
            return
        cleared = await remove_user_subscription(services, tenant, user)
        done.append(await services.users.save(replace(cleared, updated_at=services.clock.now())))

    with bound(tenant=tenant_id, user=staff_id):
        if not await run_leased(
            services.leases, services.clock, f"{tenant_id}/{staff_id}", LEASE_TTL, remove
        ):
            raise Conflict("staff_id", "a sync run of this user is under way; retry shortly")
    log.info("subscription of %s deleted by an admin", staff_id)
    return done[-1]


async def rematch_user(services: MatchPorts, tenant_id: str, staff_id: str) -> UserRecord:
    """Match the staff member again as stored (a moved or renamed mailbox): the staff PUT's matching."""
    tenant = await get_tenant(services, tenant_id)
    if not tenant.state.connected:
        raise Conflict(
            "tenant_id", f"the tenant is {tenant.state.value}; it must be connected to match users"
        )
    user = await services.users.get(tenant_id, staff_id)
    if user is None:
        raise NotFound("staff member", staff_id, "staff_id")
    return await put_staff(services, tenant_id, user.staff)
