"""The Outlook-to-host executor: one user's calendar, read through delta, planned, applied.

One run per user at a time across workers (a lease with a 'run again' flag, so a notification that
arrives while a run is under way is never lost). A run:
1. ensures the Graph subscription (migration, lifecycle events, renewal);
2. on migration, finds the host's own appointments in the mailbox (its EWS-era ids through
   translateExchangeIds, the connector's extended property, iCalUIds), at most four requests at a time;
   a migration also reads and links the user's To Do list (`task_sync.migrate_tasks`) while the window
   is planned and applied, so `user.migrated` counts its tasks;
3. reads the window through `calendarView/delta` from the stored delta link, or whole when there is none,
   Graph rejected it (410) or the link's window no longer covers the configured one (the window moves in
   steps: `sync_window.py`), reads the series masters the plan needs (`series.masters_to_read`: new or
   changed Outlook series, none on a quiet run), and lets the planner reconcile that against the stored
   status;
4. brings the user's busy index up to date (`busy_index.py`), so the availability answer has a change
   no later than the feed;
5. stores the statuses with the changes they announce (an outbox in the status rows), publishes the
   changes (feed, then the host's webhook), clears them, then stores the delta link (and, at migration
   and on a resync, the working hours, read beside the statuses and masters). A user whose
   `calendar_from_outlook` switch is off is read and indexed the same, but nothing is announced and the
   statuses of the items concerned keep what the host was last told (`planner.held_back`); turning the
   switch on queues a full read, which announces each held change once.
The order makes a crash anywhere safe (`publishing.announce`): a redelivered job reads again from the old
delta link; before the statuses were stored, it plans the same changes again; after, it finds them stored
with the announcement, which it publishes first (the feed appends an announcement once), and the planner
finds nothing new. Nothing is announced twice or lost, and a change stored as known (a created event) has
been announced, so its later deletion is too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from shared.domain.appointments import appointment_of_transaction
from shared.domain.calendar import DeltaItem, OutlookEvent
from shared.domain.planner import HostLinks, ItemStatus, Observation, Plan, Visibility, held_back, plan
from shared.domain.series import masters_to_read, removals_to_read
from shared.domain.sync_window import covers, read_window
from shared.domain.tasks import TaskState
from shared.domain.tenants import Tenant, TenantState
from shared.domain.timezones import iana_zone
from shared.domain.users import MatchStatus, SyncState, UserRecord
from shared.observability import bound, get_logger
from shared.service import jobs, monitor
from shared.service.busy_index import read_hours, refresh_index, store_hours
from shared.service.context import (
    UsesAppointments,
    UsesUsers,
)
from shared.service.errors import (
    Conflict,
    DeltaTokenRejected,
    MailboxUnavailable,
    NotFound,
    RateLimited,
    TenantAccessError,
)
from shared.service.follow_ups import follow_ups, marks_now, superseded
from shared.service.jobs import NIGHTLY_REASON, RENEWAL_REASON, Notified, SyncMode, SyncUser, TaskMode
from shared.service.leasing import check_back, run_leased
from shared.service.monitor import MessageStatus
from shared.service.ports.clock import Clock
from shared.service.ports.graph import CalendarGateway
from shared.service.ports.tenancy import UserRepository
from shared.service.publishing import (
    announce_along,
    not_yet_announced,
    publish,
    publish_pending,
    publish_stored,
)
from shared.service.records import Change, DeltaRead, UserBusy, Watched, WorkingHours
from shared.service.retries import THROTTLED, StillContended, starting_from, update_optimistically
from shared.service.stalled_writes import StalledWritePorts, requeue_stalled_writes
from shared.service.subscriptions import (
    SubscribePorts,
    ensure_subscription,
    renewal_due,
)
from shared.service.task_sync import (
    ListMigration,
    TaskRun,
    TaskSyncPorts,
    migrate_tasks,
    migration_rider,
    run_task_job,
    save_task_run,
)
from shared.service.tenants import TenantEventPorts, get_tenant, mark_consent_revoked
from shared.service.users import StaffPorts

log = get_logger("sync")


class ResyncPorts(StaffPorts, StalledWritePorts, Protocol):
    """A resync asked for by the API or the console: the tenant, its users, the host's tasks, the queue,
    and the host writes left unfinished (queued again with the resync)."""


class MigrationPorts(TenantEventPorts, UsesUsers, Protocol):
    """Finishing a tenant's migration once its users are done, and telling the host."""


class SyncPorts(TaskSyncPorts, MigrationPorts, UsesAppointments, Protocol):
    """A user's sync run, under its lease: the calendar's ports are the To Do list's (subscriptions, the
    queue, the calendar, item statuses, leases, the busy store, the monitor) and the migration's."""


LEASE_TTL: Final = timedelta(minutes=2)  # longer than any run; a killed worker's lease lapses after it
MAX_RECHECKED_ITEMS: Final = 20  # the items named in a recheck job (a few tell the write side enough)
MAILBOX_CONCURRENCY: Final = 4  # Graph allows four concurrent requests per app and mailbox
REMOVALS_READ: Final = 20  # removed items read again to say why (one `$batch`); more: not read
STAMP_READS: Final = 8  # new items whose property is read one by one; more: the listing of stamped events

