"""Graph's webhooks: change notifications and lifecycle notifications (anonymous; checked by clientState).

Both answer the validation handshake by echoing the token as text/plain. Change notifications are checked
without a table read and queued per user through the queue output binding; the answer is 202 at once.
With storage shards configured, a directory's account is read once per worker (then kept) and a sharded
tenant's jobs are queued on its account instead.
"""

from __future__ import annotations

import azure.functions as func

from functions.http import error_response
from shared import telemetry
from shared.bootstrap import container
from shared.observability import bound, get_logger
from shared.service.errors import InvalidInput
from shared.service.job_codec import encode
from shared.service.jobs import SYNC_QUEUE
from shared.service.notifications import Received, receive_changes, receive_lifecycle, validation_token

bp = func.Blueprint()
log = get_logger("graph_webhook")


@bp.function_name("graph_notifications")
@bp.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.queue_output(arg_name="jobs", queue_name=SYNC_QUEUE, connection="AzureWebJobsStorage")
async def graph_notifications(
    req: func.HttpRequest, jobs: func.Out[list[str]], context: func.Context
) -> func.HttpResponse:
    container()  # the worker's first call sets telemetry up before its span opens, not inside it
    with (
        bound(function="graph_notifications", invocation_id=context.invocation_id),
        telemetry.webhook_call("change", telemetry.invocation_parent(context)) as call,
    ):
        return await _handle(req, jobs, call, lifecycle=False)


@bp.function_name("graph_lifecycle")
@bp.route(route="graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.queue_output(arg_name="jobs", queue_name=SYNC_QUEUE, connection="AzureWebJobsStorage")
async def graph_lifecycle(
    req: func.HttpRequest, jobs: func.Out[list[str]], context: func.Context
) -> func.HttpResponse:
    container()  # the worker's first call sets telemetry up before its span opens, not inside it
    with (
        bound(function="graph_lifecycle", invocation_id=context.invocation_id),
        telemetry.webhook_call("lifecycle", telemetry.invocation_parent(context)) as call,
    ):
        return await _handle(req, jobs, call, lifecycle=True)


async def _handle(
    req: func.HttpRequest, out: func.Out[list[str]], call: telemetry.WebhookCall, *, lifecycle: bool
) -> func.HttpResponse:
    try:
        token = req.params.get("validationToken")
        if token is not None:
            return func.HttpResponse(
                validation_token(token), status_code=200, mimetype="text/plain", charset="utf-8"
            )
        services = container().services
        body = req.get_body() or b""
        received: Received = await (receive_lifecycle if lifecycle else receive_changes)(services, body)
    except InvalidInput as error:
        return error_response(error.status, "invalid_input", error.reason, error.field)
    call.received(received.accepted, received.forged, received.malformed)
    # A tenant sharded to another storage account gets its jobs on that account's queue; the binding
    # writes the home account's (with no shard configured, all of them, without a table read).
    home_jobs = await services.jobs.enqueue_off_home(received.jobs) if received.jobs else []
    if home_jobs:
        trace = telemetry.carrier()  # the jobs continue this request's trace
        out.set([encode(job, trace) for job in home_jobs])
    return func.HttpResponse(status_code=202)
