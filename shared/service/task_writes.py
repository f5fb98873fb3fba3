"""Host to Outlook: the write job of a host task (`outlook-writes` queue, `WriteTask`).

Each pass brings the staff member's To Do list to the task's current revision, under the task's lease:
- the staff member must be matched, with `tasks_to_outlook` on; else the revision is `failed` with the
  reason (what is in To Do stays as it was);
- the list is the staff member's (`todo_lists.ensure_list`: found by name, made when missing);
- a task not written yet is made in one request, its link (the host's task id as `externalId`, the
  connector's `applicationName`) and checklist inline. Before the request the row records where it goes;
  a pass that finds such a record without a To Do id (a redelivered job, or a crash between Graph's
  answer and the save) looks the task up by its link first, so none is ever made twice;
- a written task is PATCHed whole (every member, so nothing of an earlier revision stays); its checklist
  items are added, changed or removed one by one, only those that changed since the last write (a step
  about to be added is noted on the row first, so a retry whose answer was lost finds it in the task's
  checklist instead of adding it twice). A task
  deleted in To Do meanwhile is made again: the host's revision is the newer one (the conflict policy
  decides only about Outlook changes the sync sees between host revisions);
- a task moved to another staff member (or list) is deleted from the old list and made in the new one;
- a deleted task is deleted from To Do (a 404 is success).
The outcome of each revision goes on the feed once it settles (`task.synced`, `task.failed`), before the
save that marks it reported; a later outcome that differs (a failed revision a retry, the nightly run or a
resync then wrote) is told too, each once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from shared.domain import recurrence as rrules
from shared.domain.tasks import (
    TASK_LINK_APPLICATION,
    HostTask,
    TaskDay,
    TaskRecord,
    TaskState,
    TaskStatus,
    WrittenChecklistItem,
    day_wall,
    utc_wall,
)
from shared.domain.tenants import Tenant
from shared.domain.timezones import graph_zone
from shared.domain.users import MatchStatus, UserRecord
from shared.observability import bound, get_logger
from shared.service import jobs, monitor
from shared.service.context import (
    UsesBusy,
    UsesItemStatuses,
    UsesJobs,
    UsesLeases,
    UsesMessages,
    UsesTasks,
    UsesTenants,
)
from shared.service.errors import (
    MailboxUnavailable,
    RateLimited,
    StaleWrite,
    TenantAccessError,
    TodoListMissing,
    TodoRefused,
    TodoTaskMissing,
)
from shared.service.jobs import CatchUpTasks, WriteTask
from shared.service.leasing import check_back, run_leased
from shared.service.monitor import Direction, MessageStatus, PushKind
from shared.service.ports.todo import (
    ChecklistDraft,
    ChecklistEntry,
    MailboxList,
    TaskLink,
    TodoDraft,
    TodoItem,
    WallTime,
)
from shared.service.publishing import PublishPorts, publish
from shared.service.records import Change
from shared.service.retries import THROTTLED, update_optimistically
from shared.service.task_statuses import note_deleted_task, note_written_task
from shared.service.tenants import TenantEventPorts, mark_consent_revoked
from shared.service.todo_lists import TodoListPorts, TodoListUnavailable, ensure_list

log = get_logger("tasks")

LEASE_TTL: Final = timedelta(minutes=2)
SAVE_ATTEMPTS: Final = 5
SWITCHED_OFF: Final = (
    "tasks_to_outlook is switched off for this staff member; what is in their To Do list is left as it was"
)
_PROBLEMS: Final = {
    MatchStatus.UNMATCHED: "the staff member matches no user of the organisation",
    MatchStatus.FORBIDDEN: "an access policy keeps the app out of the staff member's mailbox",
    MatchStatus.NO_MAILBOX: "the staff member has no Exchange Online mailbox",
    MatchStatus.DISABLED: "the staff member is disabled",
    MatchStatus.PENDING: "the staff member is not matched yet",
}


class TaskWritePorts(
    TodoListPorts,
    TenantEventPorts,
    PublishPorts,
    UsesTasks,
    UsesJobs,
    UsesLeases,
    UsesBusy,
    UsesItemStatuses,
    UsesMessages,
    Protocol,
):
    """The task write job: the task, the staff member and their list, To Do, the feed, a retry."""


class CatchUpTaskPorts(UsesTenants, UsesTasks, UsesJobs, Protocol):
    """Catching up a tenant's or a staff member's tasks: the tenant, its tasks, the queue."""


def task_link(task_id: str) -> TaskLink:
    return TaskLink(TASK_LINK_APPLICATION, task_id, f"Task {task_id}")


async def run_task_write(services: TaskWritePorts, job: WriteTask) -> None:
    """A job from the `outlook-writes` queue. Never raises for a condition a retry cannot fix."""

    async def write_pass(number: int) -> None:
        await _write_once(services, job if number == 0 else replace(job, attempt=0))

    with bound(tenant=job.tenant_id, task=job.task_id):
        key = f"{job.tenant_id}/tasks/{job.task_id}"
        if not await run_leased(services.leases, services.clock, key, LEASE_TTL, write_pass):
            await check_back(services.jobs, job, LEASE_TTL)


async def run_task_catch_up(services: CatchUpTaskPorts, job: CatchUpTasks) -> None:
    tenant = await services.tenants.get(job.tenant_id)
    if tenant is None or not tenant.state.connected:
        return
    if job.staff_id is None:
        named = await services.tasks.in_tenant(job.tenant_id)
    else:
        named = await services.tasks.naming(job.tenant_id, job.staff_id)
    await services.jobs.enqueue([jobs.WriteTask(job.tenant_id, r.task_id) for r in named])
    log.info("catching up tasks of %s: %d queued for writing", job.staff_id or "the tenant", len(named))


class _Throttled(Exception):
    """Graph throttled (or failed transiently) midway. Nothing is saved: what the pass did is on the row
    already (where a task is being made is saved before the request), and every step is idempotent."""

    def __init__(self, error: RateLimited) -> None:
        super().__init__(error.reason)
        self.error = error


async def _write_once(services: TaskWritePorts, job: WriteTask) -> None:
    started = services.clock.now()
    tenant = await services.tenants.get(job.tenant_id)
    if tenant is None or not tenant.state.connected:
        return
    record = await services.tasks.get(tenant.tenant_id, job.task_id)
    if record is None:
        return
    try:
        outcome = await _bring(services, tenant, record)
    except _Throttled as throttled:
        await _retry_later(services, job, throttled.error)
        gave_up = THROTTLED.exhausted(job.attempt + 1)
        status = MessageStatus.FAILED if gave_up else MessageStatus.RETRYING
        await _record_push(services, job, record, started, status, error=throttled.error.reason)
        return
    except TenantAccessError as error:
        await mark_consent_revoked(services, tenant.tenant_id, error.reason)
        await _record_push(services, job, record, started, MessageStatus.FAILED, error=error.reason)
        return
    await _report_and_save(services, outcome)
    status = MessageStatus.FAILED if outcome.state is TaskState.FAILED else MessageStatus.OK
    await _record_push(services, job, outcome, started, status, error=outcome.error)


async def _record_push(
    services: TaskWritePorts,
    job: WriteTask,
    record: TaskRecord,
    started: datetime,
    status: MessageStatus,
    *,
    error: str | None,
) -> None:
    """The write in the message monitor: a `push` of kind `task`, keyed by the host's task id, with where
    the task is in To Do (`removed` once the host deleted it)."""
    staff_id = record.task.staff_id if record.task is not None else record.staff_id
    state = record.state.value if record.task is not None else "removed"
    entry = monitor.message(
        record.tenant_id,
        Direction.PUSH,
        PushKind.TASK,
        status,
        record.task_id,
        started_at=started,
        at=services.clock.now(),
        staff_id=staff_id,
        attempts=job.attempt + 1,
        revision=record.revision,
        state=state,
        graph_user_id=record.graph_user_id,
        list_id=record.list_id,
        graph_task_id=record.graph_task_id,
        error=error,
    )
    await monitor.record(services.messages, [entry])


async def _bring(services: TaskWritePorts, tenant: Tenant, record: TaskRecord) -> TaskRecord:
    """The record once To Do holds its revision (or the reason it cannot). Raises _Throttled."""
    task = record.task
    try:
        if task is None:
            record = await _remove(services, tenant, record)
            return replace(record, state=TaskState.SYNCED, error=None, written_revision=record.revision)
        user = await services.users.get(tenant.tenant_id, task.staff_id)
        problem = _problem(user, task)
        if problem is not None:
            return replace(record, state=TaskState.FAILED, error=problem)
        assert user is not None and user.graph_user_id is not None
        try:
            user, list_id = await ensure_list(services, tenant, user)
        except TodoListUnavailable as unavailable:
            return replace(record, state=TaskState.FAILED, error=unavailable.reason)
        assert user.graph_user_id is not None
        where = MailboxList(user.graph_user_id, list_id)
        if record.list_id is not None and (
            record.staff_id != task.staff_id
            or (record.graph_user_id, record.list_id) != (where.graph_user_id, where.list_id)
        ):
            record = await _remove(services, tenant, record)  # moved: out of the old list
        zone = await _zone(services, tenant, task)
        try:
            return await _write(services, tenant, record, task, where, zone=zone)
        except TodoListMissing:  # the list went away since it was found: find or make it again
            user, list_id = await ensure_list(services, tenant, user, stale=list_id)
            assert user.graph_user_id is not None
            record = replace(
                record, staff_id=None, graph_user_id=None, list_id=None, graph_task_id=None, checklist=()
            )
            return await _write(
                services, tenant, record, task, MailboxList(user.graph_user_id, list_id), zone=zone
            )
    except RateLimited as error:
        raise _Throttled(error) from error
    except (TodoRefused, MailboxUnavailable, TodoListUnavailable) as error:
        reason = getattr(error, "reason", None) or str(error)
        return replace(record, state=TaskState.FAILED, error=reason)


def _problem(user: UserRecord | None, task: HostTask) -> str | None:
    if user is None:
        return f"no staff member {task.staff_id} (PUT the staff member, then the task again)"
    if not user.staff.switches.tasks_to_outlook:
        return SWITCHED_OFF
    if user.match is not MatchStatus.MATCHED or user.graph_user_id is None:
        reason = _PROBLEMS.get(user.match, f"the staff member is {user.match.value}")
        return f"{reason}{': ' + user.match_reason if user.match_reason else ''}"
    return None


async def _zone(services: TaskWritePorts, tenant: Tenant, task: HostTask) -> str:
    """The IANA zone a due or start day is in: the task's, else the staff member's mailbox's, else UTC."""
    if task.time_zone:
        return task.time_zone
    if task.due is None and task.start is None:
        return "UTC"
    busy = await services.busy.read(tenant.tenant_id, task.staff_id)
    hours = busy.hours
    return hours.iana_zone if hours is not None and hours.iana_zone else "UTC"