# A resync confirms the subscription too (a renewal answers 404 for one Graph lost without a lifecycle
# notification, and a new one is made): one request per user beside the whole window's read.
SUBSCRIBING_KINDS: Final = frozenset({"migrate", "resubscribe", "renew", "resync"})


async def run_sync_job(services: SyncPorts, job: SyncUser) -> None:
    """A per-user job from the `sync-jobs` queue. Never raises for a condition a retry cannot fix."""
    staff_id = job.staff_id
    with bound(tenant=job.tenant_id, user=staff_id):
        if await superseded(services, job):
            return
        await _run_leased(services, job, staff_id)


async def run_notified(services: SyncPorts, job: Notified) -> None:
    """Graph said the mailbox changed: find whose subscription it is, then catch up (the delta read is the
    truth, so duplicate, late or reordered notifications only cost a cheap read)."""
    subscription_id = job.subscription_id
    record = await services.subscription_index.get(subscription_id)
    if record is None or record.graph_user_id.lower() != job.graph_user_id.lower():
        log.info("notification for unknown subscription %s dropped", subscription_id)
        return
    now = services.clock.now()
    if marks_now(record, now):
        # The renewal timer reads the mark (silent for a day?), and so does the catch-up it queues (notified
        # since?): a mark every half minute spares a write per notification.
        await services.subscription_index.put(replace(record, last_notified_at=now))
        await services.jobs.enqueue(follow_ups(record, now))
    if record.watches is Watched.TASKS:  # the user's To Do list changed: its own run, on its own lease
        await run_task_job(services, jobs.sync_tasks(record.tenant_id, record.staff_id, "notified"))
        return
    catch_up = jobs.sync_user(record.tenant_id, record.staff_id, "notified")
    with bound(tenant=record.tenant_id, user=record.staff_id):
        await _run_leased(services, catch_up, record.staff_id)


async def _run_leased(services: SyncPorts, job: SyncUser, staff_id: str) -> None:
    async def sync_pass(number: int) -> None:
        # A later pass was asked for while an earlier one ran: it catches up once more.
        await _run_once(services, job, job.kind if number == 0 else "sync", staff_id)

    # A migration reads the user's To Do list in its first pass: it takes the list's lease with its own.
    rider = migration_rider(services, job.tenant_id, staff_id) if job.kind is SyncMode.MIGRATE else None
    key = f"{job.tenant_id}/{staff_id}"
    if not await run_leased(services.leases, services.clock, key, LEASE_TTL, sync_pass, rider=rider):
        check = jobs.sync_user(job.tenant_id, staff_id, "check_back", check_back=job.check_back)
        await check_back(services.jobs, check, LEASE_TTL)


async def _run_once(services: SyncPorts, job: SyncUser, kind: str, staff_id: str) -> None:
    tenant = await services.tenants.get(job.tenant_id)
    if tenant is None or not tenant.state.connected:
        return  # disconnected, revoked, not consented: nothing to do, no retry
    user = await services.users.get(job.tenant_id, staff_id)
    if user is None or user.match is not MatchStatus.MATCHED or user.graph_user_id is None:
        return
    started = services.clock.now()
    pulled: monitor.Pulled | None = None
    status, error_text = MessageStatus.FAILED, None
    lists: list[ListRun] = []  # a migration's list run, started beside it
    try:
        catch_up = not (kind == SyncMode.RENEW and job.reason == RENEWAL_REASON)
        scheduled = job.reason == NIGHTLY_REASON
        pulled = await _sync_user(
            services, tenant, user, kind, lists, force=job.force, catch_up=catch_up, scheduled=scheduled
        )
        status, error_text = (MessageStatus.FAILED, pulled.held) if pulled.held else (MessageStatus.OK, None)
    except TenantAccessError as error:
        # The tenant stops (its state and the feed say why); this user's run ended on the same refusal.
        await mark_consent_revoked(services, tenant.tenant_id, error.reason)
        await _record_error(services, tenant.tenant_id, staff_id, error.reason)
        error_text = error.reason
    except MailboxUnavailable as error:
        await _record_error(services, tenant.tenant_id, staff_id, error.reason)
        error_text = error.reason
    except RateLimited as error:
        await _retry_later(services, job, kind, staff_id, error)
        gave_up = THROTTLED.exhausted(job.attempt + 1)
        status, error_text = (MessageStatus.FAILED if gave_up else MessageStatus.RETRYING), error.reason
    except DeltaTokenRejected:
        # Even a fresh read was refused (Graph's resyncRequired mid-round): start over a little later.
        await _retry_later(services, job, kind, staff_id, RateLimited(5, "Graph asked for a resync mid-read"))
        status, error_text = MessageStatus.RETRYING, "Graph asked for a resync mid-read"
    pull_kind = "notification" if kind == "sync" and job.reason == "notified" else kind
    entry = monitor.pull(
        tenant.tenant_id,
        pull_kind,
        status,
        started_at=started,
        at=services.clock.now(),
        staff_id=staff_id,
        attempts=job.attempt + 1,
        subscription_id=user.subscription_id,
        pulled=pulled,
        error=error_text,
    )
    await monitor.record(services.messages, [entry, *_list_pulls(lists)])  # one write for both


