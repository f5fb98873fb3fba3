"""The queues and the jobs that travel on them, as frozen records.

Each record knows its queue and its kind (the `kind` member of its message, see `job_codec`); its other
fields are the message's other members. `delay_seconds` is how long it waits on the queue, not a member.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import ClassVar, Final, TypeAlias

SYNC_QUEUE: Final = "sync-jobs"  # per-user work: migrate, sync, resync, renew, a deletion's clean-up
TENANT_QUEUE: Final = "tenant-jobs"  # per-tenant work: discover, rematch, disconnect, fan-out
DELIVERY_QUEUE: Final = "host-deliveries"  # signed webhooks to the host
WRITE_QUEUE: Final = "outlook-writes"  # host appointments written to Outlook
QUEUES: Final = (SYNC_QUEUE, TENANT_QUEUE, DELIVERY_QUEUE, WRITE_QUEUE)
MAX_DEQUEUE: Final = 5  # host.json's queues.maxDequeueCount: the last try of a message


# Kinds that carry the same fields share a record, its `kind` a member of an enum (`TenantWork`,
# `SyncMode`, below); the other records' kind is a class constant.


@dataclass(frozen=True, slots=True)
class TenantJob:
    """Per-tenant work (`tenant-jobs`)."""

    tenant_id: str
    kind: TenantWork
    delay_seconds: int = 0
    queue: ClassVar[str] = TENANT_QUEUE


@dataclass(frozen=True, slots=True)
class SyncUser:
    """One user's calendar (`sync-jobs`)."""

    tenant_id: str
    staff_id: str
    kind: SyncMode
    reason: str = "notified"  # what asked for it, for the log
    force: bool = False  # a requested resync reads the whole window even if it read it lately
    attempt: int = 0  # throttled runs so far
    check_back: int = 0  # runs queued again because another worker held the user's lease
    marked_at: str | None = None  # a follow-up catch-up: the notification mark that queued it (ISO 8601)
    delay_seconds: int = 0
    queue: ClassVar[str] = SYNC_QUEUE


@dataclass(frozen=True, slots=True)
class SyncTasks:
    """One user's To Do list, Outlook to host (`sync-jobs`): its own lease, state and subscription, so the
    list never holds up the calendar."""

    tenant_id: str
    staff_id: str
    kind: TaskMode
    reason: str = "notified"
    attempt: int = 0  # throttled runs so far
    check_back: int = 0  # runs queued again because another worker held the list's lease
    marked_at: str | None = None  # a follow-up catch-up: the notification mark that queued it (ISO 8601)
    delay_seconds: int = 0
    queue: ClassVar[str] = SYNC_QUEUE


@dataclass(frozen=True, slots=True)
class Notified:
    """Graph notified a change in a mailbox (`sync-jobs`); the worker finds the user through the
    subscription index. Graph names the directory, not the connector's tenant: the webhook queues it
    without a table read."""

    directory_id: str
    subscription_id: str
    graph_user_id: str
    delay_seconds: int = 0
    queue: ClassVar[str] = SYNC_QUEUE
    kind: ClassVar[str] = "notified"


@dataclass(frozen=True, slots=True)
class RemoveStaff:
    """Finish a staff member's deletion (`sync-jobs`): their row is gone; their Graph subscription (the one
    named, and any the index still lists for them), its index row, their item statuses, availability state
    and sync lease go now. Idempotent: a redelivered or retried job finds less to delete."""

    tenant_id: str
    staff_id: str
    subscription_id: str = ""  # the subscription the row named when it was deleted ("" for none)
    check_back: int = 0  # runs queued again because a sync run of the user held the lease
    delay_seconds: int = 0
    queue: ClassVar[str] = SYNC_QUEUE
    kind: ClassVar[str] = "remove_staff"


# --- appointment writes (`outlook-writes`) and deliveries (`host-deliveries`) -----------------------


@dataclass(frozen=True, slots=True)
class WriteAppointment:
    """Bring every staff calendar to the appointment's current revision. `recheck` (staff ids): copies a
    delta read saw changed in Outlook, to be checked (and, by the tenant's policy, put back); `events`: the
    items it saw changed (ids of a series' occurrences)."""

    tenant_id: str
    appointment_id: str
    reason: str = "changed"
    revision: int | None = None  # the revision that asked for it, for the log
    recheck: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    attempt: int = 0
    check_back: int = 0
    delay_seconds: int = 0
    queue: ClassVar[str] = WRITE_QUEUE
    kind: ClassVar[str] = "write"


