"""The two schedules: subscription renewal (every few hours) and the nightly catch-up.

Each timer only fans out one job per connected tenant; each tenant job fans out one job per user, so a
big tenant or a failing user never holds up the rest, and no invocation runs long.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final, Protocol

from shared.domain.sync_window import reconciliation_night
from shared.domain.tenants import Tenant, UserScope
from shared.domain.users import MatchStatus, SyncState, UserRecord
from shared.observability import bound, get_logger
from shared.service import jobs
from shared.service.context import (
    UsesAppointments,
    UsesJobs,
    UsesKeys,
    UsesSubscriptionIndex,
    UsesTasks,
    UsesUsers,
)
from shared.service.errors import RateLimited, ServiceError, TenantAccessError
from shared.service.feed_retention import PrunePorts, prune_feed
from shared.service.jobs import Job, SyncMode, TaskMode
from shared.service.keys import NOTIFICATION_KEY
from shared.service.publishing import publish
from shared.service.records import Change, SubscriptionRecord, Watched
from shared.service.retries import StillContended, update_optimistically
from shared.service.subscriptions import (
    NOTIFIED_GRANULARITY,
    RENEW_BEFORE,
    SILENT_AFTER,
    UnsubscribePorts,
    signing_key,
)
from shared.service.sync import ResyncPorts, request_tenant_resync
from shared.service.tenants import TenantEventPorts, TenantPorts, mark_consent_revoked

log = get_logger("schedules")

CREDENTIAL_REMINDER: Final = timedelta(days=7)  # repeat the expiry warning weekly until rotated
# A subscription heard from (or checked) less recently than this is checked by the nightly catch-up: less
# than a day, so each night checks what the night before marked, and the renewal timer (a day) never does.
NIGHTLY_SILENT_AFTER: Final = timedelta(hours=12)


class FanOutPorts(TenantPorts, UsesJobs, Protocol):
    """The timers: the tenants, and the queue their jobs go on."""


KEY_ROTATED: Final = "key_rotated"  # a job's reason: its subscription is re-signed with the current key


class RenewalPorts(TenantEventPorts, UnsubscribePorts, UsesUsers, UsesJobs, UsesKeys, Protocol):
    """A tenant's renewal: its users' subscriptions as Graph and the index see them, the notification
    key's current version, renewal jobs queued."""


class NightlyPorts(
    TenantEventPorts,
    PrunePorts,
    UsesUsers,
    UsesJobs,
    UsesAppointments,
    UsesTasks,
    UsesSubscriptionIndex,
    Protocol,
):
    """A tenant's nightly run: the credential's expiry, a rematch, every user's catch-up (a full
    reconciliation on the user's night; the subscriptions' index says which are silent), unsettled writes,
    the feed's retention."""


async def fan_out(services: FanOutPorts, job_for: Callable[[str], Job]) -> int:
    """The timers: one tenant job (`jobs.renew_tenant`, `jobs.nightly`) per connected tenant."""
    queued = [job_for(t.tenant_id) for t in await services.tenants.list() if t.state.connected]
    await services.jobs.enqueue(queued)
    log.info("%d tenant jobs queued", len(queued))
    return len(queued)


