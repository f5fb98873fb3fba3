"""Queue triggers: each message is one job, run by its handler (`shared.service.job_handlers`); a job
for a disconnected tenant is a no-op, and a message that carries no job is logged and dropped."""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import container
from shared.service import jobs
from shared.service.job_handlers import run_message

bp = func.Blueprint()


@bp.function_name("tenant_job")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.TENANT_QUEUE, connection="AzureWebJobsStorage")
async def tenant_job(msg: func.QueueMessage, context: func.Context) -> None:
    await _run(jobs.TENANT_QUEUE, "tenant_job", msg, context)


@bp.function_name("sync_job")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.SYNC_QUEUE, connection="AzureWebJobsStorage")
async def sync_job(msg: func.QueueMessage, context: func.Context) -> None:
    await _run(jobs.SYNC_QUEUE, "sync_job", msg, context)


@bp.function_name("host_delivery")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.DELIVERY_QUEUE, connection="AzureWebJobsStorage")
async def host_delivery(msg: func.QueueMessage, context: func.Context) -> None:
    await _run(jobs.DELIVERY_QUEUE, "host_delivery", msg, context)


@bp.function_name("outlook_write")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.WRITE_QUEUE, connection="AzureWebJobsStorage")
async def outlook_write(msg: func.QueueMessage, context: func.Context) -> None:
    await _run(jobs.WRITE_QUEUE, "outlook_write", msg, context)


async def _run(queue: str, function: str, msg: func.QueueMessage, context: func.Context) -> None:
    fields = {"function": function, "invocation_id": context.invocation_id, "message_id": msg.id}
    await run_message(container().services, queue, msg.get_body(), **fields)