@dataclass(frozen=True, slots=True)
class CatchUpWrites:
    """A staff member's `calendar_to_outlook` or `video` switch changed: queue a write of every appointment
    that names them, so their copies follow (written, marked disabled, join details added or taken off).
    The writes are idempotent, so a copy already right costs nothing and none is made twice."""

    tenant_id: str
    staff_id: str
    delay_seconds: int = 0
    queue: ClassVar[str] = WRITE_QUEUE
    kind: ClassVar[str] = "catch_up_writes"


@dataclass(frozen=True, slots=True)
class Deliver:
    """Post the feed's changes first..last (inclusive) to the host's webhook, signed."""

    tenant_id: str
    first: int
    last: int
    attempt: int = 0  # failed tries so far
    delay_seconds: int = 0
    queue: ClassVar[str] = DELIVERY_QUEUE
    kind: ClassVar[str] = "deliver"

    def __post_init__(self) -> None:
        if self.first < 1 or self.last < self.first or self.attempt < 0:
            raise ValueError(f"bad range {self.first}-{self.last} (attempt {self.attempt})")


@dataclass(frozen=True, slots=True)
class SendMail:
    """Send the host's message from the staff member's mailbox, exactly once (`mail_send.py`). Rides the
    `outlook-writes` queue with the other writes into mailboxes."""

    tenant_id: str
    message_id: str
    attempt: int = 0  # throttled or uncertain tries so far
    check_back: int = 0
    delay_seconds: int = 0
    queue: ClassVar[str] = WRITE_QUEUE
    kind: ClassVar[str] = "send_mail"


@dataclass(frozen=True, slots=True)
class WriteTask:
    """Bring the staff member's To Do list to the host task's current revision (`task_writes.py`)."""

    tenant_id: str
    task_id: str
    revision: int | None = None  # the revision that asked for it, for the log
    attempt: int = 0
    check_back: int = 0
    delay_seconds: int = 0
    queue: ClassVar[str] = WRITE_QUEUE
    kind: ClassVar[str] = "write_task"


@dataclass(frozen=True, slots=True)
class CatchUpTasks:
    """Queue a write of every task naming the staff member (their `tasks_to_outlook` switch turned on, their
    `todo_list_name` changed), or of every task of the tenant (`staff_id` None: its `todo_list_name`)."""

    tenant_id: str
    staff_id: str | None
    delay_seconds: int = 0
    queue: ClassVar[str] = WRITE_QUEUE
    kind: ClassVar[str] = "catch_up_tasks"


# The renewal timer's reason for a renewal job: renewing a subscription Graph still holds reads nothing
# (a lifecycle `reauthorizationRequired`, whose notifications may have paused, and a recreated one catch up).
RENEWAL_REASON: Final = "renewal"
# The nightly run's reason: its reconciliation renews a subscription only when the renewal timer would
# (the timer confirms every subscription with Graph's listing meanwhile), and takes a mailbox zone read that
# night by the calendar's reconciliation for the To Do list's.
NIGHTLY_REASON: Final = "nightly"


class TenantWork(StrEnum):
    """A tenant job's kind: `discover` matches every staff member (or lists every mailbox, for the
    all-users scope) and the tenant then migrates; `rematch` matches again (new mailboxes, left ones);
    `disconnect` finishes a disconnect; `renew_subscriptions` renews the subscriptions that expire soon,
    recreates missing ones and checks silent ones; `nightly` is the nightly pass (credential expiry,
    directory changes, every user caught up, read whole on the user's reconciliation night);
    `reconcile` reads every user whole now (a setting changed what a full read announces)."""

    DISCOVER = "discover"
    REMATCH = "rematch"
    DISCONNECT = "disconnect"
    RENEW_SUBSCRIPTIONS = "renew_subscriptions"
    NIGHTLY = "nightly"
    RECONCILE = "reconcile"
    PRUNE_MESSAGES = "prune_messages"  # the message monitor's rows older than the tenant's retention


