"""Host API: appointments written to the involved staff calendars (the writes run on a queue)."""

from __future__ import annotations

import azure.functions as func

from functions.http import handles_errors, json_response, read_json_object
from functions.views import appointment_json
from shared.bootstrap import container
from shared.service import appointment_api as appointments
from shared.service.appointment_commands import parse_appointment_id, parse_appointment_put
from shared.service.commands import parse_tenant_path

bp = func.Blueprint()


@bp.function_name("appointment")
@bp.route(
    route="v1/tenants/{tid}/appointments/{appointment_id}",
    methods=["PUT", "GET", "DELETE"],
    auth_level=func.AuthLevel.FUNCTION,
)
@handles_errors
async def appointment_item(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    tenant_id = parse_tenant_path(str(req.route_params["tid"]))
    appointment_id = parse_appointment_id(str(req.route_params["appointment_id"]))
    if_match = req.headers.get("If-Match")
    if req.method == "PUT":
        appointment, adopt = parse_appointment_put(appointment_id, read_json_object(req))
        record = await appointments.put_appointment(
            services, tenant_id, appointment, if_match=if_match, adopt=adopt
        )
        status = 202
    elif req.method == "DELETE":
        record = await appointments.delete_appointment(services, tenant_id, appointment_id, if_match=if_match)
        status = 202
    else:
        record = await appointments.get_appointment(services, tenant_id, appointment_id)
        status = 200
    return json_response(appointment_json(record), status, headers={"ETag": appointments.etag(record)})
