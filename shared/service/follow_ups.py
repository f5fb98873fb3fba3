"""One delta catch-up a little after a mailbox's last notification: what a lost notification announced.

Graph may delay a change notification or drop it unrecoverably (an endpoint in the "drop" state, a
subscription's paused notifications; graph-contract §5.6 and the lifecycle table: "resync via delta"). A
notification's own run reads what changed up to then; a change made after it whose notification was
lost would otherwise wait for the next notification of that mailbox, the silent-subscription check or
the nightly run. So a notification marks the subscription's index record (`last_notified_at`, at most
every `MARK_EVERY`) and each mark queues one catch-up of the calendar and one of the To Do list
`FOLLOW_UP_AFTER` later, carrying the mark. Debounced: a catch-up finding a later mark of either stands
down (that mark queued its own), so a burst of notifications costs one read of each after its last one.
A change lost within `FOLLOW_UP_AFTER - MARK_EVERY` of the mailbox's last delivered notification (of
its calendar or its list) heals within minutes; an isolated one, at the nightly run. An idle mailbox (no
notification) costs nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final, Protocol

from shared.observability import get_logger
from shared.service import jobs
from shared.service.context import UsesSubscriptionIndex, UsesUsers
from shared.service.jobs import Job, SyncTasks, SyncUser
from shared.service.records import SubscriptionRecord

log = get_logger("follow_ups")

FOLLOW_UP_REASON: Final = "follow_up"
FOLLOW_UP_AFTER: Final = timedelta(minutes=2)  # the catch-up, this long after the mark that queued it
MARK_EVERY: Final = timedelta(seconds=30)  # a notification marks the index when the mark is older than this


class FollowUpPorts(UsesUsers, UsesSubscriptionIndex, Protocol):
    """The user (which subscription is theirs) and the index's marks."""


def unmarked_since(now: datetime) -> datetime:
    """A new subscription's mark: its silence counted from now, yet its first notification still marks
    (and so queues a catch-up), as no catch-up is queued for this one."""
    return now - MARK_EVERY


def marks_now(record: SubscriptionRecord, now: datetime) -> bool:
    """A notification that marks the index now (and so queues a catch-up): the mark `MARK_EVERY` old."""
    return record.last_notified_at is None or now - record.last_notified_at >= MARK_EVERY


def follow_ups(record: SubscriptionRecord, now: datetime) -> list[Job]:
    """The catch-ups a mark at `now` queues, `FOLLOW_UP_AFTER` later: the mailbox's calendar and its To Do
    list both, whichever was notified (a list whose own notifications were all lost is read too)."""
    delay, marked = int(FOLLOW_UP_AFTER.total_seconds()), now.isoformat()
    tenant_id, staff_id = record.tenant_id, record.staff_id
    return [
        replace(jobs.sync_user(tenant_id, staff_id, FOLLOW_UP_REASON, delay_seconds=delay), marked_at=marked),
        replace(
            jobs.sync_tasks(tenant_id, staff_id, FOLLOW_UP_REASON, delay_seconds=delay), marked_at=marked
        ),
    ]


async def superseded(services: FollowUpPorts, job: SyncUser | SyncTasks) -> bool:
    """A catch-up with nothing to do: the mailbox was notified (marked) after the mark that queued it, so
    the later mark's catch-up comes after this one; or the user is gone, or reads no To Do list."""
    if job.reason != FOLLOW_UP_REASON or job.marked_at is None:
        return False
    user = await services.users.get(job.tenant_id, job.staff_id)
    if user is None or (isinstance(job, SyncTasks) and user.task_sync.subscription_id is None):
        return True
    own = datetime.fromisoformat(job.marked_at)
    for subscription_id in (user.subscription_id, user.task_sync.subscription_id):
        record = None if subscription_id is None else await services.subscription_index.get(subscription_id)
        if record is not None and record.last_notified_at is not None and record.last_notified_at > own:
            log.info("notified again since; the later catch-up reads it")
            return True
    return False
