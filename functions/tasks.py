"""Host API: tasks written to the staff member's To Do list (the writes run on a queue)."""

from __future__ import annotations

import azure.functions as func

from functions.http import handles_errors, json_response, read_json_object
from functions.views import task_json
from shared.bootstrap import container
from shared.service import task_api as tasks
from shared.service.commands import parse_tenant_path
from shared.service.errors import InvalidInput
from shared.service.limits import APPOINTMENT_ID_RE

bp = func.Blueprint()


def parse_task_id(task_id: str) -> str:
    if not APPOINTMENT_ID_RE.match(task_id):
        raise InvalidInput("task_id", "must be 1-128 letters, digits or ._~@+=-")
    return task_id


@bp.function_name("task")
@bp.route(
    route="v1/tenants/{tid}/tasks/{task_id}",
    methods=["PUT", "GET", "DELETE"],
    auth_level=func.AuthLevel.FUNCTION,
)
@handles_errors
async def task_item(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    tenant_id = parse_tenant_path(str(req.route_params["tid"]))
    task_id = parse_task_id(str(req.route_params["task_id"]))
    if_match = req.headers.get("If-Match")
    if req.method == "PUT":
        from shared.service.task_bodies import parse_task

        task = parse_task(task_id, read_json_object(req))
        record = await tasks.put_task(services, tenant_id, task, if_match=if_match)
        status = 202
    elif req.method == "DELETE":
        record = await tasks.delete_task(services, tenant_id, task_id, if_match=if_match)
        status = 202
    else:
        record = await tasks.get_task(services, tenant_id, task_id)
        status = 200
    return json_response(task_json(record), status, headers={"ETag": tasks.etag(record)})
