"""Host API: mail sent from a staff member's mailbox (the send runs on a queue)."""

from __future__ import annotations

from typing import Final

import azure.functions as func

from functions.http import handles_errors, json_response, read_json_object
from functions.views import mail_json
from shared.bootstrap import container
from shared.service import mail_api
from shared.service.commands import parse_tenant_path
from shared.service.errors import InvalidInput
from shared.service.limits import MESSAGE_ID_CHARS, MESSAGE_ID_RE

# The attachments (35 MB at most, base64 a third more) and the rest of the body.
MAX_MAIL_REQUEST_BYTES: Final = 50 * 1024 * 1024

bp = func.Blueprint()


def parse_message_id(message_id: str) -> str:
    if not MESSAGE_ID_RE.match(message_id):
        raise InvalidInput("message_id", MESSAGE_ID_CHARS)
    return message_id


@bp.function_name("mail")
@bp.route(
    route="v1/tenants/{tid}/mail/{message_id}", methods=["PUT", "GET"], auth_level=func.AuthLevel.FUNCTION
)
@handles_errors
async def mail_item(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    tenant_id = parse_tenant_path(str(req.route_params["tid"]))
    message_id = parse_message_id(str(req.route_params["message_id"]))
    if req.method == "PUT":
        from shared.service.mail_bodies import parse_mail

        mail = parse_mail(message_id, read_json_object(req, max_bytes=MAX_MAIL_REQUEST_BYTES))
        record, _ = await mail_api.put_mail(services, tenant_id, mail)
        return json_response(mail_json(record), 200 if record.state.final else 202)
    record = await mail_api.get_mail(services, tenant_id, message_id)
    return json_response(mail_json(record), 200)
