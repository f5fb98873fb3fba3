"""Staff members: store what the host says, match them to directory users, list them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Final, Protocol, TypeVar

from shared.domain.tenants import Tenant, UserScope
from shared.domain.users import (
    DirectoryIndex,
    DirectoryUser,
    MailboxAccess,
    Match,
    MatchedBy,
    MatchStatus,
    StaffMember,
    StaffSwitches,
    SyncState,
    UserRecord,
    apply_mailbox_access,
    match_staff,
)
from shared.observability import bound, get_logger
from shared.service import jobs
from shared.service.context import UsesBusy, UsesClock, UsesJobs, UsesUsers
from shared.service.errors import AlreadyExists, Conflict, NotFound, StaleWrite
from shared.service.ports.clock import Clock
from shared.service.ports.graph import DirectoryGateway
from shared.service.ports.tenancy import UserRepository
from shared.service.records import UserPage, UserQuery
from shared.service.retries import StillContended, starting_from, update_optimistically
from shared.service.teams_status import TeamsStatusPorts, with_teams
from shared.service.tenants import TenantPorts, get_tenant

log = get_logger("users")


class StaffPorts(TenantPorts, UsesUsers, Protocol):
    """Listing staff members: the tenant's row and its users."""


class RematchPorts(TenantPorts, UsesJobs, Protocol): ...


class StaffRemovalPorts(StaffPorts, UsesBusy, UsesJobs, Protocol):
    """Removing a staff member: its row and its availability state now, the rest by a queued job."""


class SwitchPorts(StaffPorts, UsesJobs, UsesClock, Protocol):
    """Setting staff members' switches, and queueing what follows."""


class MatchPorts(StaffPorts, RematchPorts, TeamsStatusPorts, UsesClock, Protocol):
    """Storing and matching staff members (their mailbox and Teams status), and queueing the migrations
    that calls for."""


DISABLED_BY_HOST = Match(MatchStatus.DISABLED, reason="the host disabled this staff member")


async def put_staff(
    services: MatchPorts, tenant_id: str, staff: StaffMember, switches: Mapping[str, bool] | None = None
) -> UserRecord:
    """Create or update a staff member and match them at once when the tenant is connected.

    `switches`: the switches the PUT sets; the others keep their value (a new member's: the defaults).
    None: `staff.switches` as given, all of them."""
    tenant = await get_tenant(services, tenant_id)
    if tenant.state.gone:
        raise Conflict("tenant_id", f"the tenant is {tenant.state.value}")
    with bound(tenant=tenant_id, user=staff.staff_id):
        match: Match | None = None
        if tenant.state.connected:
            match = (
                await with_teams(services, tenant, [await _match_one(services.directory, tenant, staff)])
            )[0]

        def stored(existing: UserRecord | None) -> UserRecord:
            now = services.clock.now()
            given = staff
            if switches is not None:
                current = existing.staff.switches if existing else StaffSwitches()
                given = replace(staff, switches=current.changed(switches))
            record = (
                replace(existing, staff=given, updated_at=now)
                if existing
                else UserRecord(tenant_id, given, MatchStatus.PENDING, now)
            )
            if match is not None:
                record = record.with_match(match, now)
            return record

        done = await update_optimistically(
            lambda: services.users.get(tenant_id, staff.staff_id),
            stored,
            services.users.save,
            attempts=5,
            races=(StaleWrite, AlreadyExists),
            contended=Conflict("staff_id", "the staff member is being changed concurrently; retry"),
        )
        existing, saved = done.read, done.saved
        assert saved is not None
        before = (existing.match, existing.graph_user_id) if existing else (MatchStatus.PENDING, None)
        queued: list[jobs.Job] = []
        migrating = _needs_migration(saved, before, existing is None)
        if migrating:
            queued.append(jobs.migrate_user(tenant_id, staff.staff_id))
        if existing is not None:
            queued += switch_follow_ups(existing, saved, migrating=migrating)
            if existing.staff.todo_list_name != saved.staff.todo_list_name:
                queued += list_renamed(saved)
        await services.jobs.enqueue(queued)
        log.info("staff member stored: %s", saved.match.value)
        return saved


