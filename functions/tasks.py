"""Host API: tasks written to the staff member's To Do list (the writes run on a queue)."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from functions.http import handles_errors
from functions.queued_items import QueuedItem, answer_item
from functions.views import task_json
from shared.domain.tasks import TaskRecord
from shared.service import task_api as tasks
from shared.service.context import Services
from shared.service.errors import InvalidInput
from shared.service.limits import APPOINTMENT_ID_RE

bp = func.Blueprint()


def parse_task_id(task_id: str) -> str:
    if not APPOINTMENT_ID_RE.match(task_id):
        raise InvalidInput("task_id", "must be 1-128 letters, digits or ._~@+=-")
    return task_id


async def _put(
    services: Services, tenant_id: str, task_id: str, body: dict[str, Any], if_match: str | None
) -> TaskRecord:
    from shared.service.task_bodies import parse_task  # pydantic's models: not on the cold start

    return await tasks.put_task(services, tenant_id, parse_task(task_id, body), if_match=if_match)


async def _delete(services: Services, tenant_id: str, task_id: str, if_match: str | None) -> TaskRecord:
    return await tasks.delete_task(services, tenant_id, task_id, if_match=if_match)


TASK = QueuedItem("task_id", parse_task_id, _put, _delete, tasks.get_task, task_json, tasks.etag)


@bp.function_name("task")
@bp.route(
    route="v1/tenants/{tid}/tasks/{task_id}",
    methods=["PUT", "GET", "DELETE"],
    auth_level=func.AuthLevel.FUNCTION,
)
@handles_errors
async def task_item(req: func.HttpRequest) -> func.HttpResponse:
    return await answer_item(req, TASK)
