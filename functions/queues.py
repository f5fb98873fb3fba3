"""Queue triggers, one per queue and storage account: each message is one job, run by its handler
(`shared.service.job_handlers`); a job for a disconnected tenant is a no-op, and a message that carries
no job is logged and dropped. As a job ends, the worker lets go of its claims on the mailboxes the job
sent requests to (`MailboxGate.job`)."""

from __future__ import annotations

import os
from typing import Final

import azure.functions as func

from shared import telemetry
from shared.bootstrap import container
from shared.service import jobs
from shared.service.job_handlers import run_message
from shared.settings import STORAGE_CONNECTION, storage_shard_names

bp = func.Blueprint()

# function name -> the queue it serves
TRIGGERS: Final = {
    "tenant_job": jobs.TENANT_QUEUE,
    "sync_job": jobs.SYNC_QUEUE,
    "host_delivery": jobs.DELIVERY_QUEUE,
    "outlook_write": jobs.WRITE_QUEUE,
}


def _register(function: str, queue: str, connection: str = STORAGE_CONNECTION) -> None:
    async def trigger(msg: func.QueueMessage, context: func.Context) -> None:
        fields = {"function": function, "invocation_id": context.invocation_id, "message_id": msg.id}
        built = container()
        async with built.graph.job():  # its mailboxes' claims let go as it ends, not a linger later
            await run_message(
                built.services,
                queue,
                msg.get_body(),
                trace_parent=telemetry.invocation_parent(context),
                tries=msg.dequeue_count or 1,
                **fields,
            )

    trigger.__name__ = trigger.__qualname__ = function
    bp.function_name(function)(
        bp.queue_trigger(arg_name="msg", queue_name=queue, connection=connection)(trigger)
    )


def shard_function(function: str, connection: str) -> str:
    """The trigger of `function` on a shard's queues: `sync_job__SHARD1`."""
    return f"{function}__{connection}"


# Each queue is served in the home account and again in each storage shard (`STORAGE_SHARDS`, read at
# import: the worker indexes the functions once, so adding a shard is a settings change and a restart).
for _function, _queue in TRIGGERS.items():
    _register(_function, _queue)
    for _connection in storage_shard_names(os.environ):
        _register(shard_function(_function, _connection), _queue, _connection)
