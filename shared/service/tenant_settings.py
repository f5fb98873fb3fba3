"""A tenant's settings changed by the host API or the console (a patch: absent fields keep their values)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from shared.domain.tenants import Tenant, TenantSettings
from shared.domain.users import MatchStatus
from shared.service import jobs
from shared.service.commands import parse_settings
from shared.service.context import UsesClock, UsesDirectory, UsesJobs, UsesUsers
from shared.service.errors import Conflict, InvalidInput
from shared.service.publishing import PublishPorts, publish
from shared.service.records import Change
from shared.service.teams_meetings import organiser_id
from shared.service.tenants import TenantPorts, get_tenant, save_tenant_change


class SettingsPorts(TenantPorts, PublishPorts, UsesClock, UsesDirectory, UsesJobs, UsesUsers, Protocol):
    """The tenant's row; the directory that checks a Teams organiser; the rematch that refreshes every
    staff member's Teams status when the Teams method or organiser changed; the feed that tells the host
    a method change leaves the meetings already made as they were, and a new retention of the feed; the
    resync a change of `recurring_events` needs."""


async def update_settings(services: SettingsPorts, tenant_id: str, patch: Mapping[str, Any]) -> Tenant:
    """Apply a settings patch (absent fields keep their values), to the fresh row if a worker saved it
    meanwhile."""
    before = await get_tenant(services, tenant_id)
    await _check_organiser(services, before, parse_settings(patch, before.settings, prefix="settings"))

    def patched(tenant: Tenant) -> Tenant:
        if tenant.state.gone:
            raise Conflict("tenant_id", f"the tenant is {tenant.state.value}")
        settings = parse_settings(patch, tenant.settings, prefix="settings")
        return replace(tenant, settings=settings, updated_at=services.clock.now())

    tenant, _ = await save_tenant_change(services, tenant_id, patched)
    if tenant.state.connected and _teams(tenant.settings) != _teams(before.settings):
        await services.jobs.enqueue([jobs.rematch(tenant_id)])  # every staff member's Teams status again
    if tenant.state.connected and tenant.settings.recurring_events is not before.settings.recurring_events:
        # Series arrive in the other form on each user's next full read: every user read whole, queued now.
        await services.jobs.enqueue([jobs.reconcile(tenant_id)])
    if tenant.state.connected and tenant.settings.todo_list_name != before.settings.todo_list_name:
        await services.jobs.enqueue([jobs.CatchUpTasks(tenant_id, None)])  # tasks move to the list now named
        await services.jobs.enqueue(  # and each list's run follows it at once (not at the next run)
            [
                jobs.sync_tasks(tenant_id, u.staff_id, "list_renamed")
                for u in await services.users.list_all(tenant_id)
                if u.match is MatchStatus.MATCHED
                and u.staff.switches.tasks_from_outlook
                and not u.staff.todo_list_name
            ]
        )
    previous, method = before.settings.teams_method, tenant.settings.teams_method
    if method is not previous:  # a meeting keeps the method it was made with (its join URL keeps working)
        data = {"previous_method": previous.value, "method": method.value, "existing_meetings": "kept"}
        await publish(
            services, tenant_id, [Change("tenant.teams_method_changed", tenant_id, data, tenant.updated_at)]
        )
    days, previous_days = tenant.settings.feed_retention_days, before.settings.feed_retention_days
    if days != previous_days:  # the host must read the feed at least this often from now on
        kept = {"previous_days": previous_days, "days": days}
        await publish(
            services, tenant_id, [Change("tenant.feed_retention_changed", tenant_id, kept, tenant.updated_at)]
        )
    return tenant


def _teams(settings: TenantSettings) -> tuple[object, ...]:
    return settings.teams_method, (settings.teams_organizer or "").casefold()


async def _check_organiser(services: SettingsPorts, tenant: Tenant, settings: TenantSettings) -> None:
    """A Teams organiser named by the patch must be a user of the tenant's directory."""
    name = settings.teams_organizer
    if not name or (name.casefold() == (tenant.settings.teams_organizer or "").casefold()):
        return
    if not tenant.state.connected:
        raise Conflict(
            "settings.teams_organizer",
            f"the tenant is {tenant.state.value}; it must be connected to check the organiser",
        )
    if await organiser_id(services.directory, replace(tenant, settings=settings)) is None:
        raise InvalidInput(
            "settings.teams_organizer", f"{name} is not a user with a mailbox in the organisation's directory"
        )
