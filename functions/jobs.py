"""Queue triggers: each message is one job; a job for a disconnected tenant is a no-op."""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import container
from shared.observability import bound, get_logger
from shared.service import jobs
from shared.service.ports import Job
from shared.service.tenant_jobs import run_tenant_job

bp = func.Blueprint()
log = get_logger("jobs")


@bp.function_name("tenant_job")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.TENANT_QUEUE, connection="AzureWebJobsStorage")
async def tenant_job(msg: func.QueueMessage, context: func.Context) -> None:
    job = parse_job(jobs.TENANT_QUEUE, msg)
    if job is None:
        return
    with bound(tenant=job.tenant_id, function="tenant_job", invocation_id=context.invocation_id):
        await run_tenant_job(container().services, job)


def parse_job(queue: str, msg: func.QueueMessage) -> Job | None:
    """The job a message carries; None (logged, the message dropped) when it carries none: retrying a
    malformed message can only fail again."""
    try:
        return jobs.job_from_message(queue, msg.get_body())
    except ValueError:
        log.error("dropping a malformed message %s on %s", msg.id, queue)
        return None