async def set_switches(
    services: SwitchPorts, tenant_id: str, staff_ids: Sequence[str], switches: Mapping[str, bool]
) -> list[UserRecord]:
    """Set some switches of many staff members (the console's mass update); each changed one's directions
    follow at once (`switch_follow_ups`). Every staff member must exist: nothing changes otherwise."""
    tenant = await get_tenant(services, tenant_id)
    if tenant.state.gone:
        raise Conflict("tenant_id", f"the tenant is {tenant.state.value}")
    current = {u.staff_id: u for u in await services.users.list_all(tenant_id)}
    for index, staff_id in enumerate(staff_ids):
        if staff_id not in current:
            raise NotFound("staff member", staff_id, f"staff_ids[{index}]")
    updated: list[UserRecord] = []
    follow_ups: list[jobs.Job] = []
    for staff_id in staff_ids:
        before, saved = await _switched(services, current[staff_id], switches)
        if saved is None:  # deleted meanwhile
            continue
        updated.append(saved)
        if before is not None:
            follow_ups += switch_follow_ups(before, saved)
    await services.jobs.enqueue(follow_ups)
    log.info("switches %s set for %d staff members", switches, len(updated))
    return updated


async def _switched(
    services: SwitchPorts, record: UserRecord, switches: Mapping[str, bool]
) -> tuple[UserRecord | None, UserRecord | None]:
    """The row before and after setting the switches (after: None when it was deleted meanwhile)."""

    def changed(current: UserRecord | None) -> UserRecord | None:
        if current is None:
            return None
        staff = replace(current.staff, switches=current.staff.switches.changed(switches))
        if staff == current.staff:
            return None
        return replace(current, staff=staff, updated_at=services.clock.now())

    done = await update_optimistically(
        starting_from(record, lambda: services.users.get(record.tenant_id, record.staff_id)),
        changed,
        services.users.save,
        attempts=5,
        races=(StaleWrite,),
        contended=Conflict("staff_ids", f"{record.staff_id} is being changed concurrently; retry"),
    )
    return done.read, done.latest


def list_renamed(user: UserRecord) -> list[jobs.Job]:
    """The staff member's To Do list is named otherwise now: the host's tasks move to it (`CatchUpTasks`)
    and the list's run follows it at once (subscribed and read whole; what the staff member left in the
    old list is `moved` out of the list)."""
    if user.match is not MatchStatus.MATCHED:
        return []
    queued: list[jobs.Job] = []
    if user.staff.switches.tasks_to_outlook:
        queued.append(jobs.CatchUpTasks(user.tenant_id, user.staff_id))
    if user.staff.switches.tasks_from_outlook:
        queued.append(jobs.sync_tasks(user.tenant_id, user.staff_id, "list_renamed"))
    return queued


def switch_follow_ups(before: UserRecord, after: UserRecord, *, migrating: bool = False) -> list[jobs.Job]:
    """What a switch change sets going for a matched staff member: `calendar_to_outlook` or `video`
    changed, a write of every appointment naming them (their copies written, marked disabled, given or
    relieved of the join details); `calendar_from_outlook` turned on, a full read of their calendar, which
    announces once what changed while it was off (the item statuses still hold what the host was told),
    unless a migration, which reads it all anyway, is queued; `tasks_from_outlook` turned on, a full read of
    their To Do list, likewise; `tasks_to_outlook` turned on, a write of every task naming them
    (`CatchUpTasks`; the writes find what they made before, so none twice)."""
    if after.match is not MatchStatus.MATCHED:
        return []
    old, new = before.staff.switches, after.staff.switches
    queued: list[jobs.Job] = []
    if (old.calendar_to_outlook, old.video) != (new.calendar_to_outlook, new.video):
        queued.append(jobs.CatchUpWrites(after.tenant_id, after.staff_id))
    if new.calendar_from_outlook and not old.calendar_from_outlook and not migrating:
        queued.append(jobs.sync_user(after.tenant_id, after.staff_id, "switched_on", kind="resync"))
    if new.tasks_from_outlook and not old.tasks_from_outlook and not migrating:
        # The whole list against the statuses kept while off (the first read links and announces, too).
        queued.append(
            jobs.sync_tasks(after.tenant_id, after.staff_id, "switched_on", kind=jobs.TaskMode.RESYNC)
        )
    if new.tasks_to_outlook and not old.tasks_to_outlook:
        queued.append(jobs.CatchUpTasks(after.tenant_id, after.staff_id))
    return queued


