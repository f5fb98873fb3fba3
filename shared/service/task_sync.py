"""Outlook to host for To Do: one user's task list, read through tasks delta, planned, applied.

The calendar's executor (`sync.py`) in small, on its own lease (`{tenant}/{staff}/tasks`), state
(`UserRecord.task_sync`) and subscription, so a list that cannot be read or made never touches calendar
sync. A run:
1. takes the user's list from `todo_lists` (the one the host's tasks go to: the staff member's
   `todo_list_name` or the tenant's, found by name or made, its id on the user row);
2. ensures the `todoTask` subscription on it (4,230 minutes at most, Graph's limit for tasks), with a
   clientState of its own (`signing.client_state(..., "tasks")`);
3. reads the list through tasks delta from the stored delta link, or whole (the first read, a resync, a
   new list, a link Graph no longer takes), and lets the planner (`task_planner.py`) reconcile that
   against the stored statuses (the item statuses, in the user's task scope `tasks_scope(staff_id)`);
4. stores the statuses with the changes they announce (`task.created`, `task.updated`, `task.deleted`;
   the host's own tasks changed in To Do go to the tenant's conflict policy, `task_conflicts.py`:
   `task.changed_in_outlook`, and under host wins a write putting them back), publishes and clears
   them (`publishing.announce`; a migration's are published by the calendar's run with its own), then
   stores the delta link. The same order as the calendar's, with the
   same guarantee: a crash anywhere reads again from the old link; the statuses already stored make the
   replay silent, and the announcement stored with them is published first, once.
A user whose `tasks_from_outlook` switch is off is not read at all: the delta link and statuses stay as
they were; turning it on queues a complete read, which announces exactly what differs from them once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from shared.domain.outlook_tasks import RemovalReason
from shared.domain.planner import ItemStatus
from shared.domain.signing import client_state
from shared.domain.task_planner import TaskPlan, plan_tasks
from shared.domain.tenants import Tenant
from shared.domain.timezones import iana_zone
from shared.domain.users import MatchStatus, SyncState, TaskSync, UserRecord
from shared.observability import bound, get_logger
from shared.service import jobs, monitor
from shared.service.context import (
    UsesBusy,
    UsesCalendar,
    UsesItemStatuses,
    UsesJobs,
    UsesLeases,
    UsesMessages,
    UsesTaskChanges,
    UsesTodo,
    UsesUsers,
)
from shared.service.errors import (
    Conflict,
    DeltaTokenRejected,
    MailboxUnavailable,
    RateLimited,
    SubscriptionGone,
    TenantAccessError,
)
from shared.service.follow_ups import superseded, unmarked_since
from shared.service.jobs import NIGHTLY_REASON, RENEWAL_REASON, SyncTasks, TaskMode
from shared.service.keys import NOTIFICATION_KEY
from shared.service.leasing import Rider, check_back, holds, run_leased
from shared.service.monitor import MessageStatus, MonitoredMessage, Pulled
from shared.service.publishing import Stored, announce, not_yet_announced, publish_pending, store
from shared.service.records import Announcement, Change, SubscriptionRecord, TaskDeltaRead, Watched
from shared.service.retries import THROTTLED, starting_from, update_optimistically
from shared.service.subscriptions import SubscribePorts, renewal_due, signed_with, signing_key
from shared.service.task_conflicts import TaskConflictPorts, settle_edits
from shared.service.task_statuses import tasks_scope
from shared.service.tenants import TenantEventPorts, mark_consent_revoked
from shared.service.todo_lists import TodoListUnavailable, ensure_list, with_list_of

log = get_logger("task_sync")

LEASE_TTL: Final = timedelta(minutes=2)
# Graph keeps a todoTask subscription at most 4,230 minutes (contract §5.2); the renewal timer renews what
# expires within a day, so 48 hours leaves it a day's margin as for events.
ZONE_READ_WITHIN: Final = timedelta(hours=12)  # the nightly reconciliation's zone: that night's hours
TASK_LIFETIME: Final = timedelta(minutes=4_200)  # todoTask: at most 4,230 minutes (graph-contract §5.2)
SUBSCRIBING: Final = frozenset({TaskMode.RESYNC, TaskMode.RENEW, TaskMode.RESUBSCRIBE})


class TaskSyncPorts(
    TenantEventPorts,
    TaskConflictPorts,
    SubscribePorts,
    UsesTodo,
    UsesUsers,
    UsesJobs,
    UsesCalendar,
    UsesItemStatuses,
    UsesLeases,
    UsesTaskChanges,
    UsesMessages,
    UsesBusy,
    Protocol,
):
    """A user's task sync run, under the list's lease (the busy store: the working hours' zone)."""


@dataclass(frozen=True, slots=True)
class TaskRun:
    """What a run did, for the migration's `user.migrated`, the log and the message monitor."""

    tasks: int
    linked: int
    changes: int
    pulled: Pulled
    # A migration's run leaves the row's list and task state to the calendar's final save (`laid_over`), so
    # the list costs no user-row save of its own; None once saved.
    unsaved: UserRecord | None = None
    # A migration's run leaves its announcement, stored with the statuses, to the calendar's run, which
    # publishes it with its own (`publishing.announce_along`); None: published, or nothing to announce.
    stored: Stored | None = None

    def laid_over(self, row: UserRecord) -> UserRecord:
        """`row` with this run's list and task state, unless a later task run saved its own meanwhile."""
        if self.unsaved is None:
            return row
        ours = self.unsaved.task_sync
        theirs = row.task_sync.last_sync_at
        if theirs is not None and ours.last_sync_at is not None and theirs > ours.last_sync_at:
            return row
        return replace(with_list_of(row, self.unsaved), task_sync=ours)


@dataclass(frozen=True, slots=True)
class ListMigration:
    """A migration's run over the user's list: what it read (None: it failed, the reason on the user's task
    state) and its pull for the message monitor, which the calendar's run records with its own (one write)."""

    run: TaskRun | None
    message: MonitoredMessage

    def published(self, numbered: Sequence[Change]) -> ListMigration:
        """The run's stored announcement published (`numbered`: its changes with their sequences)."""
        if self.run is None:
            return self
        pulled = replace(self.run.pulled, published=numbered)
        return ListMigration(
            replace(self.run, pulled=pulled, stored=None),
            replace(self.message, detail={**self.message.detail, **pulled.detail()}),
        )


def lease_key(tenant_id: str, staff_id: str) -> str:
    return f"{tenant_id}/{staff_id}/tasks"


async def run_task_job(services: TaskSyncPorts, job: SyncTasks) -> None:
    """A `tasks_*` job from `sync-jobs`. Never raises for a condition a retry cannot fix."""
    with bound(tenant=job.tenant_id, user=job.staff_id):

        async def sync_pass(number: int) -> None:
            await _run_once(services, job if number == 0 else replace(job, kind=TaskMode.SYNC))

        if await superseded(services, job):
            return
        key = lease_key(job.tenant_id, job.staff_id)
        if not await run_leased(services.leases, services.clock, key, LEASE_TTL, sync_pass):
            await check_back(services.jobs, job, LEASE_TTL)


async def migrate_tasks(  # noqa: PLR0917 (the run, and what it shares with the calendar's)
    services: TaskSyncPorts,
    tenant: Tenant,
    user: UserRecord,
    zone: Awaitable[str | None],
    handed: asyncio.Future[ListMigration | None],
    published: Awaitable[object],
) -> None:
    """A user's first read of their list, inside the calendar's migration run (so `user.migrated` counts
    the tasks too), under the list's own lease. It starts with the calendar's run: the list is found and
    subscribed while the calendar reads; `zone` (the mailbox's, from the working hours the calendar's run
    reads; None: read here) gives the due dates' days once the tasks delta is in. The run's outcome is
    `handed` to the calendar's run as soon as the list is read and its statuses stored with their
    announcement (None: the list was not run now: switched off, or another run holds it): the calendar
    publishes that announcement with its own (one feed append; `TaskRun.stored`), and saves the row's list
    and task state with its own (`TaskRun.laid_over`; `save_task_run` when that save does not come). The
    list's lease is usually the calendar's run's, taken with its own (`migration_rider`); else it is taken
    here and held until `published` (the calendar's run published, or gave up). Either way no other run of
    the list comes between the announcement's store and its publication. Whatever the list meets stays
    with the list: a list that cannot be read or made is the user's task error, throttling queues a task
    job of its own, and calendar sync goes on. Its pull for the message monitor is the caller's to record."""
    if not _reads_tasks(user):
        handed.set_result(None)
        return
    done: list[ListMigration] = []

    async def first_pass(number: int) -> None:
        if number == 0:
            done.append(await _guarded(services, tenant, user, TaskMode.SYNC, zone))  # first pass: once
            handed.set_result(done[0])
            await published
            return
        # A notification arrived meanwhile: the first pass's state is saved, then the list read again.
        first = done[0].run if done else None
        if first is not None:
            await save_task_run(services, first)
        await _run_once(services, sync_tasks_job(user, TaskMode.SYNC))

    key = lease_key(tenant.tenant_id, user.staff_id)
    try:
        if holds(key):  # the calendar's run took the list's lease with its own: held until it ends
            handed.set_result(await _guarded(services, tenant, user, TaskMode.SYNC, zone))
        else:
            await run_leased(services.leases, services.clock, key, LEASE_TTL, first_pass)
    except asyncio.CancelledError:
        handed.cancel()  # (the worker is stopping)
        raise
    except Exception as error:
        if not handed.done():
            handed.set_exception(error)
        raise
    finally:
        if not handed.done():
            handed.set_result(None)  # a task run holds the list: it migrates it


def migration_rider(services: TaskSyncPorts, tenant_id: str, staff_id: str) -> Rider:
    """The list's lease, taken by a migration's calendar run with its own (one request for both): the list's
    first read runs under it (`migrate_tasks`), and a task job deferred meanwhile is caught up by one
    more pass over the list before the lease goes."""
    catch_up = jobs.sync_tasks(tenant_id, staff_id, "notified")  # as a notification's task job runs it
    return Rider(lease_key(tenant_id, staff_id), lambda: _run_once(services, catch_up))


def sync_tasks_job(user: UserRecord, kind: TaskMode, reason: str = "migration") -> SyncTasks:
    return SyncTasks(user.tenant_id, user.staff_id, kind, reason)


async def _run_once(services: TaskSyncPorts, job: SyncTasks) -> None:
    started = services.clock.now()
    tenant = await services.tenants.get(job.tenant_id)
    if tenant is None or not tenant.state.connected:
        return
    user = await services.users.get(job.tenant_id, job.staff_id)
    if user is None or not _reads_tasks(user):
        return
    run: TaskRun | None = None
    status, error_text = MessageStatus.OK, None
    try:
        run = await sync_tasks(
            services,
            tenant,
            user,
            job.kind,
            catch_up=job.reason != RENEWAL_REASON,
            scheduled=job.reason == NIGHTLY_REASON,
        )
    except TenantAccessError as error:
        await mark_consent_revoked(services, tenant.tenant_id, error.reason)
        await _record_error(services, user, error.reason)
        status, error_text = MessageStatus.FAILED, error.reason
    except MailboxUnavailable as error:
        await _record_error(services, user, error.reason)
        status, error_text = MessageStatus.FAILED, error.reason
    except RateLimited as error:
        await _retry_later(services, job, error)
        gave_up = THROTTLED.exhausted(job.attempt + 1)
        status, error_text = (MessageStatus.FAILED if gave_up else MessageStatus.RETRYING), error.reason
    except DeltaTokenRejected:
        await _retry_later(services, job, RateLimited(5, "Graph asked for a resync mid-read"))
        status, error_text = MessageStatus.RETRYING, "Graph asked for a resync mid-read"
    kind = "tasks_notification" if job.kind is TaskMode.SYNC and job.reason == "notified" else job.kind.value
    pull = _pull(services, user, kind, status, started, job.attempt + 1, run, error_text)
    await monitor.record(services.messages, [pull])


async def _guarded(
    services: TaskSyncPorts, tenant: Tenant, user: UserRecord, kind: TaskMode, zone: Awaitable[str | None]
) -> ListMigration:
    """The migration's run: the tenant's refusal is the calendar's to handle (it raises on); anything
    else stays with the list. The run is a `tasks_migrate` pull in the message monitor, left to the
    calendar's run to record."""
    started = services.clock.now()
    run: TaskRun | None = None
    status, error_text = MessageStatus.OK, None
    try:
        run = await sync_tasks(services, tenant, user, kind, zone_from=zone, defer=True)
    except MailboxUnavailable as error:
        await _record_error(services, user, error.reason)
        status, error_text = MessageStatus.FAILED, error.reason
    except RateLimited as error:
        await _retry_later(services, sync_tasks_job(user, kind), error)
        status, error_text = MessageStatus.RETRYING, error.reason
    except DeltaTokenRejected:
        await _retry_later(services, sync_tasks_job(user, kind), RateLimited(5, "Graph asked for a resync"))
        status, error_text = MessageStatus.RETRYING, "Graph asked for a resync"
    return ListMigration(run, _pull(services, user, "tasks_migrate", status, started, 1, run, error_text))


def _pull(  # noqa: PLR0917 (the message's parts)
    services: TaskSyncPorts,
    user: UserRecord,
    kind: str,
    status: MessageStatus,
    started: datetime,
    attempts: int,
    run: TaskRun | None,
    error: str | None,
) -> MonitoredMessage:
    return monitor.pull(
        user.tenant_id,
        kind,
        status,
        started_at=started,
        at=services.clock.now(),
        staff_id=user.staff_id,
        attempts=attempts,
        subscription_id=user.task_sync.subscription_id,
        pulled=run.pulled if run is not None else None,
        error=error,
    )


def _reads_tasks(user: UserRecord) -> bool:
    return (
        user.match is MatchStatus.MATCHED
        and user.graph_user_id is not None
        and user.staff.switches.tasks_from_outlook
    )


async def sync_tasks(
    services: TaskSyncPorts,
    tenant: Tenant,
    user: UserRecord,
    kind: TaskMode,
    *,
    zone: str | None = None,
    zone_from: Awaitable[str | None] | None = None,
    catch_up: bool = True,
    scheduled: bool = False,
    defer: bool = False,
) -> TaskRun:
    """One run over the user's list (the caller holds its lease). Raises what the list meets
    (MailboxUnavailable when it can be neither read nor made, RateLimited, TenantAccessError). Without
    `catch_up` (the renewal timer's renewal), a subscription renewed in place reads nothing. A
    `scheduled` resync (the nightly reconciliation) renews the subscription only when the renewal timer
    would, and takes the mailbox's zone from the working hours read within the day. With `defer` the row
    is not saved: the answer's `unsaved` row is for the caller's save. `zone_from` (the migration's) gives
    the zone later: awaited once the list is found and subscribed, before the read."""
    assert user.graph_user_id is not None
    try:  # the list the host's tasks go to (`todo_lists`): the row's, found or made when it has none
        user, list_id = await ensure_list(services, tenant, user, defer=defer)
    except TodoListUnavailable as error:
        raise MailboxUnavailable(error.reason) from error
    state = user.task_sync
    new_list = state.list_id != list_id
    migrating = state.migrating or new_list
    subscribing = kind in SUBSCRIBING and not (
        scheduled and not renewal_due(state.subscription_expires_at, services.clock.now())
    )
    if new_list or subscribing or state.subscription_id is None:
        held = state.subscription_id
        state = await _subscribed(
            services, tenant, user, state, list_id, force_new=kind == TaskMode.RESUBSCRIBE
        )
        if not catch_up and not migrating and state.subscription_id == held and state.delta_link is not None:
            await _save_state(services, user, state)  # Graph holds it: nothing went unnotified
            return TaskRun(state.tasks, 0, 0, Pulled(state.subscription_id, "none", 0, 0, []))
    start_over = migrating or kind == TaskMode.RESYNC or state.delta_link is None
    delta_link = None if start_over else state.delta_link
    scope = tasks_scope(user.staff_id)
    # The read does not wait for the zone (its due dates' days wait), nor a complete read for the statuses
    # it is planned against: the read's requests, the zone and the statuses are under way at once.
    read_mailbox = migrating or kind == TaskMode.RESYNC  # the zone read again at migration and resyncs
    known = asyncio.ensure_future(
        _zone_of_run(services, tenant, user, zone, zone_from, read_mailbox=read_mailbox, scheduled=scheduled)
    )
    loading = (
        asyncio.ensure_future(_stored(services, tenant.tenant_id, scope, migrating)) if start_over else None
    )
    try:
        read, complete = await _read(services, tenant, user, list_id, delta_link, known)
        zone = await known
        quiet = not read.items and not complete
        stored, pending = (
            ({}, None) if quiet else await (loading or _stored(services, tenant.tenant_id, scope, migrating))
        )
    finally:
        _dropped(known, loading)
    moved_on = new_list and state.list_id is not None  # another list than before: the old one's are left
    unseen = RemovalReason.MOVED if moved_on else RemovalReason.DELETED
    private = tenant.settings.privacy_mode
    actions = plan_tasks(
        read.items, stored, complete=complete, migrating=migrating, unseen=unseen, private=private
    )
    now = services.clock.now()
    changes = [
        Change(c.type.value, tenant.tenant_id, c.data, now, staff_id=user.staff_id) for c in actions.changes
    ]
    # The host's tasks changed in To Do: the tenant's policy (`task_conflicts`); a write putting one back is
    # queued before the statuses are stored, so a crash between the two plans it again.
    changes += await settle_edits(services, tenant, user.staff_id, actions.edits, now)
    changes = not_yet_announced(changes, pending)
    statuses = None if quiet else (actions.upserts, actions.deletes)
    published, outbox = await _announced(services, tenant.tenant_id, scope, statuses, changes, defer=defer)
    count = _count(stored, actions) if not quiet else state.tasks
    state = replace(
        state,
        state=SyncState.SYNCED,
        list_id=list_id,
        delta_link=read.delta_link,
        last_sync_at=now,
        migrated_at=now if migrating else state.migrated_at,
        last_error=None,
        tasks=count,
        zone=zone,
    )
    unsaved = replace(user, task_sync=state) if defer else None
    if not defer:
        await _save_state(services, user, state)
    log.info(
        "tasks synced (%s): %d items read, %d changes, %s read, %d requests",
        kind.value,
        len(read.items),
        len(changes),
        "full" if complete else "delta",
        read.requests,
    )
    read_kind = "full" if complete else "delta"
    pulled = Pulled(state.subscription_id, read_kind, len(read.items), read.requests, published)
    return TaskRun(count, actions.linked if migrating else 0, len(changes), pulled, unsaved, outbox)


async def _zone_of_run(
    services: TaskSyncPorts,
    tenant: Tenant,
    user: UserRecord,
    zone: str | None,
    later: Awaitable[str | None] | None,
    *,
    read_mailbox: bool,
    scheduled: bool,
) -> str | None:
    """The zone of the run's due dates: given, or given later (the migration's, from the calendar's run),
    else (`read_mailbox`) the mailbox's, else the one the list's last run used."""
    if later is not None:
        zone = await asyncio.shield(later)  # (shared with the calendar's run: never cancelled from here)
    if zone is None and read_mailbox:
        zone = await _mailbox_zone(
            services, tenant, user, stored_within=ZONE_READ_WITHIN if scheduled else None
        )
    return zone or user.task_sync.zone


async def _stored(
    services: TaskSyncPorts, tenant_id: str, scope: str, migrating: bool
) -> tuple[dict[str, ItemStatus], Announcement | None]:
    """The list's statuses, and what a run that died left announced, published now (`publish_pending`)."""
    stored = await services.item_statuses.load(tenant_id, scope, probably_empty=migrating)
    return stored, await publish_pending(services, tenant_id, scope)


def _dropped(*runs: asyncio.Future[Any] | None) -> None:
    """Cancel what a failed run left under way; what ended with an error is looked at (never logged as
    unretrieved: the run's own error is the one raised)."""
    for run in runs:
        if run is None:
            continue
        if not run.done():
            run.cancel()
        elif not run.cancelled():
            run.exception()


async def _announced(
    services: TaskSyncPorts,
    tenant_id: str,
    scope: str,
    statuses: tuple[Sequence[ItemStatus], Sequence[str]] | None,
    changes: Sequence[Change],
    *,
    defer: bool,
) -> tuple[list[Change], Stored | None]:
    """The statuses stored with their announcement, published (numbered) unless `defer` (a migration's
    run: stored only, for the calendar's run to publish with its own)."""
    if defer and statuses is not None:
        return list(changes), await store(services, tenant_id, scope, statuses, changes)
    return await announce(services, tenant_id, scope, statuses, changes), None


async def save_task_run(services: TaskSyncPorts, run: TaskRun) -> None:
    """A deferred run's row saved on its own (the calendar's run that was to save it failed)."""
    if run.unsaved is None:
        return
    user = run.unsaved

    def merged(current: UserRecord | None) -> UserRecord | None:
        if current is None:
            return None
        laid = run.laid_over(current)
        return replace(laid, updated_at=services.clock.now()) if laid != current else None

    await update_optimistically(
        lambda: services.users.get(user.tenant_id, user.staff_id),
        merged,
        services.users.save,
        attempts=5,
        contended=Conflict("staff_id", "the user is being changed concurrently"),
    )


async def _mailbox_zone(
    services: TaskSyncPorts, tenant: Tenant, user: UserRecord, *, stored_within: timedelta | None = None
) -> str | None:
    """The mailbox's zone (its working hours'), for due dates; None when the mailbox does not say. With
    `stored_within`, the working hours the calendar's run stored that recently answer instead of Graph."""
    assert user.graph_user_id is not None
    if stored_within is not None:
        now = services.clock.now()
        stored = (await services.busy.read(tenant.tenant_id, user.staff_id, near=(now, now))).hours
        if stored is not None and now - stored.read_at <= stored_within:
            return stored.iana_zone
    try:
        hours = await services.calendar.working_hours(tenant, user.graph_user_id)
    except (MailboxUnavailable, RateLimited) as error:
        log.info("the mailbox's zone was not read: %s", error)
        return None
    return iana_zone(hours.zone) if hours is not None else None


def _count(stored: Mapping[str, ItemStatus], actions: TaskPlan) -> int:
    keys = set(stored) - set(actions.deletes)
    keys |= {s.graph_id for s in actions.upserts}
    return len(keys)


async def _subscribed(
    services: TaskSyncPorts,
    tenant: Tenant,
    user: UserRecord,
    state: TaskSync,
    list_id: str,
    *,
    force_new: bool,
) -> TaskSync:
    """The list's subscription alive for another `TASK_LIFETIME`: renewed when it exists on this list,
    else created (and an older one removed)."""
    assert user.graph_user_id is not None
    now = services.clock.now()
    expires = now + TASK_LIFETIME
    key = await services.keys.signing(NOTIFICATION_KEY, fresh=force_new)
    if state.subscription_id and state.list_id == list_id and not force_new:
        recorded = await services.subscription_index.get(state.subscription_id)
        key, force_new = await signing_key(services.keys, recorded.key_version if recorded else None)
        if force_new:  # its clientState names another key version (or none recorded): a new one, signed now
            log.info(
                "task subscription %s signed with another key version; recreating it", state.subscription_id
            )
        else:
            try:
                renewed = await services.subscriptions.renew(tenant, state.subscription_id, expires)
            except SubscriptionGone:
                log.info("task subscription %s is gone; creating a new one", state.subscription_id)
            else:
                await _index(services, user, state.subscription_id, renewed, recorded)
                return replace(state, subscription_expires_at=renewed)
    if state.subscription_id and force_new:
        # Graph refuses a second subscription on the list (409), and adopting the one it holds would keep
        # its clientState: the old one goes first; the run's delta read, after this, covers the moment.
        await services.subscriptions.delete(tenant, state.subscription_id)
        await services.subscription_index.delete(state.subscription_id)
    signed = client_state(key.secret, key.version, tenant.directory_id, user.graph_user_id, Watched.TASKS)
    created = await services.task_changes.subscribe_tasks(
        tenant, user.graph_user_id, list_id, signed, expires
    )
    if state.subscription_id and state.subscription_id != created.id:
        await services.subscriptions.delete(tenant, state.subscription_id)
        await services.subscription_index.delete(state.subscription_id)
    await _index(services, user, created.id, created.expires_at, None, signed_with(created, key))
    log.info("task subscription %s created, expires %s", created.id, created.expires_at.isoformat())
    return replace(state, subscription_id=created.id, subscription_expires_at=created.expires_at)


async def _index(  # noqa: PLR0917 (the index row's fields, in order)
    services: TaskSyncPorts,
    user: UserRecord,
    subscription_id: str,
    expires: datetime,
    existing: SubscriptionRecord | None,
    key_version: str | None = None,
) -> None:
    """The list's subscription indexed: a new one names the key version that signed it; a renewed one
    keeps its last notification and its version."""
    assert user.graph_user_id is not None
    await services.subscription_index.put(
        SubscriptionRecord(
            subscription_id,
            user.tenant_id,
            user.staff_id,
            user.graph_user_id,
            expires,
            last_notified_at=existing.last_notified_at if existing else unmarked_since(services.clock.now()),
            watches=Watched.TASKS,
            key_version=key_version or (existing.key_version if existing else None),
        )
    )


async def _read(  # noqa: PLR0917 (the read's inputs, in order)
    services: TaskSyncPorts,
    tenant: Tenant,
    user: UserRecord,
    list_id: str,
    delta_link: str | None,
    zone: Awaitable[str | None],
) -> tuple[TaskDeltaRead, bool]:
    """The delta loop: from the stored link, or the whole list when there is none or Graph lost it."""
    assert user.graph_user_id is not None
    gateway = services.task_changes
    if delta_link is not None:
        try:
            read = await gateway.read_tasks_delta(tenant, user.graph_user_id, list_id, delta_link, zone)
        except DeltaTokenRejected:
            log.info("tasks delta link rejected; reading the whole list")
        else:
            return read, False
    return await gateway.read_tasks_delta(tenant, user.graph_user_id, list_id, None, zone), True


async def _save_state(services: TaskSyncPorts, user: UserRecord, state: TaskSync) -> UserRecord:
    """Save the task sync state over whatever else changed meanwhile."""

    def merged(current: UserRecord | None) -> UserRecord | None:
        if current is None:
            return None
        return replace(current, task_sync=state, updated_at=services.clock.now())

    done = await update_optimistically(
        starting_from(user, lambda: services.users.get(user.tenant_id, user.staff_id)),
        merged,
        services.users.save,
        attempts=5,
        contended=Conflict("staff_id", "the user is being changed concurrently"),
    )
    return done.saved if done.saved is not None else user


async def _record_error(services: TaskSyncPorts, user: UserRecord, reason: str) -> None:
    current = await services.users.get(user.tenant_id, user.staff_id)
    if current is None:
        return
    await _save_state(services, current, replace(current.task_sync, state=SyncState.ERROR, last_error=reason))
    log.warning("task sync failed: %s", reason)


async def _retry_later(services: TaskSyncPorts, job: SyncTasks, error: RateLimited) -> None:
    attempt = job.attempt + 1
    if THROTTLED.exhausted(attempt):
        user = await services.users.get(job.tenant_id, job.staff_id)
        if user is not None:
            await _record_error(
                services,
                user,
                f"Microsoft Graph kept throttling this list ({error.reason}); the next sync retries",
            )
        return
    delay = THROTTLED.delay_after(attempt, error.retry_after)
    await services.jobs.enqueue([replace(job, attempt=attempt, delay_seconds=delay)])
    log.info("tasks throttled; retrying in %d s (attempt %d)", delay, attempt)
