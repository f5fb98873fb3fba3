"""Queue triggers for per-user sync work, appointment writes to Outlook, and deliveries to the host."""

from __future__ import annotations

import azure.functions as func

from functions.jobs import parse_job
from shared.bootstrap import container
from shared.observability import bound
from shared.service import jobs
from shared.service.appointments import run_write_job
from shared.service.deliveries import deliver_changes
from shared.service.sync import run_sync_job

bp = func.Blueprint()


@bp.function_name("sync_job")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.SYNC_QUEUE, connection="AzureWebJobsStorage")
async def sync_job(msg: func.QueueMessage, context: func.Context) -> None:
    job = parse_job(jobs.SYNC_QUEUE, msg)
    if job is None:
        return
    with bound(tenant=job.tenant_id, function="sync_job", invocation_id=context.invocation_id):
        await run_sync_job(container().services, job)


@bp.function_name("host_delivery")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.DELIVERY_QUEUE, connection="AzureWebJobsStorage")
async def host_delivery(msg: func.QueueMessage, context: func.Context) -> None:
    job = parse_job(jobs.DELIVERY_QUEUE, msg)
    if job is None:
        return
    with bound(tenant=job.tenant_id, function="host_delivery", invocation_id=context.invocation_id):
        services = container().services
        await deliver_changes(services, job, services.config.delivery)


@bp.function_name("outlook_write")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.WRITE_QUEUE, connection="AzureWebJobsStorage")
async def outlook_write(msg: func.QueueMessage, context: func.Context) -> None:
    job = parse_job(jobs.WRITE_QUEUE, msg)
    if job is None:
        return
    with bound(tenant=job.tenant_id, function="outlook_write", invocation_id=context.invocation_id):
        await run_write_job(container().services, job)