def _day_time(value: TaskDay | None, zone: str) -> WallTime | None:
    if value is None:
        return None
    day_zone = value.zone or zone
    midnight = day_wall(value)
    local = midnight.replace(tzinfo=ZoneInfo(day_zone))
    windows = graph_zone(day_zone, local, local + timedelta(days=1))
    if windows is None:  # no Windows zone keeps this day: the same instant, in UTC
        return WallTime(utc_wall(local), "UTC")
    return WallTime(midnight, windows)


def draft_of(task: HostTask, zone: str, now: datetime) -> TodoDraft:
    completed = task.completed_at or (now if task.status is TaskStatus.COMPLETED else None)
    recurrence = None
    if task.recurrence and task.due is not None:
        recurrence = rrules.to_graph(task.recurrence, task.due.day, task.due.zone or zone)
    return TodoDraft(
        title=task.title,
        body=task.body,
        body_type=task.body_type,
        importance=task.importance.value,
        status=task.status.graph,
        due=_day_time(task.due, zone),
        start=_day_time(task.start, zone),
        reminder=WallTime(utc_wall(task.reminder_at), "UTC") if task.reminder_at else None,
        completed=WallTime(utc_wall(completed), "UTC")
        if completed and task.status is TaskStatus.COMPLETED
        else None,
        categories=task.categories,
        recurrence=recurrence,
    )