@dataclass
class ListRun:
    """A migration's run over the user's To Do list, beside the calendar's (`_migrating_tasks`)."""

    handed: asyncio.Future[ListMigration | None]  # its outcome, once the list is read and stored
    run: asyncio.Future[None]  # the run itself: it lets go of the list's lease once the calendar published
    announced: ListMigration | None = None  # its outcome once the calendar's run published its changes

    def pull(self) -> monitor.MonitoredMessage | None:
        """Its pull for the message monitor (none when it raised or was not run)."""
        if self.announced is not None:
            return self.announced.message
        handed = self.handed
        if not handed.done() or handed.cancelled() or handed.exception() is not None:
            return None
        done = handed.result()
        return done.message if done is not None else None


def _list_pulls(lists: list[ListRun]) -> list[monitor.MonitoredMessage]:
    """The pulls of the list runs that ended with one (a run that raised records none)."""
    return [message for run in lists if (message := run.pull()) is not None]


async def _sync_user(
    services: SyncPorts,
    tenant: Tenant,
    user: UserRecord,
    kind: str,
    lists: list[ListRun],
    *,
    force: bool,
    catch_up: bool = True,
    scheduled: bool = False,
) -> monitor.Pulled:
    """The calendar's run; `lists` receives a migration's list run, whose To Do list state, left to the
    calendar's final save, is saved on its own should the run fail after the list's run."""
    loop = asyncio.get_running_loop()
    zone: asyncio.Future[str | None] = loop.create_future()
    published: asyncio.Future[None] = loop.create_future()  # the list's announcement: its lease waits
    try:
        return await _sync_calendar(
            services,
            tenant,
            user,
            kind,
            force=force,
            catch_up=catch_up,
            scheduled=scheduled,
            lists=lists,
            zone=zone,
            published=published,
        )
    except Exception:
        if not zone.done():
            zone.set_result(None)  # the list's run reads the zone itself
        for run in lists:
            [done] = await asyncio.gather(run.handed, return_exceptions=True)
            if not isinstance(done, ListMigration) or done.run is None:
                continue  # nothing read, or the list's run raised too (`_settled` logged it)
            try:
                # Its announcement first, if this run did not publish it: the list's state (its delta link
                # on) is saved only once its changes are out, else the next run reads it all again and
                # publishes what its statuses hold announced.
                if run.announced is None and done.run.stored is not None:
                    await publish_stored(services, tenant.tenant_id, done.run.stored)
                await save_task_run(services, done.run)
            except Exception as error:  # the calendar's error is the one raised
                log.warning(
                    "the To Do list's migration was not saved or announced in full (%s): its next run"
                    " finds the list by name and its statuses, publishes what they hold announced, and"
                    " adopts its subscription",
                    error,
                )
        raise
    finally:
        if not published.done():
            published.set_result(None)
        # The list's run lets go of its lease meanwhile: awaited, so nothing of it outlives the job.
        await asyncio.gather(*(run.run for run in lists), return_exceptions=True)


