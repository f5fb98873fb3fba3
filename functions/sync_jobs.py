"""Queue triggers for per-user sync work, appointment writes to Outlook, and deliveries to the host."""

from __future__ import annotations

import azure.functions as func

from functions.jobs import run_job
from shared.service import jobs
from shared.service.appointment_writes import run_write_job
from shared.service.context import Services
from shared.service.deliveries import deliver_changes
from shared.service.ports import Job
from shared.service.sync import run_sync_job

bp = func.Blueprint()


@bp.function_name("sync_job")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.SYNC_QUEUE, connection="AzureWebJobsStorage")
async def sync_job(msg: func.QueueMessage, context: func.Context) -> None:
    await run_job(jobs.SYNC_QUEUE, "sync_job", msg, context, run_sync_job)


@bp.function_name("host_delivery")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.DELIVERY_QUEUE, connection="AzureWebJobsStorage")
async def host_delivery(msg: func.QueueMessage, context: func.Context) -> None:
    await run_job(jobs.DELIVERY_QUEUE, "host_delivery", msg, context, _deliver)


async def _deliver(services: Services, job: Job) -> None:
    await deliver_changes(services, job, services.config.delivery)


@bp.function_name("outlook_write")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.WRITE_QUEUE, connection="AzureWebJobsStorage")
async def outlook_write(msg: func.QueueMessage, context: func.Context) -> None:
    await run_job(jobs.WRITE_QUEUE, "outlook_write", msg, context, run_write_job)
