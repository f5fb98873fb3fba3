"""`sendMail` (contract §9): 202 and nothing else on the wire; the emulator records what was sent."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from aiohttp import web

from m365emulator.errors import GraphError
from m365emulator.graph import emulator_of, json_body, mailbox_user, param
from m365emulator.odata import graph_datetime

ROLES = ("Mail.Send",)


def _recipients(message: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for field in ("toRecipients", "ccRecipients", "bccRecipients"):
        for entry in message.get(field) or []:
            address = (
                (entry or {}).get("emailAddress", {}).get("address") if isinstance(entry, dict) else None
            )
            if not isinstance(address, str) or "@" not in address:
                raise GraphError(
                    400,
                    "ErrorInvalidRecipients",
                    "At least one recipient isn't valid., A message can't be sent "
                    "because it contains no recipients.",
                )
            out.append(address)
    return out


async def send_mail(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = mailbox_user(request, request.match_info["user"], ROLES)
    if request.content_type == "text/plain":
        raw = await request.read()
        try:
            mime = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise GraphError(
                400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."
            ) from exc
        record: dict[str, Any] = {"mime": mime.decode("utf-8", "replace"), "message": None, "recipients": []}
        save = True
    else:
        body = await json_body(request)
        message = param(body, "message")
        if not isinstance(message, dict):
            raise GraphError(400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.")
        recipients = _recipients(message)
        if not recipients:
            raise GraphError(
                400,
                "ErrorInvalidRecipients",
                "At least one recipient isn't valid., A message can't be sent "
                "because it contains no recipients.",
            )
        save_raw = param(body, "saveToSentItems", True)
        save = str(save_raw).lower() != "false"
        record = {"mime": None, "message": message, "recipients": recipients}
    record.update(
        {
            "id": str(uuid.uuid4()),
            "tenant_id": user.tenant_id,
            "user_id": user.id,
            "from": user.mail or user.upn,
            "save_to_sent_items": save,
            "sent_at": graph_datetime(emu.clock.now()),
            "request_id": request.get("request_id"),
            "client_id": request["claims"].client_id,
        }
    )
    emu.outbox.append(record)
    return web.Response(status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1.0/users/{user}/sendMail", send_mail)
    app.router.add_post("/v1.0/users/{user}/microsoft.graph.sendMail", send_mail)