async def _sync_calendar(  # noqa: PLR0915 (a run's steps, in order)
    services: SyncPorts,
    tenant: Tenant,
    user: UserRecord,
    kind: str,
    *,
    force: bool,
    catch_up: bool,
    scheduled: bool,
    lists: list[ListRun],
    zone: asyncio.Future[str | None],
    published: asyncio.Future[None],
) -> monitor.Pulled:
    """`lists` receives a migration's list run, started at once beside the calendar's reads; `zone` is the
    mailbox's for it, set once the working hours are read; `published` is set once the list's
    announcement is published with the calendar's (the list's lease waits for it)."""
    assert user.graph_user_id is not None
    # Never synced, or the migration did not finish (a moved mailbox starts over as pending): the host's own
    # appointments are linked, not announced. The user's state decides, not the job's kind: a second
    # `migrate` job (the staff PUT and discovery both queue one) finds the user synced and only catches up.
    migrating = user.last_sync_at is None or user.sync_state in (SyncState.PENDING, SyncState.MIGRATING)
    if migrating and user.sync_state is not SyncState.MIGRATING:
        user = await _save_user(services.users, services.clock, replace(user, sync_state=SyncState.MIGRATING))
    gate = asyncio.Semaphore(MAILBOX_CONCURRENCY)
    tasks_run = _migrating_tasks(services, tenant, user, zone, published) if migrating else None
    lists.extend([tasks_run] if tasks_run is not None else [])
    # The nightly reconciliation leaves a subscription to the renewal timer until that timer would renew it.
    due = not scheduled or renewal_due(user.subscription_expires_at, services.clock.now())
    needs_subscription = (kind in SUBSCRIBING_KINDS and due) or migrating or user.subscription_id is None
    subscribed, links = await asyncio.gather(
        _subscribed(services, tenant, user, kind, gate) if needs_subscription else _same(user),
        _host_links(services.calendar, tenant, user, gate) if migrating else _no_links(),
    )
    renewed_in_place = subscribed.subscription_id == user.subscription_id
    user = replace(
        user,
        subscription_id=subscribed.subscription_id,
        subscription_expires_at=subscribed.subscription_expires_at,
    )
    if not catch_up and renewed_in_place and not migrating and user.delta_link is not None:
        # The renewal timer's renewal of a subscription Graph holds: nothing went unnotified, nothing to read.
        await _save_user(services.users, services.clock, user)
        return monitor.Pulled(user.subscription_id, "none", 0, 0, [])
    now = services.clock.now()
    read, complete, read_over = await _read(services.calendar, tenant, user, kind, now)
    # What the busy index holds: from today's configured start to the end of what the link reads.
    window = tenant.settings.window(now)[0], read_over[1]
    quiet = not read.items and not complete and not migrating  # a notification's echo: nothing to plan
    first = migrating and user.last_sync_at is None  # nothing stored yet, most likely
    visibility = Visibility.of(tenant.settings)
    hours_wanted = kind == "resync" or migrating  # read at migration and by the nightly run
    stored, busy, masters, hours, removed_found = await _gather_state(
        services,
        tenant,
        user,
        read,
        gate,
        first=first,
        complete=complete,
        quiet=quiet,
        series=visibility.series,
        hours=hours_wanted,
        window_start=window[0],
    )
    _tell_zone(zone, hours)
    # What a run that died left announced goes first (the statuses it stored say it was announced).
    pending = None if quiet else await publish_pending(services, tenant.tenant_id, user.staff_id)
    if not migrating and not quiet:  # the host's old EWS sync may still write: its events are linked too
        links = await _later_links(services, tenant, user, read.items, stored, gate)
    observation = Observation(
        read.items,
        complete,
        window[0],
        migrating=migrating,
        masters=masters,
        window_end=window[1],
        removed_found=removed_found,
    )
    actions = plan(observation, stored, visibility, links, allow_mass_delete=force)
    seen = actions  # what Outlook holds now: the busy index follows it whatever the switch says
    if not user.staff.switches.calendar_from_outlook:
        actions = held_back(actions)
    now = services.clock.now()
    changes = [
        Change(c.type.value, tenant.tenant_id, c.data, now, staff_id=user.staff_id) for c in actions.changes
    ]
    if not quiet:  # before the feed: a change is in the availability answer no later than in the feed
        statuses = {**stored, **{s.graph_id: s for s in seen.upserts}}
        index = busy.index if busy is not None else None
        await refresh_index(
            services.busy, tenant.tenant_id, user.staff_id, index, read.items, complete, window, statuses, now
        )
    # Rechecks are queued before the statuses are stored: a crash between the two reads the delta again and
    # plans them again, where the other order would find the Outlook edit already stored and never report it.
    if actions.rechecks:  # connector appointments changed in Outlook: the write side decides by policy
        await services.jobs.enqueue(
            [
                jobs.write_appointment(
                    tenant.tenant_id,
                    appointment_id,
                    "changed_in_outlook",
                    recheck=[user.staff_id],
                    events=sorted(items)[:MAX_RECHECKED_ITEMS],
                )
                for appointment_id, items in sorted(actions.rechecks.items())
            ]
        )
    # A migration's list (its run beside this one's): awaited only now, the calendar's own writes done.
    listed = await tasks_run.handed if tasks_run is not None else None
    task_run = listed.run if listed is not None else None
    if tasks_run is not None:
        changes.append(_migrated(tenant, user, stored, actions, task_run, now))
    # (`user.migrated` too: a migration whose publication failed announced it already, and runs again)
    changes = not_yet_announced(changes, pending)
    # With nothing planned too, unless quiet: what the write side noted is folded in.
    stores = None if quiet else (actions.upserts, actions.deletes)
    announced = await _announce(services, tenant, user, stores, changes, listed, tasks_run)
    published.set_result(None)
    user = (
        await _recreate_silent(services, tenant, user)
        if kind == SyncMode.SILENT and read.items and not complete
        else user
    )
    if hours_wanted:  # the working hours, stored before the user is synced
        await store_hours(services.busy, tenant, user, hours, now)
    if actions.held_deletes:
        reason = (
            f"Outlook no longer shows {actions.held_deletes} of the events synced before; nothing deleted."
            " If that is right, resync this user with force."
        )
        await _save_user(
            services.users,
            services.clock,
            replace(
                user,
                sync_state=SyncState.ERROR,
                last_error=reason,
                delta_link=None,
                delta_since=None,
                delta_window=None,
            ),
            task_run,
        )
        log.warning("mass-deletion guard held %d deletions", actions.held_deletes)
    else:
        await _save_user(
            services.users,
            services.clock,
            replace(
                user,
                sync_state=SyncState.SYNCED,
                last_sync_at=now,
                migrated_at=now if migrating else user.migrated_at,  # the progress's ETA counts these
                last_error=None,
                delta_link=read.delta_link,
                delta_since=now if complete or user.delta_since is None else user.delta_since,
                delta_window=read_over,
            ),
            task_run,
        )
    if migrating:
        await maybe_finish_migration(services, tenant.tenant_id)
    log.info(
        "synced (%s): %d items read, %d changes, %s read, %d requests, %d series masters read",
        kind,
        len(read.items),
        len(changes),
        "full" if complete else "delta",
        read.requests,
        len(masters),
    )
    return monitor.Pulled(
        user.subscription_id,
        "full" if complete else "delta",
        len(read.items),
        read.requests,
        announced,
        reason if actions.held_deletes else None,
    )


