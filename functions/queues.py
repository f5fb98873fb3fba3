"""Queue triggers, one per queue: each message is one job, run by its handler
(`shared.service.job_handlers`); a job for a disconnected tenant is a no-op, and a message that carries
no job is logged and dropped."""

from __future__ import annotations

from typing import Final

import azure.functions as func

from shared import telemetry
from shared.bootstrap import container
from shared.service import jobs
from shared.service.job_handlers import run_message

bp = func.Blueprint()

# function name -> the queue it serves
TRIGGERS: Final = {
    "tenant_job": jobs.TENANT_QUEUE,
    "sync_job": jobs.SYNC_QUEUE,
    "host_delivery": jobs.DELIVERY_QUEUE,
    "outlook_write": jobs.WRITE_QUEUE,
}


def _register(function: str, queue: str) -> None:
    async def trigger(msg: func.QueueMessage, context: func.Context) -> None:
        fields = {"function": function, "invocation_id": context.invocation_id, "message_id": msg.id}
        await run_message(
            container().services,
            queue,
            msg.get_body(),
            trace_parent=telemetry.invocation_parent(context),
            tries=msg.dequeue_count or 1,
            **fields,
        )

    trigger.__name__ = trigger.__qualname__ = function
    bp.function_name(function)(
        bp.queue_trigger(arg_name="msg", queue_name=queue, connection="AzureWebJobsStorage")(trigger)
    )


for _function, _queue in TRIGGERS.items():
    _register(_function, _queue)
