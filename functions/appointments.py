"""Host API: appointments written to the involved staff calendars (the writes run on a queue)."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from functions.http import handles_errors
from functions.queued_items import QueuedItem, answer_item
from functions.views import appointment_json
from shared.domain.appointments import AppointmentRecord
from shared.service import appointment_api as appointments
from shared.service.appointment_commands import parse_appointment_id, parse_appointment_put
from shared.service.context import Services

bp = func.Blueprint()


async def _put(
    services: Services, tenant_id: str, appointment_id: str, body: dict[str, Any], if_match: str | None
) -> AppointmentRecord:
    appointment, adopt = parse_appointment_put(appointment_id, body)
    return await appointments.put_appointment(
        services, tenant_id, appointment, if_match=if_match, adopt=adopt
    )


async def _delete(
    services: Services, tenant_id: str, appointment_id: str, if_match: str | None
) -> AppointmentRecord:
    return await appointments.delete_appointment(services, tenant_id, appointment_id, if_match=if_match)


APPOINTMENT = QueuedItem(
    "appointment_id",
    parse_appointment_id,
    _put,
    _delete,
    appointments.get_appointment,
    appointment_json,
    appointments.etag,
)


@bp.function_name("appointment")
@bp.route(
    route="v1/tenants/{tid}/appointments/{appointment_id}",
    methods=["PUT", "GET", "DELETE"],
    auth_level=func.AuthLevel.FUNCTION,
)
@handles_errors
async def appointment_item(req: func.HttpRequest) -> func.HttpResponse:
    return await answer_item(req, APPOINTMENT)