async def _announce(  # noqa: PLR0917 (announce's, and the migration's list)
    services: SyncPorts,
    tenant: Tenant,
    user: UserRecord,
    statuses: tuple[Sequence[ItemStatus], Sequence[str]] | None,
    changes: Sequence[Change],
    listed: ListMigration | None,
    list_run: ListRun | None,
) -> list[Change]:
    """`publishing.announce`, with a migration's list's announcement first in the same feed append (its
    pull then names the sequences its changes were given). Answers the calendar's numbered."""
    stored = listed.run.stored if listed is not None and listed.run is not None else None
    announced, numbered = await announce_along(
        services, tenant.tenant_id, user.staff_id, statuses, changes, [stored] if stored is not None else []
    )
    if listed is not None and list_run is not None and numbered:
        list_run.announced = listed.published(numbered[0])
    return announced


async def _gather_state(
    services: SyncPorts,
    tenant: Tenant,
    user: UserRecord,
    read: DeltaRead,
    gate: asyncio.Semaphore,
    *,
    first: bool,
    complete: bool,
    quiet: bool,
    series: bool,
    hours: bool,
    window_start: datetime,
) -> tuple[
    dict[str, ItemStatus],
    UserBusy | None,
    dict[str, OutlookEvent | None],
    WorkingHours | None,
    dict[str, OutlookEvent | None],
]:
    """The statuses and busy index, the series masters the plan needs and (at migration and on a resync)
    the working hours, at once: a first read knows no series yet, so their masters are read while the
    (empty) statuses load; a later read asks only for the masters its statuses lack or have stale, and
    reads again the few removed items whose reason Graph does not give (`series.removals_to_read`)."""
    series = series and not quiet
    early = masters_to_read(read.items, {}, complete=complete) if series and first else set()
    (stored, busy), masters, working_hours = await asyncio.gather(
        _stored(services, tenant, user, quiet=quiet, first=first),
        _read_by_id(services.calendar.read_events, tenant, user, early, gate),
        _read_hours(services.calendar, tenant, user, gate) if hours else _no_hours(),
    )
    wanted = masters_to_read(read.items, stored, complete=complete) if series else set()
    gone = removals_to_read(read.items, stored, complete=complete, window_start=window_start)
    if len(gone) > REMOVALS_READ:  # a calendar emptied (the mass-deletion guard's case): not read one by one
        gone = set()
    later, removed_found = await asyncio.gather(
        _read_by_id(services.calendar.read_events, tenant, user, wanted - masters.keys(), gate),
        _read_by_id(services.calendar.read_items, tenant, user, gone, gate),
    )
    return stored, busy, masters | later, working_hours, removed_found


async def _read_hours(
    calendar: CalendarGateway, tenant: Tenant, user: UserRecord, gate: asyncio.Semaphore
) -> WorkingHours | None:
    async with gate:
        return await read_hours(calendar, tenant, user)


async def _no_hours() -> None:
    return None


async def _stored(
    services: SyncPorts, tenant: Tenant, user: UserRecord, *, quiet: bool, first: bool
) -> tuple[dict[str, ItemStatus], UserBusy | None]:
    """The user's item statuses and busy index (none needed on a quiet run; no index yet on a first)."""
    if quiet:
        return {}, None
    statuses, busy = await asyncio.gather(
        services.item_statuses.load(tenant.tenant_id, user.staff_id, probably_empty=first),
        _no_busy() if first else services.busy.read(tenant.tenant_id, user.staff_id),
    )
    return statuses, busy


ReadById = Callable[[Tenant, str, list[str]], Awaitable[dict[str, OutlookEvent | None]]]


async def _read_by_id(
    read: ReadById, tenant: Tenant, user: UserRecord, wanted: set[str], gate: asyncio.Semaphore
) -> dict[str, OutlookEvent | None]:
    """Events read by id under the mailbox's gate, in as few round trips as Graph allows (None: Graph no
    longer has it): the series masters the plan needs (`series.masters_to_read`, `read_events`), removed
    items the host knew (`series.removals_to_read`, `read_items`)."""
    assert user.graph_user_id is not None
    if not wanted:
        return {}
    async with gate:
        return await read(tenant, user.graph_user_id, sorted(wanted))


async def _same(user: UserRecord) -> UserRecord:
    return user


async def _no_links() -> HostLinks:
    return HostLinks()


def _migrated(  # noqa: PLR0917 (a migration's outcome, in order)
    tenant: Tenant,
    user: UserRecord,
    stored: Mapping[str, ItemStatus],
    actions: Plan,
    tasks: TaskRun | None,
    now: datetime,
) -> Change:
    """`user.migrated`: the events the calendar holds now and how many are the host's, with the list's."""
    data: dict[str, Any] = {
        "events": len(stored) + len(actions.upserts) - len(actions.deletes),
        "linked": sum(1 for s in actions.upserts if s.appointment_id),
    }
    if tasks is not None:
        data |= {"tasks": tasks.tasks, "tasks_linked": tasks.linked}
    return Change("user.migrated", tenant.tenant_id, data, now, staff_id=user.staff_id)


