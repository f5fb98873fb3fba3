"""The change feed's retention: changes are kept the tenant's `feed_retention_days` (a setting, 30 by
default), pruned by the tenant's nightly job, and a host whose cursor is older than what is kept is told so
(410) instead of silently missing changes. The pull feed's answers say the retention (`retention_days`),
and a change of it is announced on the feed (`tenant.feed_retention_changed`), so a host knows how long it
may stay away."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from shared.domain.tenants import Tenant
from shared.observability import get_logger
from shared.service.context import UsesClock, UsesFeed, UsesTenants
from shared.service.errors import ChangesPruned, Gone
from shared.service.tenants import get_tenant

log = get_logger("feed")


class FeedReadPorts(UsesTenants, UsesFeed, Protocol):
    """The pull feed: the tenant (its retention), its feed."""


class PrunePorts(UsesFeed, UsesClock, Protocol):
    """Pruning a tenant's feed: what is older than the retention goes."""


@dataclass(frozen=True, slots=True)
class FeedPage:
    changes: list[tuple[int, str]]  # sequence number and stored JSON text, passed on as stored
    cursor: int
    retention_days: int


async def read_changes(services: FeedReadPorts, tenant_id: str, after: int, limit: int) -> FeedPage:
    """The changes after the cursor; `Gone` (410, naming `cursor`) when the ones right after it were
    pruned (older than the retention) or deleted with a disconnect."""
    tenant = await get_tenant(services, tenant_id)
    days = tenant.settings.feed_retention_days
    try:
        changes = await services.feed.read_json(tenant.tenant_id, after, limit)
    except ChangesPruned as pruned:
        raise Gone(
            "cursor",
            f"the changes after cursor {after} are no longer kept (the feed keeps {days} days, and a "
            f"disconnect deletes it): changes were missed. Resync: read again what you keep from the "
            f"connector (the staff list, your appointments), then go on from cursor {pruned.oldest}",
        ) from None
    return FeedPage(changes, changes[-1][0] if changes else after, days)


async def prune_feed(services: PrunePorts, tenant: Tenant) -> int:
    """Delete the tenant's changes older than its retention; answers how many went."""
    before = services.clock.now() - timedelta(days=tenant.settings.feed_retention_days)
    pruned = await services.feed.prune(tenant.tenant_id, before)
    if pruned:
        log.info("feed pruned: %d changes older than %s", pruned, before.date().isoformat())
    return pruned