def _needs_migration(record: UserRecord, before: tuple[MatchStatus, str | None], created: bool) -> bool:
    if record.match is not MatchStatus.MATCHED:
        return False
    return created or before != (record.match, record.graph_user_id) or record.sync_state is SyncState.PENDING


async def _match_one(directory: DirectoryGateway, tenant: Tenant, staff: StaffMember) -> Match:
    if not staff.enabled:
        return DISABLED_BY_HOST
    candidates = await directory.find_candidates(tenant, staff)
    match = match_staff(staff, candidates)
    if match.status is MatchStatus.MATCHED and match.user is not None:
        access = await directory.mailbox_access(tenant, [match.user.id])
        match = apply_mailbox_access(match, access.get(match.user.id, MailboxAccess.OK))
    return match


async def delete_staff(services: StaffRemovalPorts, tenant_id: str, staff_id: str) -> None:
    await get_tenant(services, tenant_id)
    user = await services.users.get(tenant_id, staff_id)
    if user is None:
        raise NotFound("staff member", staff_id, "staff_id")
    # The clean-up is queued before the row goes, so a request that dies in between leaves the job (or,
    # before it, the row for the host's retry); once the row is gone nothing syncs the user any more.
    await services.jobs.enqueue([jobs.remove_staff(tenant_id, staff_id, user.subscription_id or "")])
    await services.users.delete(tenant_id, staff_id)
    await services.busy.delete_user(tenant_id, staff_id)  # its time is no one's to offer any more


async def list_users(
    services: StaffPorts, tenant_id: str, query: UserQuery, *, kept: bool = False
) -> UserPage:
    """The host's `GET /users` reads the users now; the console's polling (`kept`) a listing a few seconds
    old at most."""
    await get_tenant(services, tenant_id)
    return await services.users.query(tenant_id, query, kept=kept)


async def request_rematch(services: RematchPorts, tenant_id: str) -> Tenant:
    tenant = await get_tenant(services, tenant_id)
    if not tenant.state.connected:
        raise Conflict(
            "tenant_id", f"the tenant is {tenant.state.value}; it must be connected to match users"
        )
    await services.jobs.enqueue([jobs.rematch(tenant_id)])
    return tenant


async def match_all(services: MatchPorts, tenant_id: str) -> int:
    """Match every staff member against one listing of the directory (the queued discovery/rematch job).

    The matched users go a chunk at a time (`CHUNK`): their mailboxes are probed, their rows saved in one
    transaction and their migrations queued, so migration starts while discovery goes on; the users with
    nothing to probe follow. Returns the number of users queued for migration.
    """
    tenant = await services.tenants.get(tenant_id)
    if tenant is None or not tenant.state.connected:
        return 0
    with bound(tenant=tenant_id):
        directory = await services.directory.list_users(tenant)
        index = DirectoryIndex(directory)
        by_id = {user.id: user for user in directory}
        records = await services.users.list_all(tenant_id)
        if tenant.settings.user_scope is UserScope.ALL_USERS:
            records = records + _directory_only_records(services.clock, tenant_id, records, directory)
        matches = [(record, _bulk_match(record, index, by_id)) for record in records]
        to_probe = [(r, m) for r, m in matches if m.status is MatchStatus.MATCHED and m.user is not None]
        rest = [(r, m) for r, m in matches if not (m.status is MatchStatus.MATCHED and m.user is not None)]
        queued = 0
        for chunk in _chunks(to_probe):
            access = await services.directory.mailbox_access(tenant, [m.user.id for _, m in chunk if m.user])
            probed = [
                apply_mailbox_access(m, access.get(m.user.id, MailboxAccess.OK)) if m.user else m
                for _, m in chunk
            ]
            teams = await with_teams(services, tenant, probed)
            queued += await _save_and_queue(
                services, tenant_id, [(r, m) for (r, _), m in zip(chunk, teams, strict=True)]
            )
        for start in range(0, len(rest), CHUNK):
            part = rest[start : start + CHUNK]
            teams = await with_teams(services, tenant, [m for _, m in part])
            queued += await _save_and_queue(
                services, tenant_id, [(r, m) for (r, _), m in zip(part, teams, strict=True)]
            )
        log.info("matched %d users, %d queued for migration", len(records), queued)
        return queued