async def renew_tenant_subscriptions(services: RenewalPorts, tenant_id: str) -> int:
    """Confirm every user's subscriptions (calendar and To Do list) with Graph (one listing of the
    tenant's subscriptions, paged, instead of a request per user): renew what expires within a day,
    recreate what Graph no longer holds (lost without a lifecycle notification, or expired) and catch up
    through delta, catch up on what went silent (a `silent` job, which recreates the subscription when the
    catch-up finds changes no notification announced), recreate what a rotated key signed (its clientState
    names a version that is no longer the current one: `signing_key`). Without the listing (throttled),
    the stored expiries decide this round."""
    tenant = await services.tenants.get(tenant_id)
    if tenant is None or not tenant.state.connected:
        return 0
    records = await services.subscription_index.for_tenant(tenant_id)
    index = {r.staff_id: r for r in records if r.watches is Watched.EVENTS}
    task_index = {r.staff_id: r for r in records if r.watches is Watched.TASKS}
    users = await services.users.list_all(tenant_id)
    try:
        held: dict[str, datetime] | None = {
            s.id: s.expires_at for s in await services.subscriptions.list(tenant)
        }
    except TenantAccessError as error:
        await mark_consent_revoked(services, tenant_id, error.reason)
        return 0
    except RateLimited as error:
        log.warning("could not list the tenant's subscriptions (%s); renewing by the stored expiries", error)
        held = None
    now = services.clock.now()
    resign = await _signed_with_another_key(services, records)
    queued: list[Job] = []
    with bound(tenant=tenant_id):
        for user in users:
            if user.match is not MatchStatus.MATCHED or user.sync_state in (
                SyncState.PENDING,
                SyncState.MIGRATING,
            ):
                continue
            record = index.get(user.staff_id)
            expires = user.subscription_expires_at
            if held is not None and user.subscription_id is not None:
                expires = held.get(user.subscription_id)  # Graph's word; None: Graph no longer holds it
                if expires is None:
                    log.warning("subscription %s is gone from Graph; recreating it", user.subscription_id)
            if (
                user.subscription_id is None
                or record is None
                or expires is None
                or expires - now < RENEW_BEFORE
            ):
                # The job renews the user's subscription as it then stands; Graph's 404 makes it a new one.
                queued.append(jobs.sync_user(tenant_id, user.staff_id, jobs.RENEWAL_REASON, kind="renew"))
            elif record.subscription_id in resign:
                log.info(
                    "subscription %s signed with a key version no longer current", record.subscription_id
                )
                queued.append(jobs.sync_user(tenant_id, user.staff_id, "key_rotated", kind="resubscribe"))
            elif _silent(record, now, SILENT_AFTER):
                log.info(
                    "subscription %s silent since %s; catching up",
                    record.subscription_id,
                    record.last_notified_at,
                )
                queued.append(jobs.sync_user(tenant_id, user.staff_id, "silent", kind="silent"))
                await services.subscription_index.put(replace(record, last_notified_at=now))
            task_record = task_index.get(user.staff_id)
            if task_record is not None and task_record.subscription_id in resign:
                queued.append(
                    jobs.sync_tasks(tenant_id, user.staff_id, "key_rotated", kind=TaskMode.RESUBSCRIBE)
                )
            else:
                queued += await _task_renewal(services, user, task_record, held, now)
        await services.jobs.enqueue(queued)
    return len(queued)


async def _task_renewal(
    services: RenewalPorts,
    user: UserRecord,
    record: SubscriptionRecord | None,
    held: dict[str, datetime] | None,
    now: datetime,
) -> list[Job]:
    """The To Do list's subscription, as the calendar's: renewed within a day of expiry or when Graph no
    longer holds it (Graph sends a todoTask subscription no `subscriptionRemoved`, so the listing is how a
    lost one is found), caught up when silent for a day. Only for a list that was read once."""
    state = user.task_sync
    if not user.staff.switches.tasks_from_outlook or state.migrating:
        return []
    expires = state.subscription_expires_at
    if held is not None and state.subscription_id is not None:
        expires = held.get(state.subscription_id)
        if expires is None:
            log.warning("task subscription %s is gone from Graph; recreating it", state.subscription_id)
    if state.subscription_id is None or record is None or expires is None or expires - now < RENEW_BEFORE:
        return [jobs.sync_tasks(user.tenant_id, user.staff_id, jobs.RENEWAL_REASON, kind=TaskMode.RENEW)]
    if _silent(record, now, SILENT_AFTER):
        await services.subscription_index.put(replace(record, last_notified_at=now))
        return [jobs.sync_tasks(user.tenant_id, user.staff_id, "silent")]
    return []


async def _signed_with_another_key(services: RenewalPorts, records: list[SubscriptionRecord]) -> set[str]:
    """The subscriptions whose clientState names a notification key version that is no longer the
    current one (a rotation, or two workers racing the first key), read afresh from Key Vault when the
    cached one differs. Those with none recorded (made before versions were) move at their renewal."""
    versions = {r.key_version for r in records if r.key_version}
    if not versions or versions == {(await services.keys.signing(NOTIFICATION_KEY)).version}:
        return set()
    current, _ = await signing_key(services.keys, None)
    return {r.subscription_id for r in records if r.key_version and r.key_version != current.version}


def _silent(record: SubscriptionRecord | None, now: datetime, after: timedelta) -> bool:
    """Nothing heard from the subscription (nor checked) for `after` (or ever)."""
    return record is None or record.last_notified_at is None or now - record.last_notified_at > after