async def _write(
    services: TaskWritePorts,
    tenant: Tenant,
    record: TaskRecord,
    task: HostTask,
    where: MailboxList,
    *,
    zone: str,
) -> TaskRecord:
    draft = draft_of(task, zone, services.clock.now())
    link = task_link(task.task_id)
    placed_here = record.list_id == where.list_id and record.graph_user_id == where.graph_user_id
    done = record.state is TaskState.SYNCED and record.written_revision == record.revision
    if placed_here and record.graph_task_id is not None and done:
        return record  # To Do holds this revision in this list already (a redelivered job, a catch-up)
    if placed_here and record.graph_task_id is None:  # a create whose answer may have been lost
        found = await services.todo.find_task(tenant, where, link)
        if found is not None:
            record = _adopted(record, task, found)
    if placed_here and record.graph_task_id is not None:
        # Noted before and after (task_statuses): the list's sync never reports the connector's own change.
        await note_written_task(
            services.item_statuses, tenant.tenant_id, task.staff_id, record.graph_task_id, None, task.task_id
        )
        try:
            item = await services.todo.update_task(tenant, where, record.graph_task_id, draft)
        except TodoTaskMissing:  # deleted in To Do: the host's newer revision makes it again
            record = replace(record, graph_task_id=None, checklist=())
        else:
            await note_written_task(
                services.item_statuses, tenant.tenant_id, task.staff_id, item.id, item.etag, task.task_id
            )
            record = replace(record, written_etag=item.etag)
            return await _sync_checklist(services, tenant, where, record, task)
    # Record where the task goes before making it, so a retry looks it up by its link first (this pass
    # goes on with its own revision: one saved meanwhile is the next pass's).
    record = replace(record, staff_id=task.staff_id, graph_user_id=where.graph_user_id, list_id=where.list_id)
    await _save(services, record)
    steps = [ChecklistDraft(c.title, c.checked) for c in task.checklist]
    item = await services.todo.create_task(tenant, where, draft, link, steps)
    await note_written_task(
        services.item_statuses, tenant.tenant_id, task.staff_id, item.id, item.etag, task.task_id
    )
    written = tuple(
        WrittenChecklistItem(c.id, made.id, c.title, c.checked)
        for c, made in zip(task.checklist, item.checklist, strict=False)
    )
    return replace(
        record,
        graph_task_id=item.id,
        checklist=written,
        written_etag=item.etag,
        state=TaskState.SYNCED,
        error=None,
        written_revision=record.revision,
    )