T = TypeVar("T")
CHUNK: Final = 100  # users per transaction (Table Storage's limit) and per batch of queued migrations
FIRST_CHUNK: Final = 20  # one probe `$batch`: the first migrations start after one round trip, not five


def _chunks(items: Sequence[T]) -> list[Sequence[T]]:
    """A small first chunk, then full ones."""
    first = list(items[:FIRST_CHUNK])
    rest = items[FIRST_CHUNK:]
    return ([first] if first else []) + [rest[s : s + CHUNK] for s in range(0, len(rest), CHUNK)]


async def _save_and_queue(
    services: MatchPorts, tenant_id: str, matches: Sequence[tuple[UserRecord, Match]]
) -> int:
    """Save the matches (one transaction where nobody raced us) and queue the migrations they call for."""
    now = services.clock.now()
    results: dict[str, UserRecord | None] = {}
    to_save: list[UserRecord] = []
    for record, match in matches:
        updated = record.with_match(match, now)
        if record.etag is not None and _match_fields(updated) == _match_fields(record):
            results[record.staff_id] = record
        else:
            to_save.append(updated)
    for updated, saved in zip(to_save, await services.users.save_all(to_save), strict=True):
        results[updated.staff_id] = saved
    for record, match in matches:  # those that lost a race to another writer: re-read and decide again
        if results[record.staff_id] is None:
            results[record.staff_id] = await _save_match(services.users, services.clock, record, match)
    queued = [
        jobs.migrate_user(tenant_id, saved.staff_id)
        for saved in results.values()
        if saved is not None and saved.match is MatchStatus.MATCHED and saved.sync_state is SyncState.PENDING
    ]
    await services.jobs.enqueue(queued)
    return len(queued)


def _bulk_match(record: UserRecord, index: DirectoryIndex, by_id: Mapping[str, DirectoryUser]) -> Match:
    if not record.staff.enabled:
        return DISABLED_BY_HOST
    if record.matched_by is MatchedBy.DIRECTORY:
        user = by_id.get(record.graph_user_id or "")
        if user is None or not user.account_enabled:
            return Match(MatchStatus.DISABLED, user, MatchedBy.DIRECTORY, "left the directory")
        return Match(MatchStatus.MATCHED, user, MatchedBy.DIRECTORY)
    return match_staff(record.staff, index.candidates(record.staff))


def _directory_only_records(
    clock: Clock, tenant_id: str, known: Sequence[UserRecord], directory: Sequence[DirectoryUser]
) -> list[UserRecord]:
    """The all-users scope: every enabled directory user nobody on the host's staff already matches."""
    taken = {r.graph_user_id for r in known if r.graph_user_id} | {r.staff_id for r in known}
    now = clock.now()
    return [
        UserRecord(
            tenant_id,
            StaffMember(user.id, user.mail, user.user_principal_name, user.display_name),
            MatchStatus.PENDING,
            now,
            graph_user_id=user.id,
            matched_by=MatchedBy.DIRECTORY,
        )
        for user in directory
        if user.account_enabled and user.id not in taken
    ]


async def _save_match(
    users: UserRepository, clock: Clock, record: UserRecord, match: Match
) -> UserRecord | None:

    def matched(current: UserRecord | None) -> UserRecord | None:
        if current is None:  # deleted meanwhile
            return None
        updated = current.with_match(match, clock.now())
        if current.etag is not None and _match_fields(updated) == _match_fields(current):
            return None
        return updated

    try:
        done = await update_optimistically(
            starting_from(record, lambda: users.get(record.tenant_id, record.staff_id)),
            matched,
            users.save,
            attempts=5,
            races=(StaleWrite, AlreadyExists),
        )
    except StillContended:
        log.warning("gave up saving the match of %s after repeated races", record.staff_id)
        return None
    return done.latest


def _match_fields(record: UserRecord) -> tuple[object, ...]:
    return (
        record.match,
        record.graph_user_id,
        record.matched_by,
        record.match_reason,
        record.sync_state,
        record.teams,
        record.teams_reason,
    )
