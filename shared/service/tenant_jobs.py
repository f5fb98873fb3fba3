"""Per-tenant queued work: discovery, rematch, disconnect, and the schedules' per-tenant fan-out."""

from __future__ import annotations

from typing import Protocol

from shared.domain.tenants import Tenant, TenantState
from shared.service.context import (
    UsesClock,
    UsesConfig,
    UsesDeliveryRequests,
    UsesDirectory,
    UsesFeed,
    UsesJobs,
    UsesMeetings,
    UsesTenants,
    UsesUsers,
)
from shared.service.errors import TenantAccessError
from shared.service.jobs import TenantJob
from shared.service.retries import StillContended, update_optimistically
from shared.service.schedules import (
    NightlyPorts,
    RenewalPorts,
    nightly_tenant,
    reconcile_tenant,
    renew_tenant_subscriptions,
)
from shared.service.stalled_writes import StalledWritePorts, requeue_stalled_writes
from shared.service.sync import MigrationPorts, ResyncPorts, maybe_finish_migration
from shared.service.tenant_disconnect import DisconnectPorts, finish_disconnect
from shared.service.tenants import mark_consent_revoked
from shared.service.users import match_all


class DiscoveryPorts(
    UsesTenants,
    UsesUsers,
    UsesFeed,
    UsesJobs,
    UsesDirectory,
    UsesMeetings,
    UsesClock,
    UsesConfig,
    UsesDeliveryRequests,
    Protocol,
):
    """Discovery and rematch: every staff member matched (mailbox and Teams status), then the tenant
    moved on to migrating."""


async def disconnect(services: DisconnectPorts, job: TenantJob) -> None:
    await finish_disconnect(services, job.tenant_id)


async def discover(services: DiscoveryPorts, job: TenantJob) -> None:
    try:
        await match_all(services, job.tenant_id)
    except TenantAccessError as error:
        await mark_consent_revoked(services, job.tenant_id, error.reason)
        return
    await _advance_after_discovery(services, job.tenant_id)


class RenewalJobPorts(RenewalPorts, StalledWritePorts, Protocol):
    """The renewal timer's tenant job: the subscriptions, then the host writes left unfinished."""


async def renew_subscriptions(services: RenewalJobPorts, job: TenantJob) -> None:
    await renew_tenant_subscriptions(services, job.tenant_id)
    await requeue_stalled_writes(services, job.tenant_id)


async def nightly(services: NightlyPorts, job: TenantJob) -> None:
    await nightly_tenant(services, job.tenant_id)


async def reconcile(services: ResyncPorts, job: TenantJob) -> None:
    await reconcile_tenant(services, job.tenant_id)


async def _advance_after_discovery(services: MigrationPorts, tenant_id: str) -> None:

    def migrating(tenant: Tenant | None) -> Tenant | None:
        if tenant is None or tenant.state is not TenantState.CONNECTING:
            return None
        return tenant.with_state(TenantState.MIGRATING, services.clock.now())

    try:
        done = await update_optimistically(
            lambda: services.tenants.get(tenant_id), migrating, services.tenants.save, attempts=3
        )
    except StillContended:
        return
    if done.saved is not None:
        # Users matched at once (PUT staff) may have finished migrating before discovery did.
        await maybe_finish_migration(services, tenant_id)
