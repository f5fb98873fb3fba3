"""Per-tenant queued work: discovery, rematch, disconnect, and the schedules' per-tenant fan-out."""

from __future__ import annotations

from shared.domain.tenants import Tenant, TenantState
from shared.observability import get_logger
from shared.service.context import Services
from shared.service.ports import Job, TenantAccessError
from shared.service.retries import StillContended, update_optimistically
from shared.service.schedules import nightly_tenant, renew_tenant_subscriptions
from shared.service.sync import maybe_finish_migration
from shared.service.tenant_disconnect import finish_disconnect
from shared.service.tenants import mark_consent_revoked
from shared.service.users import match_all

log = get_logger("tenant_jobs")


async def run_tenant_job(services: Services, job: Job) -> None:
    if job.kind == "disconnect":
        await finish_disconnect(services, job.tenant_id)
        return
    if job.kind in ("discover", "rematch"):
        try:
            await match_all(services, job.tenant_id)
        except TenantAccessError as error:
            await mark_consent_revoked(services, job.tenant_id, error.reason)
            return
        await _advance_after_discovery(services, job.tenant_id)
        return
    if job.kind == "renew_subscriptions":
        await renew_tenant_subscriptions(services, job.tenant_id)
        return
    if job.kind == "nightly":
        await nightly_tenant(services, job.tenant_id)
        return
    log.error("unknown tenant job kind %s; dropped", job.kind)


async def _advance_after_discovery(services: Services, tenant_id: str) -> None:

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