def _tell_zone(zone: asyncio.Future[str | None], hours: WorkingHours | None) -> None:
    """The mailbox's zone for the list's run (from the working hours just read; None: it reads it)."""
    if not zone.done():
        zone.set_result(iana_zone(hours.zone) if hours is not None else None)


def _migrating_tasks(
    services: SyncPorts,
    tenant: Tenant,
    user: UserRecord,
    zone: asyncio.Future[str | None],
    published: asyncio.Future[None],
) -> ListRun:
    """The user's To Do list read and linked beside the calendar's run (its own lease, state and errors),
    so the migration counts its tasks: the list found and subscribed while the calendar reads, its due
    dates days in the working hours' zone (`zone`, set once they are read). Its outcome (`handed`) is
    awaited before `user.migrated`, its announcement published with the calendar's (`published` set
    then); should the calendar's run fail, its state is saved and its announcement published on their
    own."""
    handed: asyncio.Future[ListMigration | None] = asyncio.get_running_loop().create_future()
    run = asyncio.ensure_future(migrate_tasks(services, tenant, user, zone, handed, published))
    run.add_done_callback(_settled)
    return ListRun(handed, run)


def _settled(run: asyncio.Future[None]) -> None:
    """The list's migration ended: what it raised is awaited by the calendar's run, or (that run having
    failed first) only logged; the queue's retry migrates again."""
    if not run.cancelled() and run.exception() is not None:
        log.info("the To Do list's migration ended with %s", type(run.exception()).__name__)


async def _no_busy() -> None:
    return None  # a first migration reads the whole window: its index is built, not updated


async def _subscribed(
    services: SubscribePorts, tenant: Tenant, user: UserRecord, kind: str, gate: asyncio.Semaphore
) -> UserRecord:
    async with gate:
        return await ensure_subscription(services, tenant, user, force_new=kind == "resubscribe")


async def _host_links(
    calendar: CalendarGateway, tenant: Tenant, user: UserRecord, gate: asyncio.Semaphore
) -> HostLinks:
    """The host's appointments in this mailbox: EWS ids, then the connector's property, then iCalUIds."""
    assert user.graph_user_id is not None
    graph_user_id = user.graph_user_id
    legacy = user.staff.legacy_ids
    by_ews = {link.ews_id: link.appointment_id for link in legacy if link.ews_id}

    async def translated() -> dict[str, str]:
        if not by_ews:
            return {}
        async with gate:
            found = await calendar.translate_ews_ids(tenant, graph_user_id, sorted(by_ews))
        return {graph_id: by_ews[ews_id] for ews_id, graph_id in found.items()}

    async def stamped() -> dict[str, str]:
        async with gate:
            return await calendar.connector_events(tenant, graph_user_id)

    from_ews, from_property = await asyncio.gather(translated(), stamped())
    by_ical = {link.ical_uid: link.appointment_id for link in legacy if link.ical_uid}
    return HostLinks(by_graph_id={**from_property, **from_ews}, by_ical_uid=by_ical)


async def _recreate_silent(services: SyncPorts, tenant: Tenant, user: UserRecord) -> UserRecord:
    """Graph holds the subscription, yet these changes were never notified (or their notifications were
    refused): it does not deliver. A new one, signed with the current key, to the current URL."""
    log.warning("subscription %s silent though Outlook changed; recreating it", user.subscription_id)
    return await ensure_subscription(services, tenant, user, force_new=True)


