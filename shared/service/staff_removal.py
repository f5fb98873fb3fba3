"""Deleting a staff member so that nothing of them is left: the row at once, the rest by a queued job.

`DELETE .../staff/{staff_id}` queues `RemoveStaff` first, then deletes the user's row and availability
state. From then on nothing syncs the user: a sync job or a Graph notification for them finds no row and
does nothing (`sync._run_once`), so a notification arriving meanwhile is dropped. The job then removes, under
the user's sync lease (so that a run already under way finishes first), their Graph subscription (a 404
from Graph counts as removed) and its index row, any other subscription the index lists for them, their
item statuses and availability state; letting go of the lease deletes its row. Every step is idempotent:
the queue retries a job that failed midway, and a request that failed before its job was queued is
retried by the host (the row is still there).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final, Protocol

from shared.observability import bound, get_logger
from shared.service.context import (
    UsesBusy,
    UsesClock,
    UsesItemStatuses,
    UsesJobs,
    UsesLeases,
    UsesMessages,
    UsesTasks,
    UsesTenants,
    UsesUsers,
)
from shared.service.errors import TenantAccessError
from shared.service.jobs import RemoveStaff
from shared.service.leasing import run_leased
from shared.service.subscriptions import UnsubscribePorts
from shared.service.sync import LEASE_TTL
from shared.service.task_statuses import tasks_scope

log = get_logger("users")

MAX_WAITS: Final = 5  # lease check-backs before the clean-up runs anyway (a held lease lapses in LEASE_TTL)


class StaffCleanupPorts(
    UnsubscribePorts,
    UsesTenants,
    UsesUsers,
    UsesItemStatuses,
    UsesBusy,
    UsesLeases,
    UsesJobs,
    UsesClock,
    UsesTasks,
    UsesMessages,
    Protocol,
):
    """What a deleted staff member leaves: Graph's subscription, its index row, statuses, busy, the stored
    state of the tasks given to them, lease, and their messages in the monitor."""


async def run_remove_staff(services: StaffCleanupPorts, job: RemoveStaff) -> None:
    """The queued clean-up after a staff member's row was deleted. Does nothing when the row is there
    again (the staff member was added back: what they have now is theirs)."""
    with bound(tenant=job.tenant_id, user=job.staff_id):
        if await services.users.get(job.tenant_id, job.staff_id) is not None:
            log.info("staff member is back; their clean-up is skipped")
            return

        async def clean_up(number: int) -> None:
            if number == 0:
                await remove_leftovers(services, job)

        key = f"{job.tenant_id}/{job.staff_id}"
        if await run_leased(services.leases, services.clock, key, LEASE_TTL, clean_up):
            return
        if job.check_back >= MAX_WAITS:
            # The lease outlived its lifetime this many times over: clean up anyway; the lease lapses.
            await remove_leftovers(services, job)
            return
        delay = int(LEASE_TTL.total_seconds()) + 5
        await services.jobs.enqueue([replace(job, check_back=job.check_back + 1, delay_seconds=delay)])
        log.info("a sync run holds the lease; the clean-up is checked in %d s", delay)


async def remove_leftovers(services: StaffCleanupPorts, job: RemoveStaff) -> None:
    """Everything of the staff member but their row and lease (idempotent)."""
    indexed = [
        r.subscription_id
        for r in await services.subscription_index.for_tenant(job.tenant_id)
        if r.staff_id == job.staff_id
    ]
    named = {job.subscription_id} if job.subscription_id else set()
    subscriptions = sorted(named | set(indexed))
    tenant = await services.tenants.get(job.tenant_id)
    for subscription_id in subscriptions:
        if tenant is not None and not tenant.state.gone:
            try:
                await services.subscriptions.delete(tenant, subscription_id)  # a 404 is success
            except TenantAccessError:
                log.warning("consent is gone; Graph drops the app's subscriptions itself")
        await services.subscription_index.delete(subscription_id)
    await services.item_statuses.delete_user(job.tenant_id, job.staff_id)
    await services.item_statuses.delete_user(job.tenant_id, tasks_scope(job.staff_id))  # their To Do list's
    await services.busy.delete_user(job.tenant_id, job.staff_id)
    for task in await services.tasks.naming(job.tenant_id, job.staff_id):  # what is in To Do stays
        await services.tasks.delete(job.tenant_id, task.task_id)
    await services.messages.delete_staff(job.tenant_id, job.staff_id)
    log.info("staff member's leftovers removed (%d subscriptions)", len(subscriptions))
