"""What runs each kind of job: one table from kind to handler, the table of contents of queued work.

A queue message that carries no job (malformed, or of a kind its queue does not carry) is logged and
dropped, as before the records: delivering it again can only fail again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from shared import telemetry
from shared.observability import bound, get_logger
from shared.service import messages, poison, tenant_jobs
from shared.service.appointment_writes import run_catch_up, run_write_job
from shared.service.context import Services
from shared.service.deliveries import DeliveryPorts, deliver_changes
from shared.service.job_codec import MalformedJob, decode_envelope
from shared.service.jobs import (
    MAX_DEQUEUE,
    CatchUpTasks,
    CatchUpWrites,
    Deliver,
    Job,
    Notified,
    RemoveStaff,
    SendMail,
    SyncMode,
    TaskMode,
    TenantWork,
    WriteAppointment,
    WriteTask,
)
from shared.service.leasing import delivery, redelivered
from shared.service.mail_send import run_send_job
from shared.service.staff_removal import run_remove_staff
from shared.service.sync import run_notified, run_sync_job
from shared.service.task_sync import run_task_job
from shared.service.task_writes import run_task_catch_up, run_task_write
from shared.service.work_priority import Priority, working_as

log = get_logger("jobs")


async def _deliver(services: DeliveryPorts, job: Deliver) -> None:
    await deliver_changes(services, job, services.config.delivery)


# Each handler takes its kind's record; `run_job` only ever passes it one.
HANDLERS: Final[dict[str, Callable[[Services, Any], Awaitable[None]]]] = {
    TenantWork.DISCOVER: tenant_jobs.discover,
    TenantWork.REMATCH: tenant_jobs.discover,
    TenantWork.DISCONNECT: tenant_jobs.disconnect,
    TenantWork.RENEW_SUBSCRIPTIONS: tenant_jobs.renew_subscriptions,
    TenantWork.NIGHTLY: tenant_jobs.nightly,
    TenantWork.RECONCILE: tenant_jobs.reconcile,
    TenantWork.PRUNE_MESSAGES: messages.prune_messages,
    **dict.fromkeys(SyncMode, run_sync_job),
    **dict.fromkeys(TaskMode, run_task_job),
    Notified.kind: run_notified,
    RemoveStaff.kind: run_remove_staff,
    WriteAppointment.kind: run_write_job,
    CatchUpWrites.kind: run_catch_up,
    Deliver.kind: _deliver,
    SendMail.kind: run_send_job,
    WriteTask.kind: run_task_write,
    CatchUpTasks.kind: run_task_catch_up,
}


# Bulk work: what a tenant's Graph budget slows first when Graph throttles the tenant (whole tenants' or
# users' passes over everything, catch-ups of many writes); the rest is work someone is waiting for.
BULK: Final[frozenset[str]] = frozenset(
    {
        TenantWork.DISCOVER,
        TenantWork.REMATCH,
        TenantWork.RENEW_SUBSCRIPTIONS,
        TenantWork.NIGHTLY,
        SyncMode.MIGRATE,
        SyncMode.RESYNC,
        SyncMode.RENEW,
        SyncMode.SILENT,
        TaskMode.RESYNC,
        TaskMode.RENEW,
        CatchUpWrites.kind,
        CatchUpTasks.kind,
    }
)


def priority_of(job: Job) -> Priority:
    return Priority.BULK if job.kind in BULK else Priority.INTERACTIVE


async def run_job(services: Services, job: Job) -> None:
    """Run one job, its Graph requests at its priority. Never raises for a condition a retry cannot fix."""
    with working_as(priority_of(job)):
        await HANDLERS[job.kind](services, job)


async def run_message(
    services: Services,
    queue: str,
    body: bytes | str,
    *,
    trace_parent: str | None = None,
    tries: int = 1,
    **log_fields: str | None,
) -> None:
    """Run the job a queue message carries, its tenant, kind and `log_fields` bound into the log; traced
    as a continuation of the trace the message carries (`trace_parent`: the invocation's own context).
    On its last try (`tries`, the message's dequeue count, reaching `MAX_DEQUEUE`) a job that fails is
    parked on the poison queue with the reason (`poison.park`) instead of raising."""
    try:
        envelope = decode_envelope(queue, body)
    except MalformedJob as error:
        telemetry.job_dropped(queue)
        with bound(**log_fields):
            log.error("dropping a message on %s that carries no job: %s", queue, error)
        return
    job = envelope.job if tries <= 1 else redelivered(envelope.job)
    tenant = job.directory_id if isinstance(job, Notified) else job.tenant_id
    last_try = tries >= MAX_DEQUEUE
    with bound(tenant=tenant, job=str(job.kind), **log_fields):
        try:
            with (
                telemetry.job_run(
                    queue,
                    str(job.kind),
                    envelope.trace,
                    trace_parent,
                    tenant=tenant,
                    message_id=log_fields.get("message_id"),
                    last_try=last_try,
                ),
                delivery(log_fields.get("message_id"), tries),
            ):
                await run_job(services, job)
        except Exception as error:
            if not last_try:
                raise  # the host delivers the message again
            await poison.park(services, queue, body, error, tries)
