"""The host API's items written on a queue (appointments, tasks): one shape for their PUT, GET and DELETE.

A route names its item (`QueuedItem`: how the path's id parses, the service's three calls, the answer's
view and ETag) and hands the request here: the tenant and the id are parsed from the path, `If-Match`
goes to the service, PUT and DELETE answer 202 (the write job does the rest) and GET 200, each with the
item's view and its revision as `ETag`. Errors are the route's `handles_errors`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import azure.functions as func

from functions.http import json_response, read_json_object
from shared.bootstrap import container
from shared.service.commands import parse_tenant_path
from shared.service.context import Services

Record = TypeVar("Record")


@dataclass(frozen=True, slots=True)
class QueuedItem(Generic[Record]):
    id_param: str  # the route's parameter (`appointment_id`, `task_id`)
    parse_id: Callable[[str], str]
    # (services, tenant id, item id, body, If-Match) → the record as stored
    put: Callable[[Services, str, str, dict[str, Any], str | None], Awaitable[Record]]
    # (services, tenant id, item id, If-Match) → the record marked deleted
    delete: Callable[[Services, str, str, str | None], Awaitable[Record]]
    get: Callable[[Services, str, str], Awaitable[Record]]
    view: Callable[[Record], dict[str, Any]]
    etag: Callable[[Record], str]


async def answer_item(req: func.HttpRequest, item: QueuedItem[Record]) -> func.HttpResponse:
    services = container().services
    tenant_id = parse_tenant_path(str(req.route_params["tid"]))
    item_id = item.parse_id(str(req.route_params[item.id_param]))
    if_match = req.headers.get("If-Match")
    if req.method == "PUT":
        record = await item.put(services, tenant_id, item_id, read_json_object(req), if_match)
        status = 202
    elif req.method == "DELETE":
        record = await item.delete(services, tenant_id, item_id, if_match)
        status = 202
    else:
        record = await item.get(services, tenant_id, item_id)
        status = 200
    return json_response(item.view(record), status, headers={"ETag": item.etag(record)})
