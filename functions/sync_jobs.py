"""Queue triggers for per-user sync work and for deliveries to the host's webhook."""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import container
from shared.observability import bound, get_logger
from shared.service import jobs
from shared.service.deliveries import deliver_changes
from shared.service.sync import run_sync_job

bp = func.Blueprint()
log = get_logger("sync_jobs")


@bp.function_name("sync_job")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.SYNC_QUEUE, connection="AzureWebJobsStorage")
async def sync_job(msg: func.QueueMessage, context: func.Context) -> None:
    try:
        job = jobs.job_from_message(jobs.SYNC_QUEUE, msg.get_body())
    except ValueError:
        log.error("dropping a malformed message %s on %s", msg.id, jobs.SYNC_QUEUE)
        return
    with bound(tenant=job.tenant_id, function="sync_job", invocation_id=context.invocation_id):
        await run_sync_job(container().services, job)


@bp.function_name("host_delivery")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.DELIVERY_QUEUE, connection="AzureWebJobsStorage")
async def host_delivery(msg: func.QueueMessage, context: func.Context) -> None:
    try:
        job = jobs.job_from_message(jobs.DELIVERY_QUEUE, msg.get_body())
    except ValueError:
        log.error("dropping a malformed message %s on %s", msg.id, jobs.DELIVERY_QUEUE)
        return
    with bound(tenant=job.tenant_id, function="host_delivery", invocation_id=context.invocation_id):
        services = container().services
        await deliver_changes(services, job, services.config.delivery)
