"""Host API: a staff member's busy times, and bookable slots or free periods for a question."""

from __future__ import annotations

import azure.functions as func

from functions.http import handles_errors, json_response, read_json_object
from functions.views import availability_json, staff_busy_json
from shared.bootstrap import container
from shared.service import availability
from shared.service.commands import parse_staff_id, parse_tenant_path

bp = func.Blueprint()


@bp.function_name("staff_busy")
@bp.route(route="v1/tenants/{tid}/staff/{staff_id}/busy", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handles_errors
async def staff_busy(req: func.HttpRequest) -> func.HttpResponse:
    from shared.service.availability_bodies import parse_span

    tenant_id = parse_tenant_path(str(req.route_params["tid"]))
    staff_id = parse_staff_id(str(req.route_params["staff_id"]))
    start, end = parse_span(req.params.get("start"), req.params.get("end"))
    found = await availability.busy_times(container().services, tenant_id, staff_id, start, end)
    return json_response(staff_busy_json(found))


@bp.function_name("availability")
@bp.route(route="v1/tenants/{tid}/availability", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@handles_errors
async def availability_question(req: func.HttpRequest) -> func.HttpResponse:
    from shared.service.availability_bodies import parse_question

    tenant_id = parse_tenant_path(str(req.route_params["tid"]))
    question, periods = parse_question(read_json_object(req))
    answer = await availability.answer(container().services, tenant_id, question, periods=periods)
    return json_response(availability_json(answer))