async def nightly_tenant(services: NightlyPorts, tenant_id: str) -> int:
    """Warn about an expiring credential, prune the feed, pick up directory changes, catch every user up
    (calendar and To Do list): through the stored delta links, or read whole on the user's reconciliation
    night (one in `ConnectorConfig.reconciliation_days`, spread over the users)."""
    tenant = await services.tenants.get(tenant_id)
    if tenant is None or not tenant.state.connected:
        return 0
    with bound(tenant=tenant_id):
        await warn_credential_expiry(services, tenant_id)
        await prune_feed(services, tenant)
        if tenant.settings.user_scope is UserScope.ALL_USERS:
            await services.jobs.enqueue([jobs.rematch(tenant_id)])  # new mailboxes, left ones
        users = [u for u in await services.users.list_all(tenant_id) if u.match is MatchStatus.MATCHED]
        queued: list[Job] = await _catch_ups(services, tenant_id, users)
        unsettled = await services.appointments.unsettled(tenant_id)  # a write job lost to the poison queue
        queued += [jobs.write_appointment(tenant_id, a, "nightly") for a in unsettled]
        tasks = await services.tasks.unsettled(tenant_id)  # the host's tasks not in To Do yet, or failed
        queued += [jobs.WriteTask(tenant_id, t.task_id) for t in tasks]
        await services.jobs.enqueue(queued)
        log.info(
            "nightly run queued for %d users, %d appointments and %d tasks",
            len(users),
            len(unsettled),
            len(tasks),
        )
        return len(queued)


async def _catch_ups(services: NightlyPorts, tenant_id: str, users: list[UserRecord]) -> list[Job]:
    """Each user's calendar and To Do list caught up through its delta link (what a notification missed),
    or read whole on the user's reconciliation night; a calendar whose subscription said nothing since
    the last nightly run is caught up as `silent` (the subscription recreated when the catch-up finds
    changes). Each subscription caught up is marked checked (as the renewal timer marks the ones it
    checks, and as a notification marks its own), so that timer does not check it again before the next
    night."""
    now, every = services.clock.now(), services.config.reconciliation_days
    index = {(r.staff_id, r.watches): r for r in await services.subscription_index.for_tenant(tenant_id)}
    queued: list[Job] = []
    for user in users:
        whole = reconciliation_night(tenant_id, user.staff_id, now, every)
        events = index.get((user.staff_id, Watched.EVENTS))
        silent = _silent(events, now, NIGHTLY_SILENT_AFTER)
        if user.sync_state is SyncState.PENDING:
            queued.append(jobs.migrate_user(tenant_id, user.staff_id))
        else:
            mode = SyncMode.RESYNC if whole else SyncMode.SILENT if silent else SyncMode.SYNC
            queued.append(jobs.sync_user(tenant_id, user.staff_id, jobs.NIGHTLY_REASON, kind=mode))
        checked = [events]
        if user.staff.switches.tasks_from_outlook:
            kind = TaskMode.RESYNC if whole else TaskMode.SYNC
            queued.append(jobs.sync_tasks(tenant_id, user.staff_id, jobs.NIGHTLY_REASON, kind=kind))
            checked.append(index.get((user.staff_id, Watched.TASKS)))
        for record in checked:
            if record is not None and _silent(record, now, NOTIFIED_GRANULARITY):
                await services.subscription_index.put(replace(record, last_notified_at=now))
    return queued


async def reconcile_tenant(services: ResyncPorts, tenant_id: str) -> int:
    """Every matched user read whole tonight rather than on their own night (a setting changed what a
    full read announces, such as `recurring_events`); a tenant no longer connected is left alone."""
    try:
        return await request_tenant_resync(services, tenant_id)
    except ServiceError as error:
        log.info("no reconciliation of the tenant: %s", error)
        return 0


async def warn_credential_expiry(services: TenantEventPorts, tenant_id: str) -> bool:
    """A customer app's secret that lapses within 30 days: a change on the feed, then weekly."""

    def warned(tenant: Tenant | None) -> Tenant | None:
        if tenant is None:
            return None
        now = services.clock.now()
        expires = tenant.credential_expires_at()
        sent = tenant.credential_warning_sent_at
        if expires is None or not tenant.credential_expiring(now):
            return None
        if sent is not None and now - sent < CREDENTIAL_REMINDER:
            return None
        return replace(tenant, credential_warning_sent_at=now, updated_at=now)

    try:
        done = await update_optimistically(
            lambda: services.tenants.get(tenant_id), warned, services.tenants.save, attempts=3
        )
    except StillContended:
        return False
    if done.saved is None:
        return False
    now, expires = done.saved.updated_at, done.saved.credential_expires_at()
    assert expires is not None
    data = {"expires_at": expires.isoformat().replace("+00:00", "Z"), "expired": expires <= now}
    await publish(services, tenant_id, [Change("tenant.credential_expiring", tenant_id, data, now)])
    log.warning("customer app secret expires %s", data["expires_at"])
    return True
