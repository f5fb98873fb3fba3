"""Disconnecting a tenant: marked `disconnecting`, then purged by a queued job.

Every step is idempotent and a repeated `DELETE` re-queues the purge. The purge frees the directory's
claim before the row says `disconnected`, and it keeps the change feed (a reconnect numbers on after the
cursor a host kept). A reconnect purges the rows under the key once more (`purge_rows`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from shared.domain.tenants import Tenant, TenantState, secret_name
from shared.observability import bound, get_logger
from shared.service import jobs
from shared.service.context import (
    UsesAppointments,
    UsesBusy,
    UsesClock,
    UsesConsentStates,
    UsesDeadLetters,
    UsesItemStatuses,
    UsesJobs,
    UsesLeases,
    UsesMail,
    UsesMailContent,
    UsesSecrets,
    UsesTasks,
    UsesUsers,
)
from shared.service.publishing import publish
from shared.service.records import Change
from shared.service.subscriptions import UnsubscribePorts, remove_tenant_subscriptions
from shared.service.tenants import TenantEventPorts, TenantPorts, save_tenant_change

log = get_logger("tenants")


class BeginDisconnectPorts(TenantPorts, UsesJobs, UsesClock, Protocol):
    """Marking the tenant disconnecting and queueing its purge."""


class PurgePorts(
    UsesUsers,
    UsesConsentStates,
    UsesItemStatuses,
    UsesLeases,
    UsesDeadLetters,
    UsesAppointments,
    UsesBusy,
    UsesMail,
    UsesMailContent,
    UsesTasks,
    Protocol,
):
    """Every table that keeps rows under the tenant's key, but the tenants' and the feed's."""


class DisconnectPorts(PurgePorts, TenantEventPorts, UnsubscribePorts, UsesSecrets, Protocol):
    """The purge job: the rows, Graph's subscriptions, the customer's secret, and the tenant's last change."""


async def begin_disconnect(services: BeginDisconnectPorts, tenant_id: str) -> Tenant:
    """Mark the tenant disconnecting and queue the clean-up. Idempotent: calling again re-queues it."""

    def disconnecting(tenant: Tenant) -> Tenant | None:
        if tenant.state in (TenantState.DISCONNECTED, TenantState.DISCONNECTING):
            return None
        return tenant.with_state(TenantState.DISCONNECTING, services.clock.now())

    tenant, _ = await save_tenant_change(services, tenant_id, disconnecting)
    with bound(tenant=tenant.tenant_id):
        if tenant.state is TenantState.DISCONNECTED:
            return tenant
        await services.jobs.enqueue([jobs.disconnect(tenant.tenant_id)])
        log.info("disconnect queued")
        return tenant


async def finish_disconnect(services: DisconnectPorts, tenant_id: str) -> None:
    """Purge the tenant: every user row and consent state, its subscriptions and secret, then free its
    directory for a reconnect; safe to repeat after a crash. The feed stays, so that a reconnect numbers on
    after the cursor a host kept."""
    tenant = await services.tenants.get(tenant_id)
    if tenant is None or tenant.state is not TenantState.DISCONNECTING:
        return
    with bound(tenant=tenant_id):
        sharing = [
            t.tenant_id
            for t in await services.tenants.list()
            if t.directory_id == tenant.directory_id and t.tenant_id != tenant_id and not t.state.gone
        ]
        if sharing:
            # Two keys over one directory (stored before directories were claimed): Graph's subscriptions
            # in the directory and its customer secret serve the other tenant too; only our rows go.
            log.warning("directory shared with tenant %s: its subscriptions and secret are left", sharing[0])
            removed = 0
            for record in await services.subscription_index.for_tenant(tenant_id):
                await services.subscription_index.delete(record.subscription_id)
        else:
            removed = await remove_tenant_subscriptions(services, tenant)
        await purge_rows(services, tenant_id)
        if not sharing:
            await services.secrets.delete(secret_name(tenant.directory_id))  # soft: Key Vault keeps it
        await publish(
            services, tenant_id, [Change("tenant.disconnected", tenant_id, {}, services.clock.now())]
        )
        # Freed before the row says disconnected, so a crash in between leaves a job that runs again (a
        # directory connected meanwhile under another key counts as sharing then), never a stuck claim.
        await services.tenants.release_directory(tenant)
        await services.tenants.save(
            replace(tenant.with_state(TenantState.DISCONNECTED, services.clock.now()), customer_app=None)
        )
        log.info("tenant disconnected and purged (%d subscriptions deleted)", removed)


async def purge_rows(services: PurgePorts, tenant_id: str) -> None:
    """Every row the tenant's connection made under its key, but the feed (idempotent)."""
    await services.item_statuses.delete_tenant(tenant_id)
    await services.busy.delete_tenant(tenant_id)
    await services.leases.delete_prefix(f"{tenant_id}/")
    await services.dead_letters.delete_tenant(tenant_id)
    await services.appointments.delete_tenant(tenant_id)  # what was written to calendars stays
    await services.users.delete_tenant(tenant_id)
    await services.consent_states.delete_tenant(tenant_id)
    await services.mail_content.delete_tenant(tenant_id)  # queued mail's content; sent mail has none
    await services.mail.delete_tenant(tenant_id)
    await services.tasks.delete_tenant(tenant_id)  # what was written to To Do stays