async def _later_links(  # noqa: PLR0917 (a run's inputs, in order)
    services: SyncPorts,
    tenant: Tenant,
    user: UserRecord,
    items: Sequence[DeltaItem],
    stored: Mapping[str, ItemStatus],
    gate: asyncio.Semaphore,
) -> HostLinks:
    """After migration: the host's links for the items this read brought that nothing stored knows (events
    the host's old EWS sync wrote since), so they are linked, not announced. Occurrences of a series already
    stored keep its link. The connector's extended property, then the iCalUIds the host gave, then the EWS
    ids it gave through `translateExchangeIds` (only those not linked yet); a read with no unknown item
    costs no request, and each step runs only for what the ones before left unlinked. The property is read
    event by event for a few (`STAMP_READS`: the masters of new occurrences), else through the one query
    listing the mailbox's stamped events (pages of them once the connector wrote many). First of all, a
    meeting invitation whose meeting the connector organised (its iCalUId noted when the organiser's event
    was made) is the host's own: the write job links it, and a read that comes first must not announce it."""
    assert user.graph_user_id is not None
    graph_user_id = user.graph_user_id
    calendar = services.calendar
    series = {s.series_master_id: s.appointment_id for s in stored.values() if s.series_master_id}
    by_graph_id = {master: appointment for master, appointment in series.items() if appointment}
    legacy = user.staff.legacy_ids
    by_ical = {link.ical_uid: link.appointment_id for link in legacy if link.ical_uid}
    unknown = [
        item
        for item in items
        if isinstance(item, OutlookEvent)
        and item.id not in stored
        and (item.series_master_id is None or item.series_master_id not in series)
        and appointment_of_transaction(item.transaction_id) is None
    ]

    def unlinked(found: Mapping[str, str]) -> list[OutlookEvent]:
        return [
            e
            for e in unknown
            if e.id not in found and (e.series_master_id or "") not in found and e.ical_uid not in by_ical
        ]

    invitations = [e for e in unlinked(by_graph_id) if e.is_organizer is False and e.meeting and e.ical_uid]
    if invitations:
        organised = await asyncio.gather(
            *(services.appointments.meeting(tenant.tenant_id, e.ical_uid or "") for e in invitations)
        )
        by_graph_id.update({e.id: found for e, found in zip(invitations, organised, strict=True) if found})
    unread = {e.series_master_id or e.id for e in unlinked(by_graph_id)}  # the property is on a master
    if unread:
        async with gate:
            if len(unread) <= STAMP_READS:
                by_graph_id.update(await calendar.stamped(tenant, graph_user_id, sorted(unread)))
            else:
                by_graph_id.update(await calendar.connector_events(tenant, graph_user_id))
    linked = {s.appointment_id for s in stored.values() if s.appointment_id}
    by_ews = {
        link.ews_id: link.appointment_id
        for link in legacy
        if link.ews_id and link.appointment_id not in linked
    }
    if by_ews and unlinked(by_graph_id):
        async with gate:
            found = await calendar.translate_ews_ids(tenant, graph_user_id, sorted(by_ews))
        by_graph_id.update({graph_id: by_ews[ews_id] for ews_id, graph_id in found.items()})
    return HostLinks(by_graph_id=by_graph_id, by_ical_uid=by_ical)


def _held_window(tenant: Tenant, user: UserRecord) -> tuple[datetime, datetime] | None:
    """The window the user's delta link reads: as stored, or for a link stored before the window was (no
    margin then), the configured window of the day its complete read ran."""
    if user.delta_link is None:
        return None
    if user.delta_window is not None:
        return user.delta_window
    return tenant.settings.window(user.delta_since) if user.delta_since is not None else None


async def _read(
    calendar: CalendarGateway, tenant: Tenant, user: UserRecord, kind: str, now: datetime
) -> tuple[DeltaRead, bool, tuple[datetime, datetime]]:
    """The delta loop: from the stored link, or the whole window (`read_window`: the configured one and the
    margin) when there is none, Graph lost it, or the link's window no longer covers the configured one
    (today's far edge passed the margin, or the window grew). Answers the read, whether it was complete,
    and the window the new link reads."""
    assert user.graph_user_id is not None
    held = _held_window(tenant, user)
    if kind != SyncMode.RESYNC and user.delta_link is not None and held is not None:
        if covers(held, tenant.settings.window(now)):
            try:
                return (
                    await calendar.read_delta(tenant, user.graph_user_id, user.delta_link, held),
                    False,
                    held,
                )
            except DeltaTokenRejected:
                log.info("delta link rejected; reading the whole window")
        else:
            log.info("the window stepped past the delta link's; reading the whole window")
    fresh = read_window(tenant.settings, now)
    return await calendar.read_delta(tenant, user.graph_user_id, None, fresh), True, fresh


async def _save_user(
    users: UserRepository, clock: Clock, user: UserRecord, tasks: TaskRun | None = None
) -> UserRecord:
    """Save the sync fields over whatever else changed meanwhile (a rematch, a staff update), with a
    migration's To Do list state (`tasks`) when its run left it to this save."""

    def merged(current: UserRecord | None) -> UserRecord | None:
        if current is None:  # deleted meanwhile
            return None
        return replace(
            tasks.laid_over(current) if tasks is not None else current,
            sync_state=user.sync_state,
            last_sync_at=user.last_sync_at,
            migrated_at=user.migrated_at,
            last_error=user.last_error,
            subscription_id=user.subscription_id,
            subscription_expires_at=user.subscription_expires_at,
            delta_link=user.delta_link,
            delta_since=user.delta_since,
            delta_window=user.delta_window,
            updated_at=clock.now(),
        )

    # A list the migration's To Do run made was saved at once: its row is the newest this run holds (the
    # calendar's own is one save behind it), so the save starts there instead of losing a race to it.
    held = tasks.unsaved if tasks is not None and tasks.unsaved is not None else user
    done = await update_optimistically(
        starting_from(held, lambda: users.get(user.tenant_id, user.staff_id)),
        merged,
        users.save,
        attempts=5,
        contended=Conflict("staff_id", "the user is being changed concurrently"),
    )
    return done.saved if done.saved is not None else user


async def _record_error(services: MigrationPorts, tenant_id: str, staff_id: str, reason: str) -> None:
    user = await services.users.get(tenant_id, staff_id)
    if user is None:
        return
    await _save_user(
        services.users, services.clock, replace(user, sync_state=SyncState.ERROR, last_error=reason)
    )
    log.warning("sync failed: %s", reason)
    await maybe_finish_migration(services, tenant_id)