async def _settled_adds(
    services: TaskWritePorts, tenant: Tenant, where: MailboxList, record: TaskRecord
) -> TaskRecord:
    """The steps an earlier pass asked To Do to add without hearing back (`adding`): each taken from the
    task's checklist by its title (an item the record does not know yet), else known never made."""
    if not any(c.adding for c in record.checklist):
        return record
    assert record.graph_task_id is not None
    try:
        held = await services.todo.checklist_items(tenant, where, record.graph_task_id)
    except TodoTaskMissing:
        held = ()
    known = {c.graph_id for c in record.checklist if not c.adding}
    free = [e for e in held if e.id not in known]
    settled: list[WrittenChecklistItem] = []
    for step in record.checklist:
        match = next((e for e in free if e.title == step.title), None) if step.adding else None
        if match is not None:
            free.remove(match)
            settled.append(replace(step, graph_id=match.id, checked=match.checked))
        elif not step.adding:
            settled.append(step)
    return replace(record, checklist=tuple(settled))


def _adopted(record: TaskRecord, task: HostTask, found: TodoItem) -> TaskRecord:
    """A task found by its link after a lost answer: its checklist items taken for the host's steps of the
    same title, in order; any other is recorded under no step of the host's, so the next sync removes it."""
    unmatched = list(found.checklist)
    adopted: list[WrittenChecklistItem] = []
    for step in task.checklist:
        match = next((e for e in unmatched if e.title == step.title), None)
        if match is not None:
            unmatched.remove(match)
            adopted.append(WrittenChecklistItem(step.id, match.id, match.title, match.checked))
    adopted.extend(WrittenChecklistItem(f"~{e.id}", e.id, e.title, e.checked) for e in unmatched)
    return replace(record, graph_task_id=found.id, checklist=tuple(adopted))


async def _sync_checklist(
    services: TaskWritePorts, tenant: Tenant, where: MailboxList, record: TaskRecord, task: HostTask
) -> TaskRecord:
    assert record.graph_task_id is not None
    task_id = record.graph_task_id
    record = await _settled_adds(services, tenant, where, record)
    written = {c.id: c for c in record.checklist}
    adds = tuple(
        WrittenChecklistItem(c.id, "", c.title, c.checked) for c in task.checklist if c.id not in written
    )
    if adds:  # noted before they are asked for: a retry after a lost answer looks them up first
        await _save(services, replace(record, checklist=record.checklist + adds))
    kept: list[WrittenChecklistItem] = []
    problems: list[str] = []
    for item in task.checklist:
        old = written.pop(item.id, None)
        try:
            if old is None:
                made = await services.todo.add_checklist_item(
                    tenant, where, task_id, ChecklistDraft(item.title, item.checked)
                )
                kept.append(WrittenChecklistItem(item.id, made, item.title, item.checked))
            elif (old.title, old.checked) != (item.title, item.checked):
                await services.todo.update_checklist_item(
                    tenant, where, task_id, ChecklistEntry(old.graph_id, item.title, item.checked)
                )
                kept.append(replace(old, title=item.title, checked=item.checked))
            else:
                kept.append(old)
        except (TodoRefused, TodoTaskMissing) as error:
            problems.append(f"step {item.id}: {getattr(error, 'reason', None) or error}")
            if old is not None:
                kept.append(old)
    for gone in written.values():
        await services.todo.delete_checklist_item(tenant, where, task_id, gone.graph_id)
    state = TaskState.PARTIAL if problems else TaskState.SYNCED
    return replace(
        record,
        checklist=tuple(kept),
        state=state,
        error="; ".join(problems) or None,
        written_revision=record.revision,
    )


