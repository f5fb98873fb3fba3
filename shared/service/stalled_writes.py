"""The stalled-writes sweep: host writes accepted (202) whose job never finished, queued again.

The API stores a host write (an appointment's revision or deletion, a task's, a mail) and then queues
its job; the job decides from the stored row, so a second job for the same row changes nothing. What
the row cannot survive alone is the job going missing: the enqueue failing after the row was stored
(storage restarting between the two), a message lost with the queue, or a job that gave up (poison
queue, throttling exhausted). The sweep, on the renewal timer's tenant job, reads the rows still
unfinished (appointments whose latest revision has no reported outcome, tasks `pending`, mail neither
sent nor failed) that have not changed for `STALLED_AFTER`, and queues their jobs again; an admin's
resync (`request_tenant_resync`) does the same. A row that settles meanwhile is left as it is by its job
(the stored revision and state decide).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final, Protocol

from shared.domain.tasks import TaskState
from shared.observability import bound, get_logger
from shared.service import jobs
from shared.service.context import UsesAppointments, UsesClock, UsesJobs, UsesMail, UsesTasks
from shared.service.jobs import Job
from shared.service.tenants import TenantPorts

log = get_logger("stalled_writes")

# Longer than a job takes under its lease (2 minutes; a lease taken makes the job check back later):
# a row unchanged for this long has no job about to finish it. One queued too early costs a job that
# finds the row settled, or the lease taken.
STALLED_AFTER: Final = timedelta(minutes=3)
REASON: Final = "stalled"


class StalledWritePorts(TenantPorts, UsesClock, UsesAppointments, UsesTasks, UsesMail, UsesJobs, Protocol):
    """The tenant's unfinished rows, and the queues their jobs go on."""


async def requeue_stalled_writes(services: StalledWritePorts, tenant_id: str) -> int:
    """Queue the jobs of the tenant's host writes left unfinished for `STALLED_AFTER`; answers how many."""
    tenant = await services.tenants.get(tenant_id)
    if tenant is None or not tenant.state.connected:
        return 0
    before = services.clock.now() - STALLED_AFTER
    appointments = await services.appointments.unsettled(tenant_id, updated_before=before)
    tasks = [
        t
        for t in await services.tasks.in_tenant(tenant_id)
        if t.state is TaskState.PENDING and t.updated_at < before
    ]
    mail = await services.mail.unfinished(tenant_id, updated_before=before)
    queued: list[Job] = [
        *(jobs.write_appointment(tenant_id, a, REASON) for a in appointments),
        *(jobs.WriteTask(tenant_id, t.task_id, revision=t.revision) for t in tasks),
        *(jobs.send_mail(tenant_id, m.message_id) for m in mail),
    ]
    if queued:
        await services.jobs.enqueue(queued)
        with bound(tenant=tenant_id):
            log.warning(
                "stalled writes queued again: %d appointments, %d tasks, %d mails",
                len(appointments),
                len(tasks),
                len(mail),
            )
    return len(queued)