class SyncMode(StrEnum):
    """A user's sync job's kind: `sync` catches up through delta; `resync` reads the whole window and
    renews the subscription (recreating it when Graph lost it; the nightly reconciliation's only when the
    renewal timer would); `renew` renews (or recreates) it and
    catches up through delta; `resubscribe` recreates it and catches up; `silent` catches up through
    delta for a subscription that said nothing for a day, and recreates it when the catch-up finds
    changes (its notifications were lost); `migrate` is the first pass after a user is matched."""

    MIGRATE = "migrate"
    SYNC = "sync"
    RESYNC = "resync"
    RENEW = "renew"
    RESUBSCRIBE = "resubscribe"
    SILENT = "silent"


class TaskMode(StrEnum):
    """A task sync job's kind, as `SyncMode` for the calendar: `tasks_sync` catches up through delta;
    `tasks_resync` reads the whole list (and renews the subscription); `tasks_renew` renews (or recreates)
    the subscription and catches up; `tasks_resubscribe` recreates it and catches up."""

    SYNC = "tasks_sync"
    RESYNC = "tasks_resync"
    RENEW = "tasks_renew"
    RESUBSCRIBE = "tasks_resubscribe"


Job: TypeAlias = (
    TenantJob
    | SyncUser
    | SyncTasks
    | Notified
    | RemoveStaff
    | WriteAppointment
    | CatchUpWrites
    | Deliver
    | SendMail
    | WriteTask
    | CatchUpTasks
)
JOB_TYPES: Final[tuple[type[Job], ...]] = (
    TenantJob,
    SyncUser,
    SyncTasks,
    Notified,
    RemoveStaff,
    WriteAppointment,
    CatchUpWrites,
    Deliver,
    SendMail,
    WriteTask,
    CatchUpTasks,
)


# --- what the service queues ------------------------------------------------------------------------


discover: Final = partial(TenantJob, kind=TenantWork.DISCOVER)
rematch: Final = partial(TenantJob, kind=TenantWork.REMATCH)
disconnect: Final = partial(TenantJob, kind=TenantWork.DISCONNECT)
renew_tenant: Final = partial(TenantJob, kind=TenantWork.RENEW_SUBSCRIPTIONS)
nightly: Final = partial(TenantJob, kind=TenantWork.NIGHTLY)
reconcile: Final = partial(TenantJob, kind=TenantWork.RECONCILE)
prune_messages: Final = partial(TenantJob, kind=TenantWork.PRUNE_MESSAGES)
notified: Final = Notified
remove_staff: Final = RemoveStaff


def migrate_user(tenant_id: str, staff_id: str) -> SyncUser:
    return SyncUser(tenant_id, staff_id, SyncMode.MIGRATE, "migrate")


def sync_user(
    tenant_id: str,
    staff_id: str,
    reason: str = "notified",
    *,
    kind: str = "sync",
    force: bool = False,
    check_back: int = 0,
    delay_seconds: int = 0,
) -> SyncUser:
    """One user's calendar, `kind` one of the `SyncMode`s."""
    return SyncUser(
        tenant_id,
        staff_id,
        SyncMode(kind),
        reason,
        force=force,
        check_back=check_back,
        delay_seconds=delay_seconds,
    )


def sync_tasks(
    tenant_id: str,
    staff_id: str,
    reason: str = "notified",
    *,
    kind: TaskMode = TaskMode.SYNC,
    check_back: int = 0,
    delay_seconds: int = 0,
) -> SyncTasks:
    """One user's To Do list."""
    return SyncTasks(tenant_id, staff_id, kind, reason, check_back=check_back, delay_seconds=delay_seconds)


def write_appointment(
    tenant_id: str,
    appointment_id: str,
    reason: str = "changed",
    *,
    revision: int | None = None,
    recheck: Iterable[str] = (),
    events: Iterable[str] = (),
    delay_seconds: int = 0,
) -> WriteAppointment:
    return WriteAppointment(
        tenant_id,
        appointment_id,
        reason,
        revision,
        tuple(recheck),
        tuple(events),
        delay_seconds=delay_seconds,
    )


def deliver(
    tenant_id: str, first_sequence: int, last_sequence: int, attempt: int = 0, delay_seconds: int = 0
) -> Deliver:
    return Deliver(tenant_id, first_sequence, last_sequence, attempt, delay_seconds)


def send_mail(tenant_id: str, message_id: str, *, attempt: int = 0, delay_seconds: int = 0) -> SendMail:
    return SendMail(tenant_id, message_id, attempt, delay_seconds=delay_seconds)
