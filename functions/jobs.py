"""Queue triggers: each message is one job; a job for a disconnected tenant is a no-op."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import azure.functions as func

from shared.bootstrap import container
from shared.observability import bound, get_logger
from shared.service import jobs
from shared.service.context import Services
from shared.service.ports import Job
from shared.service.tenant_jobs import run_tenant_job

bp = func.Blueprint()
log = get_logger("jobs")


@bp.function_name("tenant_job")
@bp.queue_trigger(arg_name="msg", queue_name=jobs.TENANT_QUEUE, connection="AzureWebJobsStorage")
async def tenant_job(msg: func.QueueMessage, context: func.Context) -> None:
    await run_job(jobs.TENANT_QUEUE, "tenant_job", msg, context, run_tenant_job)


async def run_job(
    queue: str,
    function: str,
    msg: func.QueueMessage,
    context: func.Context,
    handler: Callable[[Services, Job], Awaitable[None]],
) -> None:
    """Every queue trigger: the message's job, with tenant and invocation bound into the log, to its
    handler; a malformed message is dropped."""
    job = parse_job(queue, msg)
    if job is None:
        return
    with bound(tenant=job.tenant_id, function=function, invocation_id=context.invocation_id):
        await handler(container().services, job)


def parse_job(queue: str, msg: func.QueueMessage) -> Job | None:
    """The job a message carries; None (logged, the message dropped) when it carries none: retrying a
    malformed message can only fail again."""
    try:
        return jobs.job_from_message(queue, msg.get_body())
    except ValueError:
        log.error("dropping a malformed message %s on %s", msg.id, queue)
        return None