async def _remove(services: TaskWritePorts, tenant: Tenant, record: TaskRecord) -> TaskRecord:
    """Out of the list it was written to (a create whose answer was lost is found by its link first)."""
    if record.graph_user_id is None or record.list_id is None:
        return record
    where = MailboxList(record.graph_user_id, record.list_id)
    try:
        graph_task_id = record.graph_task_id
        if graph_task_id is None:
            found = await services.todo.find_task(tenant, where, task_link(record.task_id))
            graph_task_id = found.id if found else None
        if graph_task_id is not None:
            if record.staff_id is not None:  # forgotten first: the list's sync reports no removal
                await note_deleted_task(
                    services.item_statuses, tenant.tenant_id, record.staff_id, graph_task_id
                )
            await services.todo.delete_task(tenant, where, graph_task_id)
    except (TodoListMissing, MailboxUnavailable):
        pass  # the list or the mailbox is gone, and the task with it
    return replace(record, staff_id=None, graph_user_id=None, list_id=None, graph_task_id=None, checklist=())


async def _save(services: TaskWritePorts, progress: TaskRecord) -> TaskRecord:
    """Keep what this pass did (where the task is) on the row as it is now; its revision's outcome only if
    the row is still at that revision."""

    def merged(current: TaskRecord | None) -> TaskRecord | None:
        if current is None:
            return None
        placed = replace(
            current,
            staff_id=progress.staff_id,
            graph_user_id=progress.graph_user_id,
            list_id=progress.list_id,
            graph_task_id=progress.graph_task_id,
            checklist=progress.checklist,
            written_etag=progress.written_etag,
        )
        if current.revision != progress.revision:
            return replace(placed, state=TaskState.PENDING)
        told = _told(current, progress)
        return replace(
            placed,
            state=progress.state,
            error=progress.error,
            written_revision=progress.written_revision,
            reported_revision=told.reported_revision,
            reported_state=told.reported_state,
        )

    done = await update_optimistically(
        lambda: services.tasks.get(progress.tenant_id, progress.task_id),
        merged,
        services.tasks.save,
        attempts=SAVE_ATTEMPTS,
        races=(StaleWrite,),
    )
    return done.latest or progress


def _told(current: TaskRecord, progress: TaskRecord) -> TaskRecord:
    """Whose told outcome is the later, the stored row's or this pass's (this pass's for the same
    revision: it read the row before telling)."""
    return progress if progress.reported_revision >= current.reported_revision else current


async def _report_and_save(services: TaskWritePorts, outcome: TaskRecord) -> None:
    """Tell the revision's outcome once it settled (`TaskRecord.unreported`), then save it told."""
    if not outcome.unreported:
        await _save(services, outcome)
        return
    current = await services.tasks.get(outcome.tenant_id, outcome.task_id)
    if current is not None and current.revision != outcome.revision:
        await _save(services, outcome)  # a newer revision came meanwhile: its pass reports it
        return
    await publish(services, outcome.tenant_id, [outcome_change(outcome, services.clock.now())])
    await _save(services, replace(outcome, reported_revision=outcome.revision, reported_state=outcome.state))


def outcome_change(record: TaskRecord, at: datetime) -> Change:
    kind = "task.failed" if record.state is TaskState.FAILED else "task.synced"
    staff_id = record.task.staff_id if record.task is not None else record.staff_id
    data = {
        "task_id": record.task_id,
        "staff_id": staff_id,
        "revision": record.revision,
        "state": record.state.value,
        "deleted": record.task is None,
        "graph_task_id": record.graph_task_id,
        "list_id": record.list_id,
        "error": record.error,
    }
    return Change(kind, record.tenant_id, data, at.astimezone(UTC), staff_id=staff_id)


async def _retry_later(services: TaskWritePorts, job: WriteTask, error: RateLimited) -> None:
    attempt = job.attempt + 1
    if THROTTLED.exhausted(attempt):
        log.warning("gave up writing the task after %d attempts: %s", attempt - 1, error.reason)
        return
    delay = THROTTLED.delay_after(attempt, error.retry_after)
    await services.jobs.enqueue([replace(job, attempt=attempt, delay_seconds=delay)])
    log.info("throttled; writing the task again in %d s (attempt %d)", delay, attempt)