async def _retry_later(
    services: SyncPorts, job: SyncUser, kind: str, staff_id: str, error: RateLimited
) -> None:
    attempt = job.attempt + 1
    if THROTTLED.exhausted(attempt):
        await _record_error(
            services,
            job.tenant_id,
            staff_id,
            f"Microsoft Graph kept throttling this mailbox ({error.reason}); the next scheduled sync retries",
        )
        return
    delay = THROTTLED.delay_after(attempt, error.retry_after)
    retry = replace(job, staff_id=staff_id, kind=SyncMode(kind), attempt=attempt, delay_seconds=delay)
    await services.jobs.enqueue([retry])
    log.info("throttled; retrying in %d s (attempt %d)", delay, attempt)


async def maybe_finish_migration(services: MigrationPorts, tenant_id: str) -> None:
    """The tenant is active once every matched user finished (degraded when some failed)."""

    async def finished() -> tuple[Tenant, int, int] | None:
        """The migrating tenant with its matched and failed users, once no user has work left."""
        if await services.users.migration_pending(tenant_id):
            return None  # one cheap query per finished user; the reads below happen once
        tenant = await services.tenants.get(tenant_id)
        if tenant is None or tenant.state is not TenantState.MIGRATING:
            return None
        matched = [u for u in await services.users.list_all(tenant_id) if u.match is MatchStatus.MATCHED]
        failed = sum(1 for u in matched if u.sync_state is SyncState.ERROR)
        return tenant, len(matched), failed

    def migrated(found: tuple[Tenant, int, int] | None) -> Tenant | None:
        if found is None:
            return None
        tenant, _, failed = found
        state = TenantState.DEGRADED if failed else TenantState.ACTIVE
        return tenant.with_state(state, services.clock.now())

    try:
        done = await update_optimistically(finished, migrated, services.tenants.save, attempts=3)
    except StillContended:
        return
    if done.saved is None or done.read is None:
        return
    _, users, failed = done.read
    now = done.saved.updated_at  # when it was migrated
    await publish(
        services, tenant_id, [Change("tenant.migrated", tenant_id, {"users": users, "failed": failed}, now)]
    )


# --- requests from the API and the console -------------------------------------------------------------


async def request_user_resync(
    services: ResyncPorts, tenant_id: str, staff_id: str, *, force: bool = False
) -> UserRecord:
    """Read the user's whole window again and reconcile (with `force`, past the mass-deletion guard); the
    user's To Do list too, read whole, and the host's tasks for them not synced written again."""
    tenant = await get_tenant(services, tenant_id)
    if not tenant.state.connected:
        raise Conflict("tenant_id", f"the tenant is {tenant.state.value}")
    user = await services.users.get(tenant_id, staff_id)
    if user is None:
        raise NotFound("staff member", staff_id, "staff_id")
    if user.match is not MatchStatus.MATCHED:
        raise Conflict("staff_id", f"the staff member is {user.match.value}: rematch first")
    queued: list[jobs.Job] = [jobs.sync_user(tenant_id, staff_id, "requested", kind="resync", force=force)]
    if user.staff.switches.tasks_from_outlook:
        queued.append(jobs.sync_tasks(tenant_id, staff_id, "requested", kind=TaskMode.RESYNC))
    queued += [
        jobs.WriteTask(tenant_id, t.task_id)
        for t in await services.tasks.unsettled(tenant_id)
        if staff_id in (t.staff_id, t.task.staff_id if t.task is not None else None)
    ]
    await services.jobs.enqueue(queued)
    return user


async def request_tenant_resync(services: ResyncPorts, tenant_id: str, *, only_failed: bool = False) -> int:
    """Queue a full resync of every matched user (or only those in error), calendar and To Do list, and a
    write of every host task not synced (only the failed and partial ones, with `only_failed`); answers
    how many users."""
    tenant = await get_tenant(services, tenant_id)
    if not tenant.state.connected:
        raise Conflict("tenant_id", f"the tenant is {tenant.state.value}")
    users = await services.users.list_all(tenant_id)
    chosen = [
        u
        for u in users
        if u.match is MatchStatus.MATCHED and (not only_failed or u.sync_state is SyncState.ERROR)
    ]
    queued: list[jobs.Job] = [
        jobs.sync_user(tenant_id, u.staff_id, "requested", kind="resync") for u in chosen
    ]
    queued += [  # each To Do list (only those in error, with `only_failed`)
        jobs.sync_tasks(tenant_id, u.staff_id, "requested", kind=TaskMode.RESYNC)
        for u in users
        if u.match is MatchStatus.MATCHED
        and u.staff.switches.tasks_from_outlook
        and (not only_failed or u.task_sync.state is SyncState.ERROR)
    ]
    queued += [
        jobs.WriteTask(tenant_id, t.task_id)
        for t in await services.tasks.unsettled(tenant_id)
        if not only_failed or t.state is not TaskState.PENDING
    ]
    await services.jobs.enqueue(queued)
    await requeue_stalled_writes(services, tenant_id)  # what a resync cannot read back: the host's writes
    return len(chosen)
